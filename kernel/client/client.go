package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned when the node answers 404.
var ErrNotFound = errors.New("not found")

// ErrPruned is returned when the node answers 410: it deleted what was
// asked for (an old block, or a transaction in one) under its block
// retention. It wraps ErrNotFound.
var ErrPruned = fmt.Errorf("pruned: %w", ErrNotFound)

// ErrNoNode is returned when nothing answers at the node URL: the
// connection is refused or the host does not resolve (no node runs there).
var ErrNoNode = errors.New("no node")

// Client talks to a node's HTTP API. The zero HTTP client is not used:
// New sets timeouts.
type Client struct {
	base      string
	http      *http.Client
	minHeight uint64 // > 0: every request waits for this height (AtHeight)
}

// AtHeight returns a client whose every request asks the node to answer
// only once it has committed block height (the API's ?min_height=, bounded
// by the node; a node that does not get there in time answers an error).
// Reads through it see at least the state of that block: pass the height a
// transaction committed at to read it back from any node of a cluster.
// Height 0 returns c.
func (c *Client) AtHeight(height uint64) *Client {
	if height == 0 {
		return c
	}
	cp := *c
	cp.minHeight = height
	return &cp
}

// New returns a client for a node URL such as http://127.0.0.1:26657.
func New(nodeURL string) (*Client, error) {
	u, err := url.Parse(nodeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: node URL %q: want http://host:port", nodeURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{base: strings.TrimRight(nodeURL, "/"), http: &http.Client{Transport: tr}}, nil
}

// URL returns the node URL.
func (c *Client) URL() string { return c.base }

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	if c.minHeight > 0 {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "min_height=" + strconv.FormatUint(c.minHeight, 10)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportErr(method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("client: %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return httpError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("client: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// httpError is the error of a non-2xx answer with body data.
func httpError(status int, data []byte) error {
	var e Error
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	switch status {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, msg)
	case http.StatusGone:
		return fmt.Errorf("%w: %s", ErrPruned, msg)
	}
	return &HTTPError{Status: status, Msg: msg}
}

// transportErr wraps a request that got no answer; nothing listening at
// the URL is ErrNoNode, said in words a user can act on.
func (c *Client) transportErr(method, path string, err error) error {
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial" {
		cause := err
		if op != nil && op.Err != nil {
			cause = op.Err
		}
		if dns != nil {
			cause = dns
		}
		return fmt.Errorf("client: %w at %s (%v)", ErrNoNode, c.base, cause)
	}
	return fmt.Errorf("client: %s %s: %w", method, path, err)
}

// HTTPError is a non-2xx answer other than 404.
type HTTPError struct {
	Status int
	Msg    string
}

func (e *HTTPError) Error() string { return e.Msg }

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, "", &s)
}

// Logs returns the node's recent log records after seq (0: the oldest it
// keeps), at level or above ("": all), at most limit (0: 200).
func (c *Client) Logs(ctx context.Context, after uint64, level string, limit int) ([]LogLine, error) {
	v := url.Values{}
	if after > 0 {
		v.Set("after", strconv.FormatUint(after, 10))
	}
	if level != "" {
		v.Set("level", level)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/logs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []LogLine
	return out, c.GetJSON(ctx, path, &out)
}

// Members lists the cluster members recorded on the ledger.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	return out, c.do(ctx, http.MethodGet, "/v1/cluster/members", nil, "", &out)
}

// JoinRequests lists the join requests waiting for admission on this node.
func (c *Client) JoinRequests(ctx context.Context) ([]JoinRequest, error) {
	var out []JoinRequest
	return out, c.do(ctx, http.MethodGet, "/v1/cluster/requests", nil, "", &out)
}

// Block returns the block at height (0 = latest).
func (c *Client) Block(ctx context.Context, height uint64) (*Block, error) {
	h := "latest"
	if height > 0 {
		h = strconv.FormatUint(height, 10)
	}
	var b Block
	return &b, c.do(ctx, http.MethodGet, "/v1/blocks/"+h, nil, "", &b)
}

// Blocks lists block headers (without txs) from height down, at most limit.
func (c *Client) Blocks(ctx context.Context, from uint64, limit int) ([]Block, error) {
	var bs []Block
	q := fmt.Sprintf("/v1/blocks?from=%d&limit=%d", from, limit)
	return bs, c.do(ctx, http.MethodGet, q, nil, "", &bs)
}

// Tx returns a committed transaction with its receipt.
func (c *Client) Tx(ctx context.Context, hash string) (*Tx, error) {
	var t Tx
	return &t, c.do(ctx, http.MethodGet, "/v1/txs/"+url.PathEscape(hash), nil, "", &t)
}

// Account returns an account; with prove, an SMT inclusion proof too.
func (c *Client) Account(ctx context.Context, addr string, prove bool) (*Account, error) {
	var a Account
	p := "/v1/accounts/" + url.PathEscape(addr)
	if prove {
		p += "?prove=true"
	}
	return &a, c.do(ctx, http.MethodGet, p, nil, "", &a)
}

// Supply returns the supply of every denom.
func (c *Client) Supply(ctx context.Context) ([]Supply, error) {
	var s []Supply
	return s, c.do(ctx, http.MethodGet, "/v1/supply", nil, "", &s)
}

// Denoms returns the chain's declared tokens.
func (c *Client) Denoms(ctx context.Context) ([]Denom, error) {
	var d []Denom
	return d, c.do(ctx, http.MethodGet, "/v1/denoms", nil, "", &d)
}

// SubmitTx sends one signed transaction. With wait, the node answers when
// the transaction is committed (or the wait times out).
func (c *Client) SubmitTx(ctx context.Context, raw []byte, wait bool) (*SubmitResult, error) {
	p := "/v1/txs"
	if wait {
		p += "?wait=commit"
	}
	var r SubmitResult
	return &r, c.do(ctx, http.MethodPost, p, bytes.NewReader(raw), "application/octet-stream", &r)
}

// SubmitBatch sends many signed transactions in one request: the body is the
// concatenation of 4-byte big-endian length-prefixed tx encodings.
func (c *Client) SubmitBatch(ctx context.Context, raws [][]byte) ([]BatchResult, error) {
	var buf bytes.Buffer
	for _, r := range raws {
		var l [4]byte
		l[0], l[1], l[2], l[3] = byte(len(r)>>24), byte(len(r)>>16), byte(len(r)>>8), byte(len(r))
		buf.Write(l[:])
		buf.Write(r)
	}
	var out []BatchResult
	return out, c.do(ctx, http.MethodPost, "/v1/txs/batch", &buf, "application/octet-stream", &out)
}

// Simulate executes a signed transaction against the latest state without
// committing it and returns the receipt it would get.
func (c *Client) Simulate(ctx context.Context, raw []byte) (*Receipt, error) {
	var r Receipt
	return &r, c.do(ctx, http.MethodPost, "/v1/simulate", bytes.NewReader(raw), "application/octet-stream", &r)
}

// TraceTx re-executes a committed transaction on the node and returns its
// gas by part and its contract call tree.
func (c *Client) TraceTx(ctx context.Context, hash string) (*TxTrace, error) {
	var t TxTrace
	return &t, c.do(ctx, http.MethodGet, "/v1/txs/"+url.PathEscape(hash)+"/trace", nil, "", &t)
}

// SearchTxs finds committed transactions (see TxQuery).
func (c *Client) SearchTxs(ctx context.Context, q TxQuery) (*TxSearch, error) {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("sender", q.Sender)
	set("contract", q.Contract)
	set("event", q.Event)
	for _, a := range q.Attrs {
		v.Add("attr", a)
	}
	if q.From > 0 {
		v.Set("from", strconv.FormatUint(q.From, 10))
	}
	if q.To > 0 {
		v.Set("to", strconv.FormatUint(q.To, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set("after", q.After)
	var out TxSearch
	return &out, c.do(ctx, http.MethodGet, "/v1/txs?"+v.Encode(), nil, "", &out)
}

// TxQuery selects transactions: at least one of Sender, Contract, Event.
// Attrs are "key=value" attributes of an Event; From and To bound the
// height (0: none); After is the cursor a previous page returned.
type TxQuery struct {
	Sender, Contract, Event string
	Attrs                   []string
	From, To                uint64
	Limit                   int
	After                   string
}

// GetJSON fetches any API path into out (for endpoints added by subsystems).
func (c *Client) GetJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, "", out)
}

// Events streams server-sent events until ctx ends or the connection drops;
// each event is passed to fn. It returns the error that ended the stream.
func (c *Client) Events(ctx context.Context, fn func(StreamEvent)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/events", nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return fmt.Errorf("client: events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("client: events: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev StreamEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Type != "" || ev.Data != nil {
				fn(ev)
			}
			ev = StreamEvent{}
		case strings.HasPrefix(line, "event:"):
			ev.Type = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			ev.Data = append(ev.Data, strings.TrimSpace(line[len("data:"):])...)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("client: events: %w", err)
	}
	return fmt.Errorf("client: events: stream closed")
}

// WaitHeight polls until the node reaches height or ctx ends.
func (c *Client) WaitHeight(ctx context.Context, height uint64) error {
	for {
		s, err := c.Status(ctx)
		if err == nil && s.Height >= height {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("client: wait for height %d: %w", height, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Codes lists uploaded contract codes.
func (c *Client) Codes(ctx context.Context) ([]Code, error) {
	var out []Code
	return out, c.do(ctx, http.MethodGet, "/v1/contracts/codes", nil, "", &out)
}

// CodeSchema returns the message schema stored with code id (the document
// `sos contract schema` prints); ErrNotFound when the code has none.
func (c *Client) CodeSchema(ctx context.Context, id string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodGet, "/v1/contracts/codes/"+url.PathEscape(id)+"/schema", nil, "", &out)
}

// Contracts lists contract instances.
func (c *Client) Contracts(ctx context.Context) ([]Contract, error) {
	var out []Contract
	return out, c.do(ctx, http.MethodGet, "/v1/contracts", nil, "", &out)
}

// Contract returns one contract instance.
func (c *Client) Contract(ctx context.Context, addr string) (*Contract, error) {
	var out Contract
	return &out, c.do(ctx, http.MethodGet, "/v1/contracts/"+url.PathEscape(addr), nil, "", &out)
}

// ContractState lists a contract's storage from a hex key prefix.
func (c *Client) ContractState(ctx context.Context, addr, prefixHex string, limit int) ([]StateEntry, error) {
	var out []StateEntry
	p := fmt.Sprintf("/v1/contracts/%s/state?prefix=%s&limit=%d", url.PathEscape(addr), url.QueryEscape(prefixHex), limit)
	return out, c.do(ctx, http.MethodGet, p, nil, "", &out)
}

// QueryContract runs a read-only query; the answer is the contract's JSON.
func (c *Client) QueryContract(ctx context.Context, addr string, msg []byte) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, http.MethodPost, "/v1/contracts/"+url.PathEscape(addr)+"/query", bytes.NewReader(msg), "application/json", &out)
}
