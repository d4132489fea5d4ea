package adversarial

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// callGas is the gas limit of one hostile transaction: enough for every
// bounded shape, and what the unbounded ones burn.
const callGas = 200_000_000

// loopGas bounds the shapes that loop until they run out of gas.
const loopGas = 20_000_000

var outOfGas = []error{vm.ErrOutOfGas, ledger.ErrOutOfGas}

// contractShape deploys m and calls it with msg.
func contractShape(m *module, msg string) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addr := e.deploy(tb, m.bytes(), 1)[0]
		return func() (sample, error) { return e.execute(nil, addr, []byte(msg), e.gas) }
	}
}

// processShape is contractShape timed by the CPU time of the whole
// process: for host functions that work on several goroutines.
func processShape(m *module) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addr := e.deploy(tb, m.bytes(), 1)[0]
		return func() (sample, error) { return e.executeClock(measureProcess, nil, addr, nil, e.gas, 0) }
	}
}

// hand is a hand-written contract whose execute runs body with locals
// (local 0 is conventionally the loop counter) in memMin pages of memory.
func hand(memMin uint32, locals []local, body ...[]byte) *module {
	m := &module{memMin: memMin}
	m.contract(locals, wasmasm.Cat(body...), i32c(0))
	return m
}

// lcg32 advances the i32 local x (x = x*1103515245 + 12345) and leaves it
// on the stack.
func lcg32(x uint32) []byte {
	return wasmasm.Cat(lget(x), i32c(1103515245), op(opI32Mul), i32c(12345), op(opI32Add), ltee(x))
}

// lcg64 advances the i64 local x (Knuth's MMIX constants) and leaves it on
// the stack.
func lcg64(x uint32) []byte {
	return wasmasm.Cat(lget(x), i64c(6364136223846793005), op(opI64Mul), i64c(1442695040888963407), op(opI64Add), ltee(x))
}

func i32s(n uint32) []local { return []local{{n, tI32}} }

func shapes() []shape {
	s := []shape{
		// The gas calibration suite of package vm (BenchmarkGasCalibration),
		// through the engine: the reference the other figures compare with.
		{name: "ref/shaloop", setup: refShape("shaloop 25")},
		{name: "ref/json", setup: refShape("json 60")},
		{name: "ref/storage", setup: refShape("storage 300")},
		{name: "ref/arith", setup: refShape("arith 120000")},

		// Straight-line compute.
		{name: "loop/empty", setup: contractShape(hand(1, i32s(1), loopN(0, 20_000_000)), "")},
		// The most locals a function may have (vm.MaxFunctionLocals, counter
		// and temporary included), all live and rotated.
		{name: fmt.Sprintf("locals/rotate-%d", vm.MaxFunctionLocals-2), setup: contractShape(rotateLocals(vm.MaxFunctionLocals-2, 300_000), "")},
		{name: "locals/rotate-24", setup: contractShape(rotateLocals(24, 1_000_000), "")},
		{name: "locals/deep-stack-1000", setup: contractShape(deepStack(1000, 20_000), "")},
		{name: "globals/add", setup: contractShape(globalsAdd(10_000_000), "")},
		{name: "branch/random", setup: contractShape(randomBranches(10_000_000), "")},
		{name: "br_table/10000-random", setup: contractShape(brTable(10_000, 64, 2_000_000), "")},
		{name: "br_table/go-dispatch", setup: contractShape(goDispatchLoop(20_000_000), "")},
		{name: "int/div64", setup: contractShape(divChain(5_000_000), "")},
		{name: "float/sqrt-div", setup: contractShape(floatChain(2_000_000), "")},
		{name: "float/mul-add", setup: contractShape(floatMulAdd(10_000_000), "")},
		{name: "call/direct", setup: contractShape(directCalls(10_000_000), "")},
		{name: "call_indirect/cycle-1000", setup: contractShape(indirectCalls(1000, false, 500_000), "")},
		{name: "call_indirect/random-1000", setup: contractShape(indirectCalls(1000, true, 500_000), "")},
		{name: "recursion/depth-limit", setup: contractShape(recursion(0, 1000, 5_000), "")},
		{name: "recursion/fat-frames", setup: contractShape(recursion(vm.MaxFunctionLocals-1, 1000, 800), "")},
		{name: "call/empty", setup: contractShape(hand(1, nil), "")},
		// The fixed cost of a call grows with its memory: the write tracking
		// scans it, and resetting it write-protects the span between the
		// first and the last block written.
		{name: "call/empty-8MiB", setup: contractShape(hand(128, nil), "")},
		{name: "call/write-ends-8MiB", setup: contractShape(hand(128, nil,
			i32c(0), i32c(1), mem(opI32Store8, 0), i32c(128*65536-1), i32c(1), mem(opI32Store8, 0)), "")},
		{name: "trap/unreachable", setup: contractShape(hand(1, nil, op(opUnreachable)), ""), allow: []error{vm.ErrTrap}},

		// Memory.
		{name: "memory/touch-pages-8MiB", setup: contractShape(touchPages(128, 0, false), "")},
		{name: "memory/touch-pages-read-8MiB", setup: contractShape(touchPages(128, 0, true), "")},
		{name: "memory/grow-touch-8MiB", setup: contractShape(touchPages(1, 127, false), "")},
		{name: "memory/grow-touch-read-8MiB", setup: contractShape(touchPages(1, 127, true), "")},
		{name: "memory/grow-churn", setup: contractShape(growChurn(127), "")},
		// Random loads over growing memories: 1–8 MiB is a contract's
		// range (vm.MaxMemoryPages), 16–64 MiB a policy's
		// (vm.MaxPolicyMemoryPages); sequential loads over a large memory
		// are the other side of any price that depends on memory size.
		{name: "memory/random-load-1MiB", setup: contractShape(randomLoads(16, 2_000_000), "")},
		{name: "memory/random-load-2MiB", setup: contractShape(randomLoads(32, 2_000_000), "")},
		{name: "memory/random-load-4MiB", setup: contractShape(randomLoads(64, 2_000_000), "")},
		{name: "memory/random-load-8MiB", setup: contractShape(randomLoads(128, 2_000_000), "")},
		// The same loads made dependent (the next address needs the loaded
		// value): no two misses overlap, so each pays the whole latency.
		{name: "memory/chase-64KiB", setup: contractShape(chaseLoads(1, 2_000_000), "")},
		{name: "memory/chase-1MiB", setup: contractShape(chaseLoads(16, 2_000_000), "")},
		{name: "memory/chase-2MiB", setup: contractShape(chaseLoads(32, 2_000_000), "")},
		{name: "memory/chase-4MiB", setup: contractShape(chaseLoads(64, 2_000_000), "")},
		{name: "memory/chase-8MiB", setup: contractShape(chaseLoads(128, 2_000_000), "")},
		{name: "policy/chase-64MiB", setup: handPolicyShape(chaseLoads(1024, 2_000_000))},
		{name: "memory/random-store-8MiB", setup: contractShape(randomStores(128, 2_000_000), "")},
		{name: "policy/random-load-16MiB", setup: handPolicyShape(randomLoads(256, 2_000_000))},
		{name: "policy/random-load-32MiB", setup: handPolicyShape(randomLoads(512, 2_000_000))},
		{name: "policy/random-load-64MiB", setup: handPolicyShape(randomLoads(1024, 2_000_000))},
		{name: "memory/load-seq", setup: contractShape(seqAccess(false, 20_000_000), "")},
		{name: "memory/load-seq-8MiB", setup: contractShape(seqLoads(128, 20_000_000), "")},
		{name: "memory/load-seq-64KiB-of-8MiB", setup: contractShape(seqAccessIn(128, false, 20_000_000), "")},
		{name: "policy/load-seq-64MiB", setup: handPolicyShape(seqLoads(1024, 20_000_000))},
		{name: "memory/store-seq", setup: contractShape(seqAccess(true, 20_000_000), "")},
		{name: "memory/fill-8MiB", setup: contractShape(bulk(128, false, 20), "")},
		{name: "memory/copy-4MiB", setup: contractShape(bulk(128, true, 20), "")},

		// Host functions.
		{name: "host/block_height", setup: contractShape(hostSpam(1_000_000), "")},
		{name: "storage/set-max", setup: contractShape(storageSet(256, vm.MaxValueBytes, 50), "")},
		{name: "storage/set-small", setup: contractShape(storageSet(4, 1, 20_000), "")},
		{name: "storage/get-max", setup: storageGetShape(vm.MaxValueBytes, 100, vm.MaxValueBytes)},
		{name: "storage/get-max-uncopied", setup: storageGetShape(vm.MaxValueBytes, 100, 0)},
		{name: "storage/get-missing", setup: contractShape(storageGetMissing(50_000), "")},
		{name: "storage/delete", setup: contractShape(storageDelete(20_000), "")},
		{name: "iter/open-close-committed-100k", setup: iterShape(100_000, 0, 10, false)},
		{name: "iter/open-close-buffer-20k", setup: iterShape(0, 20_000, 10, false)},
		{name: "iter/next-all-committed-100k", setup: iterShape(100_000, 0, 1, true)},
		{name: "iter/next-deleted-20k", setup: iterDeletedShape(20_000)},
		{name: "crypto/sha256-1MiB", setup: contractShape(hashLoop("sha256", 1<<20, 20), "")},
		{name: "crypto/blake3-1MiB", setup: processShape(hashLoop("blake3", 1<<20, 20))},
		{name: "crypto/sha256-32B", setup: contractShape(hashLoop("sha256", 32, 100_000), "")},
		{name: "crypto/mldsa-verify", setup: mldsaShape(50)},
		{name: "host/balance", setup: contractShape(balanceLoop(20_000), "")},
		{name: "host/addr_to_string", setup: contractShape(addrToString(50_000), "")},
		{name: "host/debug_log-8KiB", setup: contractShape(debugLog(8192, 20_000), "")},
		{name: "events/max-attrs", setup: contractShape(events(), "")},
		{name: "wasi/fd_write-1024-iovecs", setup: contractShape(fdWrite(1024, 2_000), "")},
		{name: "wasi/poll_oneoff-64", setup: contractShape(pollOneoff(64, 5_000), "")},
		{name: "wasi/random_get-64KiB", setup: contractShape(randomGet(65536, 100), "")},
		{name: "wasi/clock_time_get", setup: contractShape(clockSpam(1_000_000), "")},
		{name: "nested/max-depth", setup: nestedShape()},
		{name: "nested/wide-1000", setup: wideShape(1000)},
		{name: "nested/trapping-go-callee", setup: trappingCalleeShape(4)},

		// Go-compiled code.
		{name: "go/loop-until-out-of-gas", setup: goShape("loop", loopGas), allow: outOfGas},
		{name: "go/loopn", setup: goShape("loopn 2000000", 0)},
		{name: "go/maps", setup: goShape("maps 50000", 0)},
		{name: "go/json", setup: goShape("json 2000", 0)},
		{name: "go/sort", setup: goShape("sort 4", 0)},
		{name: "go/alloc", setup: goShape("alloc 3000", 0)},
		{name: "go/iface", setup: goShape("iface 500000", 0)},
		{name: "go/valid", setup: goShape("valid 2000", 0)},
		{name: "go/switch", setup: goShape("switch 200", 0)},
		{name: "go/calls", setup: goShape("calls 2000000", 0)},
		{name: "go/chase", setup: goShape("chase 2000000", 0)},
		{name: "go/noop", setup: goShape("noop", 0)},
		{name: "go/trap", setup: goShape("trap", 0), allow: []error{vm.ErrTrap}},
		{name: "policy/go-loop-until-out-of-gas", setup: goPolicyLoopShape(loopGas), allow: outOfGas},
	}
	for _, p := range []string{"greedy", "auction", "optimal"} {
		s = append(s, shape{name: "policy/" + p + "-10000x1000", setup: shippedPolicyShape(p, 10_000, 1_000)})
	}
	return s
}

// rotateLocals: n live i64 locals rotated by one place per iteration.
func rotateLocals(n uint32, iters int32) *module {
	ls := []local{{1, tI32}, {n + 1, tI64}} // 0: counter, 1..n: values, n+1: tmp
	var init, rot []byte
	for k := uint32(1); k <= n; k++ {
		init = wasmasm.Cat(init, i64c(int64(k)*0x9e3779b9), lset(k))
	}
	rot = wasmasm.Cat(lget(1), lset(n+1))
	for k := uint32(1); k < n; k++ {
		rot = wasmasm.Cat(rot, lget(k+1), lset(k))
	}
	rot = wasmasm.Cat(rot, lget(n+1), lset(n))
	m := &module{}
	m.contract(ls, init, loopN(0, iters, rot), lget(1), lget(n/2), op(opI64Xor), lget(n), op(opI64Xor), op(opI32WrapI64), drop, i32c(0))
	return m
}

// deepStack: n distinct values (local 1 xor k) live on the operand
// stack at once, then summed into local 1. Locals are few
// (vm.MaxFunctionLocals), the operand stack is not: the frame has n+2
// slots.
func deepStack(n uint32, iters int32) *module {
	ls := []local{{1, tI32}, {1, tI64}}
	var body []byte
	for k := uint32(1); k <= n; k++ {
		body = wasmasm.Cat(body, lget(1), i64c(int64(k)*0x9e3779b9), op(opI64Xor))
	}
	for k := uint32(1); k < n; k++ {
		body = append(body, opI64Add)
	}
	body = wasmasm.Cat(body, lset(1))
	m := &module{}
	m.contract(ls, loopN(0, iters, body), i32c(0))
	return m
}

func globalsAdd(iters int32) *module {
	m := &module{}
	g := m.global(tI64, i64c(0))
	m.contract(i32s(1), loopN(0, iters, gget(g), i64c(1), op(opI64Add), gset(g)), i32c(0))
	return m
}

func randomBranches(iters int32) *module {
	// 0: counter, 1: x, 2: acc
	return hand(1, i32s(3), loopN(0, iters,
		lcg32(1), i32c(1<<16), op(opI32And),
		op(opIf, void), lget(2), i32c(1), op(opI32Add), lset(2),
		op(opElse), lget(2), i32c(3), op(opI32Xor), lset(2), end))
}

// brTable: a br_table of size entries over k targets, indexed at random.
func brTable(size, k uint32, iters int32) *module {
	// locals: 0 counter, 1 x
	var labels []byte
	for j := uint32(0); j < size; j++ {
		labels = append(labels, wasmasm.U32(j%k)...)
	}
	code := wasmasm.Cat(i32c(iters), lset(0), op(opBlock, void, opLoop, void),
		lget(0), op(opI32Eqz), brIf(1),
		lget(0), i32c(1), op(opI32Sub), lset(0))
	for j := uint32(0); j < k; j++ {
		code = append(code, opBlock, void)
	}
	code = wasmasm.Cat(code, lcg32(1), i32c(16), op(opI32ShrU), i32c(int32(size)), op(opI32RemU),
		op(opBrTable), wasmasm.U32(size), labels, wasmasm.U32(0))
	for j := uint32(0); j < k; j++ {
		code = wasmasm.Cat(code, end, br(k-1-j))
	}
	code = wasmasm.Cat(code, end, end)
	return hand(1, i32s(2), code)
}

// goDispatchLoop is the loop Go's compiler emits for "for { counter++ }":
// a resumable-function dispatch (br_table on the resume point) around an
// empty body, here bounded by a counter.
func goDispatchLoop(iters int32) *module {
	// locals: 0 resume point, 1 counter
	code := wasmasm.Cat(i32c(iters), lset(1),
		op(opBlock, void, opLoop, void, opBlock, void, opBlock, void, opBlock, void),
		lget(0), op(opBrTable), wasmasm.U32(3), wasmasm.U32(0), wasmasm.U32(1), wasmasm.U32(1), wasmasm.U32(2),
		end, end, op(opNop), i32c(1), lset(0),
		lget(1), i32c(1), op(opI32Sub), ltee(1), brIf(1), br(2),
		end, end, end)
	return hand(1, i32s(2), code)
}

func divChain(iters int32) *module {
	// 0 counter (i32), 1 x (i64)
	return hand(1, []local{{1, tI32}, {1, tI64}},
		i64c(-1), lset(1),
		loopN(0, iters, lget(1), lget(0), op(opI64ExtendU), i64c(3), op(0x84 /* i64.or */), op(opI64DivU),
			i64c(0x7fffffffffff), op(opI64Add), i64c(-1), op(opI64Xor), lset(1)),
		lget(1), op(opI32WrapI64), drop)
}

func floatChain(iters int32) *module {
	return hand(1, []local{{1, tI32}, {1, tF64}},
		f64c(2), lset(1),
		loopN(0, iters, lget(1), f64c(1.0000001), op(opF64Mul), f64c(1.5), op(opF64Add), op(opF64Sqrt), f64c(1.0001), op(opF64Div), lset(1)))
}

func floatMulAdd(iters int32) *module {
	return hand(1, []local{{1, tI32}, {1, tF64}},
		f64c(2), lset(1),
		loopN(0, iters, lget(1), f64c(0.999999), op(opF64Mul), f64c(0.5), op(opF64Add), lset(1)))
}

func directCalls(iters int32) *module {
	m := &module{}
	inc := m.fn([]byte{tI32}, []byte{tI32}, nil, lget(0), i32c(1), op(opI32Add))
	m.contract(i32s(2), loopN(0, iters, lget(1), call(inc), lset(1)), i32c(0))
	return m
}

// indirectCalls: call_indirect over a table of n tiny functions, in order
// or at random.
func indirectCalls(n uint32, random bool, iters int32) *module {
	m := &module{}
	var fs []uint32
	for k := uint32(0); k < n; k++ {
		fs = append(fs, m.fn([]byte{tI32}, []byte{tI32}, nil, lget(0), i32c(int32(k)), op(opI32Add)))
	}
	m.table = fs
	idx := wasmasm.Cat(lget(0), i32c(int32(n)), op(opI32RemU))
	if random {
		idx = wasmasm.Cat(lcg32(2), i32c(16), op(opI32ShrU), i32c(int32(n)), op(opI32RemU))
	}
	// the type index of (i32) -> i32 is 0: the first function added
	m.contract(i32s(3), loopN(0, iters, lget(1), idx, op(opCallIndirect), wasmasm.U32(0), wasmasm.U32(0), lset(1)), i32c(0))
	return m
}

// recursion: f(n) recurses n deep with extra i64 locals in each frame
// (all written, so they are live), iters times per call.
func recursion(extra uint32, depth, iters int32) *module {
	m := &module{}
	var ls []local
	var touch []byte
	if extra > 0 {
		ls = []local{{extra, tI64}}
		for k := uint32(1); k <= extra; k++ {
			touch = wasmasm.Cat(touch, lget(0), op(opI64ExtendU), lset(k))
		}
	}
	self := uint32(len(m.imports) + len(m.funcs))
	sum := []byte{}
	if extra > 0 { // every extra local is read after the call: all live
		sum = lget(1)
		for k := uint32(2); k <= extra; k++ {
			sum = wasmasm.Cat(sum, lget(k), op(opI64Xor))
		}
		sum = wasmasm.Cat(sum, op(opI32WrapI64), op(opI32Add))
	}
	f := m.fn([]byte{tI32}, []byte{tI32}, ls, touch,
		lget(0), op(opI32Eqz), op(opIf, tI32), i32c(0), op(opElse),
		lget(0), i32c(1), op(opI32Sub), call(self), i32c(1), op(opI32Add), sum, end)
	if f != self {
		panic("recursion: index")
	}
	m.contract(i32s(2), loopN(0, iters, i32c(depth), call(f), lset(1)), i32c(0))
	return m
}

// touchPages writes (or reads) one byte in every 4 KiB page of memory
// after growing it by grow pages.
func touchPages(memMin, grow uint32, read bool) *module {
	pages := int32((memMin + grow) * 16)
	access := wasmasm.Cat(lget(0), i32c(12), op(opI32Shl), i32c(1), op(opI32Sub), i32c(1), mem(opI32Store8, 0))
	if read {
		access = wasmasm.Cat(lget(0), i32c(12), op(opI32Shl), i32c(1), op(opI32Sub), mem(opI32Load8U, 0), lget(1), op(opI32Add), lset(1))
	}
	var g []byte
	if grow > 0 {
		g = wasmasm.Cat(i32c(int32(grow)), op(opMemoryGrow, 0), drop)
	}
	return hand(memMin, i32s(2), g, loopN(0, pages, access))
}

func growChurn(pages int32) *module {
	return hand(1, i32s(1), loopN(0, pages, i32c(1), op(opMemoryGrow, 0), drop))
}

// randomLoads: 8-byte loads at random addresses over the whole memory
// (a power of two), as cheap per load as the attacker can make them.
func randomLoads(memMin uint32, iters int32) *module {
	size := int64(memMin) * 65536
	// 0 counter, 1 x (i64), 2 acc (i64)
	return hand(memMin, []local{{1, tI32}, {2, tI64}},
		loopN(0, iters, lcg64(1), i64c(20), op(opI64ShrU), op(opI32WrapI64), i32c(int32(size-8)), op(opI32And),
			mem(opI64Load, 0), lget(2), op(opI64Add), lset(2)))
}

// chaseLoads is randomLoads with each address depending on the value the
// previous load returned (added into the generator's state), as in walking
// a linked structure: the loads cannot overlap.
func chaseLoads(memMin uint32, iters int32) *module {
	size := int64(memMin) * 65536
	return hand(memMin, []local{{1, tI32}, {2, tI64}},
		loopN(0, iters, lcg64(1), i64c(20), op(opI64ShrU), op(opI32WrapI64), i32c(int32(size-8)), op(opI32And),
			mem(opI64Load, 0), lget(1), op(opI64Add), lset(1)))
}

// randomStores: 8-byte stores at random addresses over the whole memory
// (a power of two): after the first store to each 4 KiB block (which pays
// vm.GasPageWrite) they cost what random loads cost.
func randomStores(memMin uint32, iters int32) *module {
	size := int64(memMin) * 65536
	return hand(memMin, []local{{1, tI32}, {2, tI64}},
		loopN(0, iters, lcg64(1), i64c(20), op(opI64ShrU), op(opI32WrapI64), i32c(int32(size-8)), op(opI32And),
			lget(1), mem(opI64Store, 0)))
}

// seqLoads loads 8 bytes at consecutive addresses over the whole memory
// (a power of two), over and over: the hardware prefetcher streams them.
func seqLoads(memMin uint32, iters int32) *module {
	size := int32(memMin) * 65536
	access := wasmasm.Cat(lget(0), i32c(3), op(opI32Shl), i32c(size-8), op(opI32And), mem(opI64Load, 0), lget(1), op(opI64Add), lset(1))
	return hand(memMin, []local{{1, tI32}, {1, tI64}}, loopN(0, iters, access))
}

// seqAccess loads (or stores) 8 bytes at consecutive addresses over the
// first 64 KiB, over and over: accesses that hit the cache.
func seqAccess(store bool, iters int32) *module { return seqAccessIn(1, store, iters) }

// seqAccessIn is seqAccess in a memory of memMin pages.
func seqAccessIn(memMin uint32, store bool, iters int32) *module {
	addr := wasmasm.Cat(lget(0), i32c(3), op(opI32Shl), i32c(0xfff8), op(opI32And))
	access := wasmasm.Cat(addr, mem(opI64Load, 0), lget(1), op(opI64Add), lset(1))
	if store {
		access = wasmasm.Cat(addr, lget(1), mem(opI64Store, 0), lget(1), i64c(1), op(opI64Add), lset(1))
	}
	return hand(memMin, []local{{1, tI32}, {1, tI64}}, loopN(0, iters, access))
}

func bulk(memMin uint32, copyHalf bool, iters int32) *module {
	size := int32(memMin) * 65536
	b := wasmasm.Cat(i32c(0), i32c(0xab), i32c(size), fc(11, 0)) // memory.fill
	if copyHalf {
		b = wasmasm.Cat(i32c(size/2), i32c(0), i32c(size/2), fc(10, 0, 0)) // memory.copy
	}
	return hand(memMin, i32s(1), loopN(0, iters, b))
}

func hostSpam(iters int32) *module {
	m := &module{}
	bh := m.sos("block_height")
	m.contract(i32s(1), loopN(0, iters, call(bh), drop), i32c(0))
	return m
}

func clockSpam(iters int32) *module {
	m := &module{}
	ct := m.wasi("clock_time_get", tI32, tI64, tI32)
	m.contract(i32s(1), loopN(0, iters, i32c(1), i64c(1), i32c(0), call(ct), drop), i32c(0))
	return m
}

// storageSet writes iters distinct keys of klen bytes with values of vlen
// bytes (key at 0, value at 1024).
func storageSet(klen, vlen, iters int32) *module {
	m := &module{memMin: uint32(1024+vlen)/65536 + 1}
	set := m.sos("storage_set")
	m.contract(i32s(1), loopN(0, iters,
		i32c(0), lget(0), mem(opI32Store, 0),
		i32c(0), i32c(klen), i32c(1024), i32c(vlen), call(set)), i32c(0))
	return m
}

// balanceLoop reads the balances of iters distinct (empty) accounts.
func balanceLoop(iters int32) *module {
	m := &module{}
	b := m.sos("balance")
	m.dataAt(64, []byte("uTFLP"))
	m.contract(i32s(1), loopN(0, iters, i32c(0), lget(0), mem(opI32Store, 0), i32c(0), i32c(64), i32c(5), call(b), drop), i32c(0))
	return m
}

func addrToString(iters int32) *module {
	m := &module{}
	f := m.sos("addr_to_string")
	m.contract(i32s(1), loopN(0, iters, i32c(0), i32c(64), i32c(128), call(f), drop), i32c(0))
	return m
}

func debugLog(n, iters int32) *module {
	m := &module{}
	f := m.sos("debug_log")
	m.contract(i32s(1), loopN(0, iters, i32c(0), i32c(n), call(f)), i32c(0))
	return m
}

func storageGetMissing(iters int32) *module {
	m := &module{}
	get := m.sos("storage_get")
	m.contract(i32s(1), loopN(0, iters,
		i32c(0), lget(0), mem(opI32Store, 0),
		i32c(0), i32c(4), i32c(64), i32c(64), call(get), drop), i32c(0))
	return m
}

func storageDelete(iters int32) *module {
	m := &module{}
	del := m.sos("storage_delete")
	m.contract(i32s(1), loopN(0, iters,
		i32c(0), lget(0), mem(opI32Store, 0),
		i32c(0), i32c(4), call(del)), i32c(0))
	return m
}

// storageGetShape commits n values of vlen bytes under keys 0..n-1 (4
// bytes) and reads each once per call (a first read in the block, from
// the store) into a buffer of vcap bytes (0: the value is not copied). A
// message writes them.
func storageGetShape(vlen, n, vcap int32) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		m := &module{memMin: uint32(1024+vlen)/65536 + 1}
		get, set, ilen := m.sos("storage_get"), m.sos("storage_set"), m.sos("input_len")
		key := wasmasm.Cat(i32c(0), lget(0), mem(opI32Store, 0))
		m.contract(i32s(1),
			call(ilen), op(opIf, void),
			loopN(0, n, key, i32c(0), i32c(4), i32c(1024), i32c(vlen), call(set)), i32c(0), op(opReturn), end,
			loopN(0, n, key, i32c(0), i32c(4), i32c(1024), i32c(vcap), call(get), drop), i32c(0))
		addr := e.deploy(tb, m.bytes(), 1)[0]
		st := ledger.NewState(e.store)
		if _, err := e.eng.Execute(e.ctx, e.tx(st, vm.MaxTxGas), addr, []byte("fill"), nil); err != nil {
			tb.Fatal(err)
		}
		e.commit(tb, st)
		return func() (sample, error) { return e.execute(nil, addr, nil, e.gas) }
	}
}

// iterModule: a message of 4 bytes n fills keys 0..n-1 (4-byte big endian,
// 8-byte values); a message of 5 bytes deletes them; an empty message
// opens (and, if next, walks to the end) an iterator over every key, opens
// times.
func iterModule(opens int32, next bool) *module {
	m := &module{}
	ilen, iread := m.sos("input_len"), m.sos("input_read")
	set, del := m.sos("storage_set"), m.sos("storage_delete")
	open, nxt, cls := m.sos("storage_iter_open"), m.sos("storage_iter_next"), m.sos("storage_iter_close")
	// locals: 0 counter, 1 n, 2 id, 3 inner
	bswap := func() []byte { // key = big-endian counter at 0
		return wasmasm.Cat(i32c(0),
			lget(0), i32c(24), op(opI32ShrU),
			lget(0), i32c(8), op(opI32ShrU), i32c(0xff00), op(opI32And), op(opI32Or),
			lget(0), i32c(8), op(opI32Shl), i32c(0xff0000), op(opI32And), op(opI32Or),
			lget(0), i32c(24), op(opI32Shl), op(opI32Or),
			mem(opI32Store, 0))
	}
	walk := []byte{}
	if next {
		walk = wasmasm.Cat(op(opBlock, void, opLoop, void),
			lget(2), i32c(64), i32c(64), i32c(128), i32c(64), call(nxt), i64c(-1), op(0x51 /* i64.eq */), brIf(1),
			br(0), end, end)
	}
	m.contract(i32s(4),
		call(ilen), ltee(3), op(opIf, void),
		i32c(16), call(iread),
		i32c(16), mem(opI32Load, 0), lset(1),
		lget(3), i32c(4), op(0x46 /* i32.eq */), op(opIf, void),
		wasmasm.Cat(i32c(0), lset(0), op(opBlock, void, opLoop, void), lget(0), lget(1), op(opI32GeU), brIf(1),
			bswap(), i32c(0), i32c(4), i32c(8), i32c(8), call(set),
			lget(0), i32c(1), op(opI32Add), lset(0), br(0), end, end),
		op(opElse),
		wasmasm.Cat(i32c(0), lset(0), op(opBlock, void, opLoop, void), lget(0), lget(1), op(opI32GeU), brIf(1),
			bswap(), i32c(0), i32c(4), call(del),
			lget(0), i32c(1), op(opI32Add), lset(0), br(0), end, end),
		end,
		i32c(0), op(opReturn), end,
		loopN(0, opens, i32c(0), i32c(0), i32c(0), i32c(-1), i32c(0), call(open), lset(2), walk, lget(2), call(cls)),
		i32c(0))
	return m
}

func fillMsg(n uint32, del bool) []byte {
	b := binary.LittleEndian.AppendUint32(nil, n)
	if del {
		b = append(b, 0)
	}
	return b
}

// iterShape: committed entries in Pebble and buffered ones in the block's
// write buffer (written by an earlier transaction of the block).
func iterShape(committed, buffered uint32, opens int32, next bool) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addr := e.deploy(tb, iterModule(opens, next).bytes(), 1)[0]
		if committed > 0 {
			st := ledger.NewState(e.store)
			if _, err := e.eng.Execute(e.ctx, e.tx(st, vm.MaxTxGas), addr, fillMsg(committed, false), nil); err != nil {
				tb.Fatal(err)
			}
			e.commit(tb, st)
		}
		block := ledger.NewState(e.store)
		if buffered > 0 {
			if _, err := e.eng.Execute(e.ctx, e.tx(block, vm.MaxTxGas), addr, fillMsg(buffered, false), nil); err != nil {
				tb.Fatal(err)
			}
		}
		return func() (sample, error) { return e.execute(block, addr, nil, e.gas) }
	}
}

// iterDeletedShape: n committed entries all deleted by an earlier
// transaction of the block; the iterator finds nothing after skipping
// them all.
func iterDeletedShape(n uint32) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addr := e.deploy(tb, iterModule(1, true).bytes(), 1)[0]
		st := ledger.NewState(e.store)
		if _, err := e.eng.Execute(e.ctx, e.tx(st, vm.MaxTxGas), addr, fillMsg(n, false), nil); err != nil {
			tb.Fatal(err)
		}
		e.commit(tb, st)
		block := ledger.NewState(e.store)
		if _, err := e.eng.Execute(e.ctx, e.tx(block, vm.MaxTxGas), addr, fillMsg(n, true), nil); err != nil {
			tb.Fatal(err)
		}
		return func() (sample, error) { return e.execute(block, addr, nil, e.gas) }
	}
}

func hashLoop(fn string, n, iters int32) *module {
	m := &module{memMin: uint32(n)/65536 + 2}
	h := m.sos(fn)
	m.contract(i32s(1), loopN(0, iters, i32c(0), i32c(n), i32c(n), call(h)), i32c(0))
	return m
}

// mldsaShape verifies a valid ML-DSA-65 signature iters times per call.
func mldsaShape(iters int32) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		pk, sk, err := mldsa65.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		msg := make([]byte, 4096)
		sig := make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(sk, msg, nil, false, sig); err != nil {
			tb.Fatal(err)
		}
		pkb, _ := pk.MarshalBinary()
		m := &module{}
		v := m.sos("mldsa_verify")
		m.dataAt(0, pkb)
		m.dataAt(8192, sig)
		m.dataAt(16384, msg)
		m.contract(i32s(2), loopN(0, iters,
			i32c(0), i32c(int32(len(pkb))), i32c(16384), i32c(int32(len(msg))), i32c(8192), i32c(int32(len(sig))), i32c(0), i32c(0),
			call(v), lget(1), op(opI32Add), lset(1)),
			lget(1), i32c(iters), op(opI32Ne), op(opIf, void), op(opUnreachable), end, i32c(0))
		addr := e.deploy(tb, m.bytes(), 1)[0]
		return func() (sample, error) { return e.execute(nil, addr, nil, e.gas) }
	}
}

// events emits the most events a call may, each of the largest size,
// made of as many attributes as fit.
func events() *module {
	var b strings.Builder
	b.WriteString(`{"type":"t","attrs":[`)
	for i := 0; ; i++ {
		a := fmt.Sprintf(`{"key":"k%d","value":""}`, i)
		if b.Len()+len(a)+3 > vm.MaxEventBytes {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a)
	}
	b.WriteString("]}")
	ev := []byte(b.String())
	m := &module{}
	emit := m.sos("emit_event")
	m.dataAt(0, ev)
	m.contract(i32s(1), loopN(0, vm.MaxEvents, i32c(0), i32c(int32(len(ev))), call(emit)), i32c(0))
	return m
}

// fdWrite: fd_write to stdout of n empty iovecs (at 0), iters times.
func fdWrite(n, iters int32) *module {
	m := &module{}
	w := m.wasi("fd_write", tI32, tI32, tI32, tI32)
	m.contract(i32s(1), loopN(0, iters, i32c(1), i32c(0), i32c(n), i32c(60000), call(w), drop), i32c(0))
	return m
}

// pollOneoff: n clock subscriptions with a zero timeout, iters times.
func pollOneoff(n, iters int32) *module {
	m := &module{}
	p := m.wasi("poll_oneoff", tI32, tI32, tI32, tI32)
	sub := make([]byte, 48*n) // tag 0 (clock), clock 1, timeout 0
	for i := range n {
		sub[48*i+16] = 1
	}
	m.dataAt(0, sub)
	m.contract(i32s(1), loopN(0, iters, i32c(0), i32c(8192), i32c(n), i32c(16384), call(p), drop), i32c(0))
	return m
}

func randomGet(n, iters int32) *module {
	m := &module{memMin: uint32(n)/65536 + 1}
	r := m.wasi("random_get", tI32, tI32)
	m.contract(i32s(1), loopN(0, iters, i32c(0), i32c(n), call(r), drop), i32c(0))
	return m
}

// chainModule reads its message as [times u32][address][rest] and calls
// the contract at address with rest as its message, times times; a
// message shorter than 36 bytes ends the chain.
func chainModule() *module {
	m := &module{}
	ilen, iread, c := m.sos("input_len"), m.sos("input_read"), m.sos("call")
	// locals: 0 n, 1 counter
	m.contract(i32s(2),
		call(ilen), ltee(0), i32c(36), op(opI32LtU), op(opIf, void), i32c(0), op(opReturn), end,
		i32c(0), call(iread),
		i32c(0), mem(opI32Load, 0), lset(1),
		op(opBlock, void, opLoop, void), lget(1), op(opI32Eqz), brIf(1),
		i32c(4), i32c(36), lget(0), i32c(36), op(opI32Sub), i32c(0), i32c(0), call(c), drop,
		lget(1), i32c(1), op(opI32Sub), lset(1), br(0), end, end, i32c(0))
	return m
}

// chainMsg is the message of chainModule for a chain through addrs: the
// first hop calls times times, every later hop once.
func chainMsg(times uint32, addrs []ledger.Address) []byte {
	var b []byte
	for i, a := range addrs {
		t := uint32(1)
		if i == 0 {
			t = times
		}
		b = binary.LittleEndian.AppendUint32(b, t)
		b = append(b, a[:]...)
	}
	return b
}

func nestedShape() func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addrs := e.deploy(tb, chainModule().bytes(), vm.MaxCallDepth)
		// addrs[0] is called by the transaction; it calls addrs[1], ...
		msg := chainMsg(1, addrs[1:])
		nested := uint64(len(addrs)-1) * e.loads[addrs[1]]
		return func() (sample, error) { return e.executeClock(measure, nil, addrs[0], msg, e.gas, nested) }
	}
}

func wideShape(n uint32) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addrs := e.deploy(tb, chainModule().bytes(), 2)
		msg := chainMsg(n, addrs[1:2])
		nested := uint64(n) * e.loads[addrs[1]]
		return func() (sample, error) { return e.executeClock(measure, nil, addrs[0], msg, e.gas, nested) }
	}
}

// trappingCalleeShape: a contract calls a Go contract that panics, n
// times per transaction.
func trappingCalleeShape(n uint32) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		callee := e.deploy(tb, goBuild(tb, "testdata/gocontract"), 1)[0]
		caller := e.deploy(tb, chainModule().bytes(), 1)[0]
		msg := append(chainMsg(n, []ledger.Address{callee}), "trap"...)
		nested := uint64(n) * e.loads[callee]
		return func() (sample, error) { return e.executeClock(measure, nil, caller, msg, e.gas, nested) }
	}
}

// refShape runs a calibration workload of vm/testdata/contract.
func refShape(msg string) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addr := e.deploy(tb, goBuild(tb, "../testdata/contract"), 1)[0]
		return func() (sample, error) { return e.execute(nil, addr, []byte(msg), e.gas) }
	}
}

// goShape calls the Go contract with msg and gas (0: the env's).
func goShape(msg string, gas uint64) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		addr := e.deploy(tb, goBuild(tb, "testdata/gocontract"), 1)[0]
		return func() (sample, error) { return e.execute(nil, addr, []byte(msg), cmp.Or(gas, e.gas)) }
	}
}

// policyShape prepares wasm in the policy VM and calls allocate on input.
func policyShape(tb testing.TB, e *env, wasm, input []byte, gas uint64) attack {
	id := [32]byte(ledger.HashBytes(wasm))
	p, _, err := e.policy.Prepare(e.ctx, id, wasm, vm.MaxUploadGas)
	if err != nil {
		tb.Fatal(err)
	}
	load, err := vm.LoadGas(p)
	if err != nil {
		tb.Fatal(err)
	}
	gas = min(gas+load, vm.MaxPolicyGas)
	return func() (sample, error) {
		x, err := measure(func() (uint64, error) {
			res, err := e.policy.Call(e.ctx, id, p, "allocate", input, vm.Env{ChainID: "adversarial"}, refusingHost{}, gas)
			if err == nil && res.Failed {
				err = fmt.Errorf("policy failed: %s", res.Data)
			}
			return res.GasUsed, err
		})
		x.load = min(load, x.gas)
		return x, err
	}
}

// handPolicyShape runs m's execute as a policy's allocate (in the policy
// VM, whose memory limit is vm.MaxPolicyMemoryPages).
func handPolicyShape(m *module) func(testing.TB, *env) attack {
	m.export("allocate", uint32(len(m.imports)+len(m.funcs)-1))
	wasm := m.bytes()
	return func(tb testing.TB, e *env) attack { return policyShape(tb, e, wasm, nil, callGas) }
}

func goPolicyLoopShape(gas uint64) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		return policyShape(tb, e, goBuild(tb, "testdata/gopolicy"), nil, gas)
	}
}

// shippedPolicyShape runs a shipped ROME policy on a generated market
// (skipped when `make contracts` has not built it).
func shippedPolicyShape(name string, requests, offers int) func(testing.TB, *env) attack {
	return func(tb testing.TB, e *env) attack {
		wasm, err := os.ReadFile(filepath.Join("..", "..", "sdk-contracts", "policies", name, name+".wasm"))
		if err != nil {
			tb.Skipf("%v (run make contracts)", err)
		}
		_, snap, err := marketgen.Generate(marketgen.Config{Requests: requests, Offers: offers, Kinds: 4, Seed: 1})
		if err != nil {
			tb.Fatal(err)
		}
		return policyShape(tb, e, wasm, snap, vm.MaxPolicyGas)
	}
}
