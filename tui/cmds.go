package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// Messages: every result of IO reaches Update as one of these. node is the
// index of the node URL the answer came from.
type (
	statusMsg struct {
		node   int
		status *client.Status
		err    error
	}
	// blocksMsg is a page of block headers; older marks a page fetched to
	// scroll further back.
	blocksMsg struct {
		node   int
		older  bool
		blocks []client.Block
		err    error
	}
	blockMsg struct {
		node  int
		block *client.Block
		err   error
	}
	supplyMsg struct {
		node   int
		supply []client.Supply
		denoms []client.Denom
		err    error
	}
	accountMsg struct {
		node    int
		addr    string
		account *client.Account
		err     error
	}
	contractsMsg struct {
		node      int
		codes     []client.Code
		contracts []client.Contract
		err       error
	}
	stateMsg struct {
		node    int
		addr    string
		entries []client.StateEntry
		err     error
	}
	// romeMsg is one snapshot of the ROME market: the summary, the
	// policies, recent epochs (newest first) and the lists.
	romeMsg struct {
		node     int
		market   *client.RomeMarket
		policies []client.RomePolicy
		epochs   []client.RomeEpoch
		offers   []client.RomeOffer
		requests []client.RomeRequest
		leases   []client.RomeLease
		err      error
	}
	certsMsg struct {
		node  int
		certs []client.Certificate
		err   error
	}
	// jobsMsg is the newest jobs the node knows, newest first.
	jobsMsg struct {
		node int
		jobs []client.Job
		err  error
	}

	// Stream messages come from a node's event stream goroutine.
	blockEventMsg struct {
		node int
		ev   client.BlockEvent
	}
	txEventMsg struct {
		node int
		ev   client.TxEvent
	}
	// streamDownMsg says the stream ended with err and is retried after
	// retry.
	streamDownMsg struct {
		node  int
		err   error
		retry time.Duration
	}

	// refreshMsg is the debounced refresh after block events.
	refreshMsg struct{}
	// tickMsg is the slow fallback refresh.
	tickMsg struct{}
)

// requestTimeout bounds every API call so a hung node cannot wedge a view.
const requestTimeout = 5 * time.Second

// fetcher builds the commands that talk to the nodes; it holds the context
// that ends them when the program stops.
type fetcher struct {
	ctx     context.Context
	clients []*client.Client
}

func (f fetcher) call(node int, fn func(ctx context.Context, c *client.Client) tea.Msg) tea.Cmd {
	if node < 0 || node >= len(f.clients) {
		return nil
	}
	c := f.clients[node]
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(f.ctx, requestTimeout)
		defer cancel()
		return fn(ctx, c)
	}
}

func (f fetcher) status(node int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		s, err := c.Status(ctx)
		if err != nil {
			s = nil
		}
		return statusMsg{node: node, status: s, err: err}
	})
}

// latestBlocks fetches the newest limit block headers. (client.Blocks takes a
// numeric from, and from=0 means block 0, so "latest" goes through GetJSON.)
func (f fetcher) latestBlocks(node, limit int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		var bs []client.Block
		err := c.GetJSON(ctx, fmt.Sprintf("/v1/blocks?from=latest&limit=%d", limit), &bs)
		return blocksMsg{node: node, blocks: bs, err: err}
	})
}

func (f fetcher) olderBlocks(node int, from uint64, limit int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		bs, err := c.Blocks(ctx, from, limit)
		return blocksMsg{node: node, older: true, blocks: bs, err: err}
	})
}

func (f fetcher) block(node int, height uint64) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		b, err := c.Block(ctx, height)
		if err != nil {
			b = nil
		}
		return blockMsg{node: node, block: b, err: err}
	})
}

func (f fetcher) supply(node int, withDenoms bool) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		s, err := c.Supply(ctx)
		if err != nil {
			return supplyMsg{node: node, err: err}
		}
		var ds []client.Denom
		if withDenoms {
			if ds, err = c.Denoms(ctx); err != nil {
				return supplyMsg{node: node, err: err}
			}
		}
		return supplyMsg{node: node, supply: s, denoms: ds}
	})
}

func (f fetcher) account(node int, addr string) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		a, err := c.Account(ctx, addr, false)
		if err != nil {
			a = nil
		}
		return accountMsg{node: node, addr: addr, account: a, err: err}
	})
}

func (f fetcher) contracts(node int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		codes, err := c.Codes(ctx)
		if err != nil {
			return contractsMsg{node: node, err: err}
		}
		cs, err := c.Contracts(ctx)
		return contractsMsg{node: node, codes: codes, contracts: cs, err: err}
	})
}

// stateLimit is how many storage entries the browser loads at once.
const stateLimit = 500

func (f fetcher) contractState(node int, addr string) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		es, err := c.ContractState(ctx, addr, "", stateLimit)
		return stateMsg{node: node, addr: addr, entries: es, err: err}
	})
}

// romeListLimit bounds each ROME list (offers, requests, leases); romeEpochs
// is how many epoch records feed the price history.
const (
	romeListLimit = 500
	romeEpochs    = 60
)

// rome fetches the market snapshot. The first answer that fails ends it: a
// node without the market answers 404 (no API) or 503 (not configured) on
// every endpoint alike.
func (f fetcher) rome(node int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		out := romeMsg{node: node}
		var err error
		if out.market, err = c.RomeMarket(ctx); err != nil {
			return romeMsg{node: node, err: err}
		}
		if out.policies, err = c.RomePolicies(ctx); err != nil {
			return romeMsg{node: node, err: err}
		}
		if out.epochs, err = c.RomeEpochs(ctx, romeEpochs); err != nil {
			return romeMsg{node: node, err: err}
		}
		lf := client.RomeFilter{Status: "all", Limit: romeListLimit}
		if out.offers, err = c.RomeOffers(ctx, lf); err != nil {
			return romeMsg{node: node, err: err}
		}
		if out.requests, err = c.RomeRequests(ctx, lf); err != nil {
			return romeMsg{node: node, err: err}
		}
		if out.leases, err = c.RomeLeases(ctx, lf); err != nil {
			return romeMsg{node: node, err: err}
		}
		return out
	})
}

func (f fetcher) certs(node int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		cs, err := c.Certificates(ctx, "")
		return certsMsg{node: node, certs: cs, err: err}
	})
}

// jobsLimit is how many of the newest jobs the Jobs view loads.
const jobsLimit = 500

func (f fetcher) jobs(node int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		l, err := c.Jobs(ctx, client.JobFilter{Limit: jobsLimit})
		if err != nil {
			return jobsMsg{node: node, err: err}
		}
		return jobsMsg{node: node, jobs: l.Jobs}
	})
}

// backoff bounds the reconnect delays of an event stream.
type backoff struct {
	min, max time.Duration
}

func (b backoff) next(d time.Duration) time.Duration {
	if d < b.min {
		return b.min
	}
	return min(2*d, b.max)
}

// startStream returns a command that starts the goroutine reading node's
// event stream into ch; it reconnects with bounded exponential backoff until
// ctx ends. The command itself answers no message: waitStream delivers what
// the goroutine sends.
func (f fetcher) startStream(node int, ch chan<- tea.Msg, bo backoff) tea.Cmd {
	if node < 0 || node >= len(f.clients) {
		return nil
	}
	c, ctx := f.clients[node], f.ctx
	return func() tea.Msg {
		go streamLoop(ctx, node, c, ch, bo)
		return nil
	}
}

func streamLoop(ctx context.Context, node int, c *client.Client, ch chan<- tea.Msg, bo backoff) {
	send := func(m tea.Msg) bool {
		select {
		case ch <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var delay time.Duration
	for ctx.Err() == nil {
		got := false
		err := c.Events(ctx, func(ev client.StreamEvent) {
			if m := decodeEvent(node, ev); m != nil {
				got = true
				send(m)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if got {
			delay = 0 // the stream worked: start the backoff over
		}
		delay = bo.next(delay)
		if !send(streamDownMsg{node: node, err: err, retry: delay}) {
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// decodeEvent turns a stream event into a message; unknown or malformed
// events are dropped (a newer node may send kinds we do not know).
func decodeEvent(node int, ev client.StreamEvent) tea.Msg {
	switch ev.Type {
	case "block":
		var b client.BlockEvent
		if json.Unmarshal(ev.Data, &b) != nil {
			return nil
		}
		return blockEventMsg{node: node, ev: b}
	case "tx":
		var t client.TxEvent
		if json.Unmarshal(ev.Data, &t) != nil {
			return nil
		}
		return txEventMsg{node: node, ev: t}
	}
	return nil
}

// waitStream returns a command that delivers the next message of a node's
// stream channel; Update issues it again after each such message.
func (f fetcher) waitStream(ch <-chan tea.Msg) tea.Cmd {
	ctx := f.ctx
	return func() tea.Msg {
		select {
		case m := <-ch:
			return m
		case <-ctx.Done():
			return nil
		}
	}
}

func tickAfter(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return tickMsg{} })
}

func refreshAfter(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return refreshMsg{} })
}

// notFound reports whether err is the node answering 404: an API the node
// does not serve (yet).
func notFound(err error) bool { return errors.Is(err, client.ErrNotFound) }

// unavailable reports whether err is the node answering 503: it serves the
// API but the feature is not configured.
func unavailable(err error) bool {
	var he *client.HTTPError
	return errors.As(err, &he) && he.Status == http.StatusServiceUnavailable
}
