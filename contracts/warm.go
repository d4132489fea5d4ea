package contracts

import (
	"encoding/binary"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
)

// The warm code set: a bounded set of code ids, in consensus state, whose
// modules every node keeps loaded (vm.VM.SetPinned), so calling them does
// not pay the VM's load charge. A call of a code outside the set (a cold
// call) pays the load and makes the code warm; when the set is full, the
// code used least recently leaves it. An upload makes its code warm (the
// uploader paid for compiling it, and the module is loaded).
//
// Last use is a block height, not a per-call counter: a warm call records
// its block as its code's last use only when that changes, so a code
// called many times in a block writes state once (GasWarmTouch), and
// eviction picks the smallest last use, ties going to the code that became
// warm first. A pure function of state: every node evicts the same code.
//
// Gas, on top of GasCallBase (which covers reading the warm record):
//   - a warm call: GasWarmTouch when it is its code's first call in the
//     block;
//   - a cold call: GasWarmBase + GasWarmPerCode per code of the set
//     (reading every last use to find the code to evict, rewriting the
//     set), charged before the VM call, and the VM's load charge; the code
//     becomes warm only if the call paid the load (vm.Result.LoadGas), so
//     a call whose gas cannot pay it warms nothing. The warming outlives a
//     failing call (the load was paid) but not a failing transaction,
//     whose writes are all reverted;
//   - an upload: GasWarmBase + GasWarmPerCode per code of the set.
const (
	GasWarmTouch   = 3_500  // one 8-byte write under a 35-byte key (ledger's WriteBase + WritePerByte)
	GasWarmBase    = 10_000 // writing the new code's last use, deleting the evicted one's, the set record's write
	GasWarmPerCode = 1_400  // reading one last use (ReadBase + key and value) and 32 bytes of the set record
)

// WarmCode is a member of the warm set.
type WarmCode struct {
	ID      ledger.Hash `json:"code_id"`
	LastUse uint64      `json:"last_use"` // height of the last block that called it
}

// warmGas is what making a code warm costs.
func (e *Engine) warmGas() uint64 { return GasWarmBase + GasWarmPerCode*uint64(e.warmSize) }

// lastUse reports whether id is warm in st, and the height of its last use.
func lastUse(st *ledger.State, id ledger.Hash) (uint64, bool, error) {
	raw, err := st.Get(key(tagWarmUse, id[:]))
	switch {
	case err != nil:
		return 0, false, err
	case raw == nil:
		return 0, false, nil
	case len(raw) != 8:
		return 0, false, fmt.Errorf("contracts: last use of warm code %s: %d bytes: %w", id, len(raw), ledger.ErrCorrupt)
	}
	return binary.BigEndian.Uint64(raw), true, nil
}

func setLastUse(st *ledger.State, id ledger.Hash, height uint64) {
	st.Set(key(tagWarmUse, id[:]), binary.BigEndian.AppendUint64(nil, height))
}

// warmIDs returns the warm set's ids in the order they became warm.
func warmIDs(st *ledger.State) ([]ledger.Hash, error) {
	raw, err := st.Get(key(tagWarmSet))
	if err != nil {
		return nil, err
	}
	if len(raw)%32 != 0 {
		return nil, fmt.Errorf("contracts: warm set record of %d bytes: %w", len(raw), ledger.ErrCorrupt)
	}
	ids := make([]ledger.Hash, len(raw)/32)
	for i := range ids {
		copy(ids[i][:], raw[32*i:])
	}
	return ids, nil
}

// makeWarm adds id (not warm) to the warm set with height as its last
// use, evicting the least recently used code when the set is full. The
// caller has charged warmGas.
func (e *Engine) makeWarm(st *ledger.State, id ledger.Hash, height uint64) error {
	ids, err := warmIDs(st)
	if err != nil {
		return err
	}
	if len(ids) >= e.warmSize {
		// Evict down to warmSize-1 (more than one only if the chain's
		// warm_codes shrank).
		for len(ids) >= e.warmSize {
			oldest, oldestUse := -1, uint64(0)
			for i, w := range ids {
				use, ok, err := lastUse(st, w)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("contracts: warm code %s has no last use: %w", w, ledger.ErrCorrupt)
				}
				if oldest < 0 || use < oldestUse {
					oldest, oldestUse = i, use
				}
			}
			st.Delete(key(tagWarmUse, ids[oldest][:]))
			ids = append(ids[:oldest], ids[oldest+1:]...)
		}
	}
	ids = append(ids, id)
	rec := make([]byte, 0, 32*len(ids))
	for _, w := range ids {
		rec = append(rec, w[:]...)
	}
	st.Set(key(tagWarmSet), rec)
	setLastUse(st, id, height)
	return nil
}

// WarmCodes returns the warm set of st, in the order its codes became
// warm.
func (e *Engine) WarmCodes(st *ledger.State) ([]WarmCode, error) {
	ids, err := warmIDs(st)
	if err != nil {
		return nil, err
	}
	out := make([]WarmCode, len(ids))
	for i, id := range ids {
		use, ok, err := lastUse(st, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("contracts: warm code %s has no last use: %w", id, ledger.ErrCorrupt)
		}
		out[i] = WarmCode{ID: id, LastUse: use}
	}
	return out, nil
}

// SyncWarm pins the modules of st's warm set in the VM's module cache
// (vm.VM.SetPinned), so no call or query evicts them. A node calls it with
// its committed state after every block and once at start: after a
// restart the modules are not in memory, and each loads on its first call,
// at the node's own cost (at most one load per warm code per restart;
// see "Warm code" in vm/doc.go).
func (e *Engine) SyncWarm(st *ledger.State) error {
	ids, err := warmIDs(st)
	if err != nil {
		return err
	}
	pins := make([][32]byte, len(ids))
	for i, id := range ids {
		pins[i] = id
	}
	if err := e.vm.SetPinned(pins); err != nil {
		return fmt.Errorf("contracts: pinning the warm set: %w", err)
	}
	return nil
}
