package vm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"lukechampine.com/blake3"

	"github.com/sos-kernel/sos/vm/meter"
)

type stateKey struct{}

// callState is everything host functions know about the running call.
type callState struct {
	ctx        context.Context // of the Call, for nested calls
	env        *Env
	host       Host
	input      []byte
	result     []byte
	resultCap  int // limit of set_result (0: MaxResultBytes); Limits.ResultBytes
	callResult []byte
	gas        api.MutableGlobal
	iters      []*iterState
	events     int

	log    []byte
	logCap int // < 0: no log

	// Clocks: realtime = realBase + advance, monotonic = monoBase + advance;
	// poll_oneoff advances both (virtual time), nothing else does.
	realBase, monoBase, advance int64
	rng                         *rng

	nestedGas uint64 // gas of nested calls so far (Trace keeps it apart)

	trap     error // first reason the host aborted the guest
	exited   bool
	exitCode uint32
	prepare  bool // running _initialize inside Prepare: no Host
}

// SkippingIterator is an Iterator that examines entries it does not
// return on its way to the next one: entries deleted in the write buffer,
// and committed values a buffered write replaces. storage_iter_open hands
// it a function that charges GasIterSkip per skipped entry; the iterator
// must call it as it skips (at least every few dozen entries), before it
// does more work. The function aborts the call (it panics) once gas runs
// out, so no unpaid skipping happens.
type SkippingIterator interface {
	Iterator
	OnSkip(charge func(n int))
}

type iterState struct {
	it       Iterator
	key, val []byte // pending entry that did not fit the guest's buffers
	pending  bool
	done     bool
}

// abort records err as the reason and unwinds the guest.
func (s *callState) abort(t *trap) {
	if s.trap == nil {
		s.trap = t.err
	}
	panic(t)
}

// charge lowers the gas counter by n and aborts when it goes negative; it
// refuses to run when the counter is already negative.
func (s *callState) charge(n uint64) {
	g := int64(s.gas.Get())
	if g < 0 {
		s.abort(newTrap(ErrOutOfGas, "gas exhausted before host call"))
	}
	if n > uint64(g) {
		s.gas.Set(uint64(g - int64(min(n, 1<<62))))
		s.abort(newTrap(ErrOutOfGas, "host call needs %d gas, %d left", n, g))
	}
	s.gas.Set(uint64(g - int64(n)))
}

func (s *callState) appendLog(p []byte) {
	if s.logCap < 0 {
		return
	}
	s.log = append(s.log, p...)
	if len(s.log) > 2*s.logCap {
		s.log = append(s.log[:0], s.log[len(s.log)-s.logCap:]...)
	}
}

func (s *callState) finishLog() {
	if s.logCap >= 0 && len(s.log) > s.logCap {
		s.log = s.log[len(s.log)-s.logCap:]
	}
}

func (s *callState) closeIterators() {
	for i, it := range s.iters {
		if it != nil {
			_ = it.it.Close()
			s.iters[i] = nil
		}
	}
	s.finishLog()
}

func (s *callState) requireHost(name string) {
	if s.prepare {
		s.abort(newTrap(ErrTrap, "%s called during module initialization", name))
	}
}

func (s *callState) requireWritable(name string) {
	if s.env.ReadOnly {
		s.abort(newTrap(ErrReadOnly, "%s in a read-only call", name))
	}
}

func (s *callState) hostErr(name string, err error) {
	if s.trap == nil {
		s.trap = fmt.Errorf("vm: host %s: %w", name, err)
	}
	panic(&trap{err: s.trap})
}

// Guest memory access. Every pointer and length comes from the guest, so
// each access is bounds-checked and aborts with ErrTrap when out of range.

func (s *callState) view(m api.Memory, name string, ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	b, ok := m.Read(ptr, n)
	if !ok {
		s.abort(newTrap(ErrTrap, "%s: out of bounds memory access (%d bytes at %#x)", name, n, ptr))
	}
	return b
}

// bytes copies guest memory after checking n against limit.
func (s *callState) bytes(m api.Memory, name string, ptr, n uint32, limit int) []byte {
	if int64(int32(n)) < 0 || int(n) > limit {
		s.abort(newTrap(ErrLimit, "%s: %d bytes, limit %d", name, n, limit))
	}
	s.charge(perKiB(uint64(n), GasCopyPerKiB))
	return append([]byte(nil), s.view(m, name, ptr, n)...)
}

func (s *callState) write(m api.Memory, name string, ptr uint32, b []byte) {
	s.charge(perKiB(uint64(len(b)), GasCopyPerKiB))
	if len(b) > 0 && !m.Write(ptr, b) {
		s.abort(newTrap(ErrTrap, "%s: out of bounds memory access (%d bytes at %#x)", name, len(b), ptr))
	}
}

func (s *callState) addr(m api.Memory, name string, ptr uint32) (a [32]byte) {
	copy(a[:], s.view(m, name, ptr, 32))
	return a
}

type hostFunc struct {
	name            string
	params, results []api.ValueType
	fn              func(s *callState, m api.Memory, stack []uint64)
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func vt(ts ...api.ValueType) []api.ValueType { return ts }

// sosFuncs is the host ABI v1 (docs/contracts-abi.md), module "sos".
func sosFuncs() []hostFunc {
	return []hostFunc{
		{"input_len", nil, vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("input_len")
			st[0] = uint64(len(s.input))
		}},
		{"input_read", vt(i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("input_read")
			s.write(m, "input_read", uint32(st[0]), s.input)
		}},
		{"set_result", vt(i32, i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("set_result")
			limit := s.resultCap
			if limit == 0 {
				limit = MaxResultBytes
			}
			s.result = s.bytes(m, "set_result", uint32(st[0]), uint32(st[1]), limit)
		}},
		{"storage_get", vt(i32, i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("storage_get")
			s.charge(GasStorageGet)
			key := s.bytes(m, "storage_get key", uint32(st[0]), uint32(st[1]), MaxKeyBytes)
			val, found, err := s.host.StorageGet(key)
			if err != nil {
				s.hostErr("storage_get", err)
			}
			if !found {
				st[0] = uint64(uint32(0xffffffff))
				return
			}
			s.charge(perKiB(uint64(len(val)), GasStoreReadPerKiB)) // copied to the guest or not
			if len(val) <= int(uint32(st[3])) && int32(st[3]) >= 0 {
				s.write(m, "storage_get value", uint32(st[2]), val)
			}
			st[0] = uint64(uint32(len(val)))
		}},
		{"storage_set", vt(i32, i32, i32, i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("storage_set")
			s.requireWritable("storage_set")
			key := s.bytes(m, "storage_set key", uint32(st[0]), uint32(st[1]), MaxKeyBytes)
			val := s.bytes(m, "storage_set value", uint32(st[2]), uint32(st[3]), MaxValueBytes)
			s.charge(GasStorageSet + GasStorageSetPerByte*uint64(len(key)+len(val)))
			if err := s.host.StorageSet(key, val); err != nil {
				s.hostErr("storage_set", err)
			}
		}},
		{"storage_delete", vt(i32, i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("storage_delete")
			s.requireWritable("storage_delete")
			s.charge(GasStorageDelete)
			key := s.bytes(m, "storage_delete key", uint32(st[0]), uint32(st[1]), MaxKeyBytes)
			if err := s.host.StorageDelete(key); err != nil {
				s.hostErr("storage_delete", err)
			}
		}},
		{"storage_iter_open", vt(i32, i32, i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("storage_iter_open")
			s.charge(GasIterOpen)
			start := s.bytes(m, "storage_iter_open start", uint32(st[0]), uint32(st[1]), MaxKeyBytes)
			var end []byte
			if int32(st[3]) != -1 {
				end = s.bytes(m, "storage_iter_open end", uint32(st[2]), uint32(st[3]), MaxKeyBytes)
				if end == nil {
					end = []byte{}
				}
			}
			id := -1
			for i, it := range s.iters {
				if it == nil {
					id = i
					break
				}
			}
			if id < 0 {
				if len(s.iters) >= MaxIterators {
					s.abort(newTrap(ErrLimit, "storage_iter_open: more than %d open iterators", MaxIterators))
				}
				id = len(s.iters)
				s.iters = append(s.iters, nil)
			}
			it, err := s.host.StorageIterate(start, end, uint32(st[4]) != 0)
			if err != nil {
				s.hostErr("storage_iter_open", err)
			}
			if si, ok := it.(SkippingIterator); ok {
				si.OnSkip(func(n int) { s.charge(uint64(n) * GasIterSkip) })
			}
			s.iters[id] = &iterState{it: it}
			st[0] = uint64(id)
		}},
		{"storage_iter_next", vt(i32, i32, i32, i32, i32), vt(i64), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("storage_iter_next")
			s.charge(GasIterNext)
			it := s.iter(uint32(st[0]), "storage_iter_next")
			if !it.pending && !it.done {
				k, v, ok, err := it.it.Next()
				if err != nil {
					s.hostErr("storage_iter_next", err)
				}
				if !ok {
					it.done = true
				} else {
					it.key, it.val, it.pending = k, v, true
					s.charge(perKiB(uint64(len(k)+len(v)), GasStoreReadPerKiB))
				}
			}
			if it.done {
				st[0] = ^uint64(0)
				return
			}
			kcap, vcap := int32(st[2]), int32(st[4])
			if len(it.key) <= int(kcap) && len(it.val) <= int(vcap) {
				s.write(m, "storage_iter_next key", uint32(st[1]), it.key)
				s.write(m, "storage_iter_next value", uint32(st[3]), it.val)
				it.pending = false
			}
			st[0] = uint64(len(it.key))<<32 | uint64(len(it.val))
		}},
		{"storage_iter_close", vt(i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("storage_iter_close")
			id := uint32(st[0])
			it := s.iter(id, "storage_iter_close")
			s.iters[id] = nil
			if err := it.it.Close(); err != nil {
				s.hostErr("storage_iter_close", err)
			}
		}},
		{"block_height", nil, vt(i64), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("block_height")
			st[0] = s.env.Height
		}},
		{"block_time", nil, vt(i64), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("block_time")
			st[0] = uint64(s.env.TimeMs)
		}},
		{"chain_id", vt(i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("chain_id")
			s.copyOut(m, "chain_id", uint32(st[0]), uint32(st[1]), []byte(s.env.ChainID), st)
		}},
		{"self_address", vt(i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("self_address")
			s.write(m, "self_address", uint32(st[0]), s.env.Self[:])
		}},
		{"sender", vt(i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("sender")
			s.write(m, "sender", uint32(st[0]), s.env.Sender[:])
		}},
		{"caller", vt(i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("caller")
			s.write(m, "caller", uint32(st[0]), s.env.Caller[:])
		}},
		{"funds", vt(i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("funds")
			s.copyOut(m, "funds", uint32(st[0]), uint32(st[1]), s.env.Funds, st)
		}},
		{"balance", vt(i32, i32, i32), vt(i64), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("balance")
			s.charge(GasBalance)
			a := s.addr(m, "balance", uint32(st[0]))
			denom := s.bytes(m, "balance denom", uint32(st[1]), uint32(st[2]), MaxDenomBytes)
			bal, err := s.host.Balance(a, string(denom))
			if err != nil {
				s.hostErr("balance", err)
			}
			st[0] = bal
		}},
		{"transfer", vt(i32, i32, i32, i64), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("transfer")
			s.requireWritable("transfer")
			s.charge(GasTransfer)
			a := s.addr(m, "transfer", uint32(st[0]))
			denom := s.bytes(m, "transfer denom", uint32(st[1]), uint32(st[2]), MaxDenomBytes)
			switch err := s.host.Transfer(a, string(denom), st[3]); {
			case err == nil:
				st[0] = 0
			case errors.Is(err, ErrInsufficientFunds):
				st[0] = 1
			case errors.Is(err, ErrUnknownDenom):
				st[0] = 2
			default:
				s.hostErr("transfer", err)
			}
		}},
		{"emit_event", vt(i32, i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("emit_event")
			if s.events++; s.events > MaxEvents {
				s.abort(newTrap(ErrLimit, "emit_event: more than %d events", MaxEvents))
			}
			ev := s.bytes(m, "emit_event", uint32(st[0]), uint32(st[1]), MaxEventBytes)
			s.charge(GasEmitEvent + GasEmitPerByte*uint64(len(ev)))
			if err := s.host.Emit(ev); err != nil {
				s.hostErr("emit_event", err)
			}
		}},
		{"call", vt(i32, i32, i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("call")
			s.requireWritable("call")
			a := s.addr(m, "call", uint32(st[0]))
			msg := s.bytes(m, "call message", uint32(st[1]), uint32(st[2]), MaxInputBytes)
			funds := s.bytes(m, "call funds", uint32(st[3]), uint32(st[4]), MaxFundsBytes)
			st[0] = s.nested(a, msg, funds, false)
		}},
		{"query_contract", vt(i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("query_contract")
			a := s.addr(m, "query_contract", uint32(st[0]))
			msg := s.bytes(m, "query_contract message", uint32(st[1]), uint32(st[2]), MaxInputBytes)
			st[0] = s.nested(a, msg, nil, true)
		}},
		{"call_result_len", nil, vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("call_result_len")
			st[0] = uint64(len(s.callResult))
		}},
		{"call_result_read", vt(i32), nil, func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("call_result_read")
			s.write(m, "call_result_read", uint32(st[0]), s.callResult)
		}},
		{"sha256", vt(i32, i32, i32), nil, func(s *callState, m api.Memory, st []uint64) {
			data := s.hashInput(m, "sha256", uint32(st[0]), uint32(st[1]), GasSHA256PerKiB)
			sum := sha256.Sum256(data)
			s.write(m, "sha256", uint32(st[2]), sum[:])
		}},
		{"blake3", vt(i32, i32, i32), nil, func(s *callState, m api.Memory, st []uint64) {
			// lukechampine.com/blake3 hashes large inputs on several
			// goroutines: GasBLAKE3PerKiB prices the CPU time of all of them.
			data := s.hashInput(m, "blake3", uint32(st[0]), uint32(st[1]), GasBLAKE3PerKiB)
			sum := blake3.Sum256(data)
			s.write(m, "blake3", uint32(st[2]), sum[:])
		}},
		{"mldsa_verify", vt(i32, i32, i32, i32, i32, i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.charge(GasMLDSAVerify)
			arg := func(i int, what string) []byte {
				n := uint32(st[i+1])
				if int64(int32(n)) < 0 || n > MaxCryptoArgBytes {
					s.abort(newTrap(ErrLimit, "mldsa_verify %s: %d bytes, limit %d", what, n, MaxCryptoArgBytes))
				}
				s.charge(perKiB(uint64(n), GasMLDSAPerKiB))
				return s.view(m, "mldsa_verify "+what, uint32(st[i]), n)
			}
			pkb, msg, sig, ctx := arg(0, "key"), arg(2, "message"), arg(4, "signature"), arg(6, "context")
			var pk mldsa65.PublicKey
			st[0] = 0
			if len(pkb) == mldsa65.PublicKeySize && len(sig) == mldsa65.SignatureSize && len(ctx) <= 255 &&
				pk.UnmarshalBinary(pkb) == nil && mldsa65.Verify(&pk, msg, ctx, sig) {
				st[0] = 1
			}
		}},
		{"addr_to_string", vt(i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("addr_to_string")
			s.charge(GasAddrConvert)
			a := s.addr(m, "addr_to_string", uint32(st[0]))
			s.copyOut(m, "addr_to_string", uint32(st[1]), uint32(st[2]), []byte(s.host.AddrToString(a)), st)
		}},
		{"addr_from_string", vt(i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			s.requireHost("addr_from_string")
			s.charge(GasAddrConvert)
			str := s.bytes(m, "addr_from_string", uint32(st[0]), uint32(st[1]), MaxAddrStringBytes)
			a, err := s.host.AddrFromString(string(str))
			if err != nil {
				st[0] = 1
				return
			}
			s.write(m, "addr_from_string", uint32(st[2]), a[:])
			st[0] = 0
		}},
		{"debug_log", vt(i32, i32), nil, func(s *callState, m api.Memory, st []uint64) {
			n := uint32(st[1])
			s.charge(perKiB(uint64(n), GasCopyPerKiB))
			s.appendLog(s.view(m, "debug_log", uint32(st[0]), n))
		}},
	}
}

func (s *callState) iter(id uint32, name string) *iterState {
	if int(id) >= len(s.iters) || s.iters[id] == nil {
		s.abort(newTrap(ErrTrap, "%s: unknown iterator %d", name, id))
	}
	return s.iters[id]
}

// copyOut implements the "(dst, cap) -> len, copied when it fits" pattern.
func (s *callState) copyOut(m api.Memory, name string, dst, capacity uint32, b []byte, st []uint64) {
	if int32(capacity) >= 0 && len(b) <= int(capacity) {
		s.write(m, name, dst, b)
	}
	st[0] = uint64(len(b))
}

func (s *callState) hashInput(m api.Memory, name string, ptr, n uint32, price uint64) []byte {
	if int64(int32(n)) < 0 || n > MaxHashInputBytes {
		s.abort(newTrap(ErrLimit, "%s: %d bytes, limit %d", name, n, MaxHashInputBytes))
	}
	s.charge(GasHashBase + perKiB(uint64(n), price))
	return s.view(m, name, ptr, n)
}

// nested runs a call or query of another contract, forwarding all remaining
// gas and charging what the callee used.
func (s *callState) nested(a [32]byte, msg, funds []byte, readOnly bool) uint64 {
	s.charge(GasCall)
	if s.env.Depth+1 >= MaxCallDepth {
		s.abort(newTrap(ErrCallDepth, "nested call at depth %d, limit %d", s.env.Depth+1, MaxCallDepth))
	}
	left := uint64(int64(s.gas.Get()))
	res, used, err := s.host.Call(s.ctx, a, msg, funds, left, readOnly || s.env.ReadOnly)
	if used > left {
		used = left
	}
	s.nestedGas += used
	s.gas.Set(uint64(int64(left - used)))
	if err != nil {
		s.callResult = []byte(err.Error())
		return 1
	}
	s.callResult = res
	return 0
}

// guestFunc adapts a hostFunc to wazero: every host call pays GasHostBase.
func guestFunc(h hostFunc) api.GoModuleFunc {
	fn := h.fn
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		s := ctx.Value(stateKey{}).(*callState)
		if s.gas == nil { // a start function running during instantiation
			s.gas = mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
		}
		if s.env != nil && s.env.Trace != nil {
			defer s.traceHost(h.name, int64(s.gas.Get()), s.nestedGas)
		}
		s.charge(GasHostBase)
		fn(s, mod.Memory(), stack)
	}
}

// traceHost records what one host call charged, without the gas of the
// nested call it ran (the callee's own trace reports that). A trap
// unwinding through it is recorded too: the charge that failed counts.
func (s *callState) traceHost(name string, before int64, nestedBefore uint64) {
	// A counter run below zero means the call used all its gas
	// (Result.GasUsed is the limit): count down to zero only.
	used := max(before, 0) - max(int64(s.gas.Get()), 0) - int64(s.nestedGas-nestedBefore)
	s.env.Trace.add(name, uint64(max(used, 0)))
}

func instantiateHostModules(ctx context.Context, r wazero.Runtime) error {
	for mod, funcs := range map[string][]hostFunc{"sos": sosFuncs(), wasiModule: wasiFuncs()} {
		b := r.NewHostModuleBuilder(mod)
		for _, h := range funcs {
			b.NewFunctionBuilder().WithGoModuleFunction(guestFunc(h), h.params, h.results).Export(h.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// hostSignatures maps "module.name" to the signature every import must
// have; Prepare rejects any other import.
func hostSignatures() map[string]hostFunc {
	sigs := map[string]hostFunc{}
	for mod, funcs := range map[string][]hostFunc{"sos": sosFuncs(), wasiModule: wasiFuncs()} {
		for _, h := range funcs {
			sigs[mod+"."+h.name] = h
		}
	}
	return sigs
}
