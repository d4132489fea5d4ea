package sdktest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/bech32"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/blake3"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/hostabi"
)

// frame is the host of one contract call: what the VM gives one instance.
type frame struct {
	app                  *App
	self, sender, caller sdk.Address
	entry                sdk.Entry
	input, funds         []byte
	readonly             bool
	depth                int

	result     []byte
	err        error
	callResult []byte
	iters      map[int32]*iterator
	nextIter   int32
	events     int
}

type iterator struct {
	keys []string
	vals [][]byte
}

func (f *frame) trapf(format string, args ...any) {
	panic(trap(fmt.Sprintf("%v %v: ", f.entry, f.self) + fmt.Sprintf(format, args...)))
}

func (f *frame) store() map[string][]byte { return f.app.instances[f.self].store }

func (f *frame) Input() []byte { return f.input }

func (f *frame) SetResult(b []byte) { f.result = append([]byte(nil), b...) }

func (f *frame) Fail(err error) {
	f.result = []byte(err.Error())
	f.err = err
}

func (f *frame) StorageGet(key []byte) ([]byte, bool) {
	f.checkKey(key)
	v, ok := f.store()[string(key)]
	return append([]byte(nil), v...), ok
}

func (f *frame) checkKey(key []byte) {
	if len(key) > MaxKeySize {
		f.trapf("storage key of %d bytes exceeds %d", len(key), MaxKeySize)
	}
}

func (f *frame) checkWrite(op string) {
	if f.readonly {
		f.trapf("%s inside a query", op)
	}
}

func (f *frame) StorageSet(key, value []byte) {
	f.checkWrite("storage_set")
	f.checkKey(key)
	if len(value) > MaxValueSize {
		f.trapf("storage value of %d bytes exceeds %d", len(value), MaxValueSize)
	}
	f.put(string(key), append([]byte(nil), value...), true)
}

func (f *frame) StorageDelete(key []byte) {
	f.checkWrite("storage_delete")
	f.checkKey(key)
	f.put(string(key), nil, false)
}

func (f *frame) put(k string, v []byte, present bool) {
	st := f.store()
	old, had := st[k]
	if present {
		st[k] = v
	} else {
		delete(st, k)
	}
	f.app.journal = append(f.app.journal, func() {
		if had {
			st[k] = old
		} else {
			delete(st, k)
		}
	})
}

// IterOpen snapshots the range: writes made while the iterator is open are
// not seen by it. Contracts should not rely on either behaviour.
func (f *frame) IterOpen(start, end []byte, reverse bool) int32 {
	st := f.store()
	it := &iterator{}
	for _, k := range slices.SortedFunc(maps.Keys(st), storeKeyLess) {
		if k < string(start) || (end != nil && k >= string(end)) {
			continue
		}
		it.keys = append(it.keys, k)
		it.vals = append(it.vals, st[k])
	}
	if reverse {
		slices.Reverse(it.keys)
		slices.Reverse(it.vals)
	}
	if f.iters == nil {
		f.iters = map[int32]*iterator{}
	}
	if len(f.iters) >= MaxIterators {
		f.trapf("more than %d open iterators", MaxIterators)
	}
	f.nextIter++
	f.iters[f.nextIter] = it
	return f.nextIter
}

func (f *frame) IterNext(id int32) ([]byte, []byte, bool) {
	it := f.iters[id]
	if it == nil {
		f.trapf("storage_iter_next on unknown iterator %d", id)
	}
	if len(it.keys) == 0 {
		return nil, nil, false
	}
	k, v := it.keys[0], it.vals[0]
	it.keys, it.vals = it.keys[1:], it.vals[1:]
	return []byte(k), append([]byte(nil), v...), true
}

func (f *frame) IterClose(id int32) { delete(f.iters, id) }

func (f *frame) BlockHeight() int64 { return int64(f.app.height) }

func (f *frame) BlockTimeMillis() int64 { return f.app.time.UnixMilli() }

func (f *frame) ChainID() string { return f.app.cfg.ChainID }

func (f *frame) Self() hostabi.Address { return f.self }

func (f *frame) Sender() hostabi.Address { return f.sender }

func (f *frame) Caller() hostabi.Address { return f.caller }

func (f *frame) Funds() []byte { return f.funds }

func (f *frame) Balance(addr hostabi.Address, denom string) uint64 {
	return f.app.balances[addr][denom]
}

func (f *frame) Transfer(to hostabi.Address, denom string, amount uint64) int32 {
	f.checkWrite("transfer")
	if !f.app.denoms[denom] {
		return 2
	}
	if err := f.app.move(f.self, to, sdk.Coins{{Denom: denom, Amount: amount}}); err != nil {
		return 1
	}
	return 0
}

func (f *frame) EmitEvent(event []byte) {
	if f.events++; f.events > MaxEvents {
		f.trapf("more than %d events", MaxEvents)
	}
	if len(event) > MaxEventSize {
		f.trapf("event of %d bytes exceeds %d", len(event), MaxEventSize)
	}
	var e sdk.Event
	if err := json.Unmarshal(event, &e); err != nil {
		f.trapf("malformed event: %v", err)
	}
	a := f.app
	n := len(a.events)
	a.events = append(a.events, Event{Contract: f.self, Event: e})
	a.journal = append(a.journal, func() { a.events = a.events[:n] })
}

func (f *frame) nested(addr hostabi.Address, msg, funds []byte, e sdk.Entry, readonly bool) ([]byte, bool) {
	if f.depth >= MaxCallDepth {
		f.trapf("call depth %d exceeds %d", f.depth+1, MaxCallDepth)
	}
	in := f.app.instances[addr]
	if in == nil {
		f.callResult = fmt.Appendf(nil, "%v at %v", ErrNoContract, sdk.Address(addr))
		return f.callResult, false
	}
	var coins sdk.Coins
	if len(funds) > 0 {
		if err := json.Unmarshal(funds, &coins); err != nil {
			f.trapf("malformed funds: %v", err)
		}
	}
	res, err := f.app.send(in.contract, e, addr, f.sender, f.self, msg, coins, readonly, f.depth+1)
	if err != nil {
		// The caller sees only the text, as on the chain.
		if ce, ok := err.(*ContractError); ok {
			f.callResult = []byte(ce.Msg)
		} else {
			f.callResult = []byte(err.Error())
		}
		return f.callResult, false
	}
	f.callResult = res
	return res, true
}

func (f *frame) Call(addr hostabi.Address, msg, funds []byte) ([]byte, bool) {
	f.checkWrite("call")
	return f.nested(addr, msg, funds, sdk.EntryExecute, false)
}

func (f *frame) QueryContract(addr hostabi.Address, msg []byte) ([]byte, bool) {
	return f.nested(addr, msg, nil, sdk.EntryQuery, true)
}

func (f *frame) Sha256(data []byte) [32]byte { return sha256.Sum256(data) }

func (f *frame) Blake3(data []byte) [32]byte { return blake3.Sum256(data) }

func (f *frame) MLDSAVerify(pub, msg, sig, ctx []byte) bool {
	if f.app.cfg.VerifyMLDSA == nil {
		f.trapf("mldsa_verify: no verifier configured (set sdktest.Config.VerifyMLDSA)")
	}
	return f.app.cfg.VerifyMLDSA(pub, msg, sig, ctx)
}

func (f *frame) AddrToString(a hostabi.Address) string { return addrString(a) }

func (f *frame) AddrFromString(s string) (hostabi.Address, bool) {
	hrp, data, err := bech32.Decode(s)
	if err != nil || hrp != sdk.AddressPrefix || len(data) != hostabi.AddressSize {
		return hostabi.Address{}, false
	}
	return hostabi.Address(data), true
}

func (f *frame) DebugLog(msg []byte) { f.app.log = append(f.app.log, string(msg)) }
