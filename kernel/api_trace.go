package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

func (n *Node) registerTraceAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/txs", n.handleSearchTxs)
	mux.HandleFunc("GET /v1/txs/{hash}/trace", n.handleTrace)
}

// ParseTxQuery reads a transaction search from URL parameters: contract,
// sender (bech32 addresses), event (a type), attr (key=value, repeatable;
// attributes of that event), from and to (heights, inclusive), limit and
// after (the cursor of the previous page).
func ParseTxQuery(q map[string][]string) (ledger.TxFilter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var f ledger.TxFilter
	for _, k := range []string{"sender", "contract"} {
		s := get(k)
		if s == "" {
			continue
		}
		a, err := ledger.ParseAddress(s)
		if err != nil {
			return f, fmt.Errorf("kernel: %s %q: %w: %w", k, s, err, ledger.ErrBadQuery)
		}
		if k == "sender" {
			f.Sender = a.String()
		} else {
			f.Contract = a.String()
		}
	}
	f.Event = get("event")
	for _, kv := range q["attr"] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return f, fmt.Errorf("kernel: attr %q: want key=value: %w", kv, ledger.ErrBadQuery)
		}
		f.Attrs = append(f.Attrs, ledger.Attr{Key: k, Value: v})
	}
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := get(p.name); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return f, fmt.Errorf("kernel: %s %q: not a height: %w", p.name, s, ledger.ErrBadQuery)
			}
			*p.dst = v
		}
	}
	if s := get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > ledger.MaxTxQuery {
			return f, fmt.Errorf("kernel: limit %q: want 1 to %d: %w", s, ledger.MaxTxQuery, ledger.ErrBadQuery)
		}
		f.Limit = v
	}
	if s := get("after"); s != "" {
		p, err := ledger.ParseTxPos(s)
		if err != nil {
			return f, fmt.Errorf("kernel: after: %w: %w", err, ledger.ErrBadQuery)
		}
		f.After = &p
	}
	return f, nil
}

func (n *Node) handleSearchTxs(w http.ResponseWriter, r *http.Request) {
	f, err := ParseTxQuery(r.URL.Query())
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	out, err := n.SearchTxs(f)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// SearchTxs runs a transaction search on the index.
func (n *Node) SearchTxs(f ledger.TxFilter) (*client.TxSearch, error) {
	res, err := n.store.SearchTxs(f)
	if err != nil {
		return nil, err
	}
	out := &client.TxSearch{Txs: make([]client.Tx, 0, len(res.Receipts)), IndexBase: res.IndexBase}
	for i := range res.Receipts {
		rc := &res.Receipts[i]
		raw, err := n.store.TxBytes(rc.Height, rc.Index)
		if err != nil {
			return nil, err
		}
		t, err := n.txJSON(raw, rc)
		if err != nil {
			return nil, err
		}
		out.Txs = append(out.Txs, *t)
	}
	if res.Next != nil {
		out.Next = res.Next.String()
	}
	return out, nil
}

func (n *Node) handleTrace(w http.ResponseWriter, r *http.Request) {
	h, err := ledger.ParseHash(r.PathValue("hash"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	t, err := n.TraceTx(r.Context(), h)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// TraceTx re-executes a committed transaction (Chain.Trace) and renders it.
func (n *Node) TraceTx(ctx context.Context, h ledger.Hash) (*client.TxTrace, error) {
	tr, err := n.chain.Trace(ctx, h)
	if err != nil {
		return nil, err
	}
	raw, err := n.store.TxBytes(tr.Receipt.Height, tr.Receipt.Index)
	if err != nil {
		return nil, err
	}
	tx, err := n.chain.codec.DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	out := &client.TxTrace{TxHash: h.String(), Height: tr.Receipt.Height, Index: tr.Receipt.Index,
		Receipt: apiReceipt(&tr.Receipt, tx.GasLimit), Gas: make([]client.GasItem, len(tr.Gas))}
	for i, g := range tr.Gas {
		out.Gas[i] = client.GasItem{What: g.What, Gas: g.Gas}
	}
	out.Calls = apiCalls(tr.Calls)
	out.Receipt.Logs = callLogs(out.Calls, nil)
	return out, nil
}

// apiCalls converts the call tree (the JSON forms are the same).
func apiCalls(calls []*contracts.CallTrace) []client.CallTrace {
	out := []client.CallTrace{}
	b, err := json.Marshal(calls)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		panic(fmt.Sprintf("kernel: call trace does not convert: %v", err)) // same fields on both sides
	}
	return out
}

// callLogs lists the debug logs of a call tree, depth first.
func callLogs(calls []client.CallTrace, out []client.CallLog) []client.CallLog {
	for _, c := range calls {
		if c.Log != "" {
			out = append(out, client.CallLog{Contract: c.Contract, Entry: c.Entry, Depth: c.Depth, Log: c.Log})
		}
		out = callLogs(c.Calls, out)
	}
	return out
}
