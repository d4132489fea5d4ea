package kernel

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

func (n *Node) registerContractAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/contracts/codes", n.handleCodes)
	mux.HandleFunc("GET /v1/contracts/codes/{id}/schema", n.handleCodeSchema)
	mux.HandleFunc("GET /v1/contracts", n.handleContracts)
	mux.HandleFunc("GET /v1/contracts/{addr}", n.handleContract)
	mux.HandleFunc("GET /v1/contracts/{addr}/state", n.handleContractState)
	mux.HandleFunc("POST /v1/contracts/{addr}/query", n.handleContractQuery)
}

func listLimit(r *http.Request, def int) int {
	l, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || l <= 0 || l > 10_000 {
		return def
	}
	return l
}

func (n *Node) handleCodes(w http.ResponseWriter, r *http.Request) {
	st := ledger.NewState(n.store)
	codes, err := n.chain.engine.ListCodes(st, listLimit(r, 1000))
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	warm, err := n.chain.engine.WarmCodes(st)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	lastUse := make(map[ledger.Hash]uint64, len(warm))
	for _, c := range warm {
		lastUse[c.ID] = c.LastUse
	}
	out := []client.Code{}
	for _, c := range codes {
		_, serr := n.chain.engine.Schema(st, c.ID)
		if serr != nil && !errors.Is(serr, contracts.ErrNoSchema) {
			writeErr(w, statusOf(serr), serr)
			return
		}
		use, ok := lastUse[c.ID]
		out = append(out, client.Code{CodeID: c.ID.String(), Creator: c.Creator.String(), Size: int(c.Size), Prepared: int(c.Prepared), Height: c.Height, Instances: c.Instances,
			HasSchema: serr == nil, Warm: ok, LastUse: use})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCodeSchema serves the message schema stored with a code, as it was
// uploaded (404 when the code has none).
func (n *Node) handleCodeSchema(w http.ResponseWriter, r *http.Request) {
	id, err := ledger.ParseHash(r.PathValue("id"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: code id: %w", err))
		return
	}
	b, err := n.chain.engine.Schema(ledger.NewState(n.store), id)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (n *Node) contractJSON(st *ledger.State, a ledger.Address, in *contracts.Instance) (client.Contract, error) {
	c := client.Contract{Address: a.String(), CodeID: in.CodeID.String(), Label: in.Label, Creator: in.Creator.String(),
		Height: in.Height, Calls: in.Calls, GasUsed: in.GasUsed, Balances: []client.Coin{}}
	if !in.Admin.IsZero() {
		c.Admin = in.Admin.String()
	}
	info, err := n.chain.engine.ContractInfo(st, a)
	if err != nil {
		return c, err
	}
	c.ContractName, c.ContractVersion = info.Contract, info.Version
	acc, _, err := (&ledger.Accounts{St: st, Codec: n.chain.codec}).Get(a)
	if err != nil {
		return c, err
	}
	for _, b := range acc.Balances {
		c.Balances = append(c.Balances, client.Coin{Denom: b.Denom, Amount: strconv.FormatUint(b.Amount, 10)})
	}
	return c, nil
}

func (n *Node) handleContracts(w http.ResponseWriter, r *http.Request) {
	st := ledger.NewState(n.store)
	list, err := n.chain.engine.ListInstances(st, listLimit(r, 1000))
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	out := []client.Contract{}
	for _, e := range list {
		c, err := n.contractJSON(st, e.Address, &e.Instance)
		if err != nil {
			writeErr(w, statusOf(err), err)
			return
		}
		out = append(out, c)
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) instanceFromPath(w http.ResponseWriter, r *http.Request) (*ledger.State, ledger.Address, *contracts.Instance, bool) {
	a, err := ledger.ParseAddress(r.PathValue("addr"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return nil, a, nil, false
	}
	st := ledger.NewState(n.store)
	in, err := n.chain.engine.Instance(st, a)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return nil, a, nil, false
	}
	return st, a, in, true
}

func (n *Node) handleContract(w http.ResponseWriter, r *http.Request) {
	st, a, in, ok := n.instanceFromPath(w, r)
	if !ok {
		return
	}
	c, err := n.contractJSON(st, a, in)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (n *Node) handleContractState(w http.ResponseWriter, r *http.Request) {
	st, a, _, ok := n.instanceFromPath(w, r)
	if !ok {
		return
	}
	prefix, err := hex.DecodeString(r.URL.Query().Get("prefix"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: prefix must be hex"))
		return
	}
	entries, err := n.chain.engine.Storage(st, a, prefix, listLimit(r, 100))
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	out := []client.StateEntry{}
	for _, e := range entries {
		se := client.StateEntry{Key: hex.EncodeToString(e.Key), Value: hex.EncodeToString(e.Value)}
		if utf8.Valid(e.Key) {
			se.KeyText = string(e.Key)
		}
		if utf8.Valid(e.Value) {
			se.ValueText = string(e.Value)
		}
		out = append(out, se)
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleContractQuery(w http.ResponseWriter, r *http.Request) {
	a, err := ledger.ParseAddress(r.PathValue("addr"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	msg, err := io.ReadAll(io.LimitReader(r.Body, ledger.MaxContractMsgBytes+1))
	if err != nil || len(msg) > ledger.MaxContractMsgBytes {
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("kernel: query message too large"))
		return
	}
	data, err := n.QueryContract(r.Context(), a, msg)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(rawJSON(data))
}

// QueryContract runs a read-only, gas-capped query on the latest state.
func (n *Node) QueryContract(ctx context.Context, a ledger.Address, msg []byte) ([]byte, error) {
	head := n.store.Head()
	data, _, err := n.chain.engine.Query(ctx, ledger.NewState(n.store), contracts.Env{ChainID: head.ChainID, Height: head.Height, TimeMs: head.Time}, a, msg, vm.DefaultQueryGas)
	return data, err
}
