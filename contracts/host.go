package contracts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// host is the VM's view of the chain for one call frame.
type host struct {
	e        *Engine
	tx       *Tx
	frame    *frame
	readOnly bool
	ctx      context.Context
}

var _ vm.Host = (*host)(nil)

func (h *host) storeKey(k []byte) []byte { return key(tagStore, h.frame.self[:], k) }

func (h *host) StorageGet(k []byte) ([]byte, bool, error) {
	v, err := h.tx.St.Get(h.storeKey(k))
	return v, v != nil, err
}

func (h *host) StorageSet(k, v []byte) error {
	if h.readOnly {
		return vm.ErrReadOnly
	}
	h.tx.St.Set(h.storeKey(k), v)
	return nil
}

func (h *host) StorageDelete(k []byte) error {
	if h.readOnly {
		return vm.ErrReadOnly
	}
	h.tx.St.Delete(h.storeKey(k))
	return nil
}

// StorageIterate iterates lazily (ledger.StateIterator): entries are read
// from the store and the write buffer as the contract asks for them, so an
// iterator costs in proportion to the entries it visits, which the VM
// charges for (GasIterNext per entry, GasIterSkip per deleted or replaced
// entry skipped). It sees the state as of the call: writes the contract
// makes while iterating are not visited.
func (h *host) StorageIterate(start, end []byte, reverse bool) (vm.Iterator, error) {
	prefix := h.storeKey(nil)
	s := h.storeKey(start)
	var en []byte
	if end != nil {
		en = h.storeKey(end)
	} else {
		en = prefixEnd(prefix)
	}
	return &stateIter{it: h.tx.St.NewIterator(s, en, reverse), strip: len(prefix)}, nil
}

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// stateIter strips the contract's storage prefix from a StateIterator.
type stateIter struct {
	it    *ledger.StateIterator
	strip int
}

var _ vm.SkippingIterator = (*stateIter)(nil)

func (s *stateIter) Next() ([]byte, []byte, bool, error) {
	k, v, ok, err := s.it.Next()
	if !ok || err != nil {
		return nil, nil, false, err
	}
	return k[s.strip:], v, true, nil
}

func (s *stateIter) OnSkip(charge func(n int)) { s.it.OnSkip(charge) }

func (s *stateIter) Close() error { return nil }

func (h *host) Balance(a [32]byte, denom string) (uint64, error) {
	return h.e.accounts(h.tx.St).Balance(ledger.Address(a), denom)
}

func (h *host) Transfer(to [32]byte, denom string, amount uint64) error {
	if h.readOnly {
		return vm.ErrReadOnly
	}
	if !h.e.denoms.IsBase(denom) {
		return vm.ErrUnknownDenom
	}
	if amount == 0 {
		return nil
	}
	err := h.e.accounts(h.tx.St).Transfer(h.frame.self, ledger.Address(to), ledger.Coins{{Denom: denom, Amount: amount}})
	if errors.Is(err, ledger.ErrInsufficientFunds) {
		return vm.ErrInsufficientFunds
	}
	return err
}

func (h *host) Call(ctx context.Context, a [32]byte, msg, funds []byte, gasLimit uint64, readOnly bool) ([]byte, uint64, error) {
	coins, err := parseCoinsJSON(funds)
	if err != nil {
		return nil, 0, err
	}
	for _, c := range coins {
		if !h.e.denoms.IsBase(c.Denom) {
			return nil, 0, fmt.Errorf("contracts: funds: %w %q", ledger.ErrUnknownDenom, c.Denom)
		}
	}
	entry := "execute"
	if readOnly || h.readOnly {
		entry, readOnly = "query", true
	}
	// The nested call is metered against its own budget; the VM charges the
	// parent what it used, so the transaction meter must not count it twice.
	sub := &Tx{St: h.tx.St, Gas: ledger.NewGasMeter(gasLimit), ChainID: h.tx.ChainID, Height: h.tx.Height, TimeMs: h.tx.TimeMs,
		Sender: h.tx.Sender, TxHash: h.tx.TxHash, Events: h.tx.Events, calls: h.tx.calls, Trace: h.tx.Trace, Touched: h.tx.Touched}
	data, err := h.e.run(ctx, sub, h.frame, ledger.Address(a), entry, msg, coins, gasLimit, readOnly)
	h.tx.Events, h.tx.calls = sub.Events, sub.calls
	return data, sub.Gas.Used(), err
}

func (h *host) Emit(eventJSON []byte) error {
	var ev struct {
		Type  string `json:"type"`
		Attrs []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"attrs"`
	}
	if err := json.Unmarshal(eventJSON, &ev); err != nil || ev.Type == "" {
		return fmt.Errorf("contracts: event is not {\"type\":..., \"attrs\":[...]}: %w", vm.ErrTrap)
	}
	out := ledger.Event{Type: "wasm-" + ev.Type, Attrs: []ledger.Attr{{Key: "contract", Value: h.frame.self.String()}}}
	for _, a := range ev.Attrs {
		out.Attrs = append(out.Attrs, ledger.Attr{Key: a.Key, Value: a.Value})
	}
	h.tx.Events = append(h.tx.Events, out)
	return nil
}

func (h *host) AddrToString(a [32]byte) string { return ledger.Address(a).String() }

func (h *host) AddrFromString(s string) ([32]byte, error) {
	a, err := ledger.ParseAddress(s)
	return a, err
}
