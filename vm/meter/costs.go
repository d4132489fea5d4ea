package meter

import (
	"fmt"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

// CostTable prices instructions in gas. It is part of consensus: every node
// must instrument uploaded code with the same table, so any change to a
// value must come with a new Version.
//
// The compiled-module cache key MUST include Version (together with the hash
// of the uploaded bytes and the Limits): the same upload instrumented under
// two tables is two different programs.
//
// Costs are fixed-point: every field is in units of 1/Scale gas, so an
// instruction can cost less than one gas (most compile to a fraction of a
// nanosecond). Static costs are summed per segment at instrumentation time
// (see Instrument) and the dynamic Per* costs are multiplied by an operand
// at run time; inside a function the counter runs in units, exactly, and
// it is rounded up to whole gas only when it is written back to the gas
// global (before calls and returns), so the run-time code is the same
// whatever Scale is. Every field is capped at MaxCost so that no charge can
// overflow the i64 counter: a 32-bit size operand times MaxCost stays below
// 2^56 units.
type CostTable struct {
	// Version identifies this table in cache keys and receipts.
	Version uint32
	// Scale is the number of cost units per gas: a power of two in
	// [1, MaxScale] (a power of two so that the counter converts between
	// gas and units with a shift).
	Scale uint32

	// Base is the cost of cheap integer ALU work, comparisons, conversions,
	// select and reference ops.
	Base uint32
	// Local is the cost of local.get/set/tee, constants and drop: after
	// register allocation they are mostly free.
	Local uint32
	// Global is the cost of global.get/set: a load or store through the
	// instance (Go keeps its stack pointer in a global).
	Global uint32
	// Control is the cost of block, loop, else, end and nop: they compile to
	// nothing or to an unconditional jump.
	Control uint32
	// IntMul is the cost of i32/i64 mul.
	IntMul uint32
	// IntDiv is the cost of i32/i64 div and rem (tens of cycles on x86).
	IntDiv uint32
	// Float is the cost of float arithmetic, comparison, rounding and
	// conversions other than division and square root.
	Float uint32
	// FloatDiv is the cost of f32/f64 div and sqrt.
	FloatDiv uint32
	// Load and Store are the costs of memory accesses (bounds check + access).
	Load  uint32
	Store uint32
	// Branch is the cost of br, br_if, if and return.
	Branch uint32
	// BrTable is the cost of br_table: an indirect jump through a table
	// (Go dispatches every resumable function's entry through one).
	BrTable uint32
	// BrTableMiss is charged, at run time, when a br_table takes an index
	// that is neither of the last two the same site took in the same call
	// of its function (both 0 at entry): an indirect jump whose target
	// changes unpredictably mispredicts; one that repeats or alternates
	// between two targets does not. It depends only on the execution, so
	// it is deterministic. Zero leaves br_table sites without the extra
	// code.
	BrTableMiss uint32
	// Loop is charged on every iteration of a loop, on top of its
	// instructions: the back edge and the gas check the metering adds there.
	Loop uint32
	// Call is the cost of a direct call (frame setup), CallIndirect that of
	// call_indirect (priced as the dynamic dispatch it stands for, see
	// DefaultCosts).
	Call         uint32
	CallIndirect uint32
	// Unreachable is the cost of unreachable (a trap).
	Unreachable uint32

	// MemorySize is the cost of memory.size.
	MemorySize uint32
	// MemoryGrow is the static cost of memory.grow, MemoryGrowPerPage is
	// charged per requested 64 KiB page (zeroing the new memory).
	MemoryGrow        uint32
	MemoryGrowPerPage uint32
	// Bulk is the static cost of memory.copy, memory.fill, memory.init and
	// data.drop; BulkPerByte is charged per byte of the size operand.
	Bulk        uint32
	BulkPerByte uint32
	// Table is the static cost of table.get/set/size/grow/copy/fill/init and
	// elem.drop; TablePerElem is charged per element of the size operand of
	// table.copy/fill/init/grow.
	Table        uint32
	TablePerElem uint32

	// Spill is added to every instruction (other than block structure) of
	// a function whose frame cannot live in registers, in proportion to the
	// part that cannot: a function of s slots (locals plus its deepest
	// operand stack, see FrameSlots) pays Spill × (s − SpillFreeSlots) / s
	// per instruction when s > SpillFreeSlots. The compiled code of such a
	// function moves values between registers and its stack frame at
	// almost every instruction, including the local.get and local.set that
	// Local prices as register moves.
	Spill uint32
}

// MaxCost bounds every CostTable cost field; see CostTable.
const MaxCost = 1 << 24

// MaxScale bounds CostTable.Scale.
const MaxScale = 1 << 10

// DefaultCosts returns the protocol cost table, version 6, in sixteenths of
// a gas. One gas is meant to be one nanosecond on the reference machine
// (1 Mgas ≈ 1 ms). Version 4 was fitted to two sets of measurements taken
// with wazero's compiler on an AMD EPYC: the calibration suite of package vm
// (BenchmarkGasCalibration: sha256 loop, JSON decoding, storage, integer
// loop with strconv) and the standing adversarial benchmark
// (vm/adversarial: hostile loops that isolate one class each — 1,000
// rotated locals, random branches, a 10,000-entry br_table, Go's dispatch
// loop, 64-bit division, float chains, direct and indirect calls,
// recursion, sequential and random memory access), given how many
// instructions of each class every workload executes (TestGasCalibrationMix,
// TestAdversarialMix). Every loop iteration pays Loop and every call Call,
// so no unbounded execution is free (the table's validation insists on it).
//
// What changed from version 5, and why (BENCHMARKS.md, "VM adversarial:
// execution", has the figures): a br_table whose index is neither of the
// last two the same site took in the same call pays BrTableMiss, 16 gas,
// at run time (see the metering model in rewrite.go). Version 5 left out of
// the band what no static price can fix, Go's JSON decoding and Go
// switches on random data (below): control flow that depends on the data,
// which Go's wasm backend turns into br_tables whose index changes and the
// CPU mispredicts. Loops whose br_table repeats its index or alternates
// between two (every Go for loop, sha256's rounds) pay nothing more. 16
// gas is a compromise between two shapes: an 8-way Go switch on random
// bytes spends ≈7 ns per counted change beyond its static price (go/switch
// must stay above 0.5 ns/gas), JSON decoding ≈60 ns (its other branches
// and loads are unpredictable too, and it must come below 2).
//
// What changed from version 4, and why:
//   - a branch (br, br_if, if, return) costs 1/4 gas instead of 1/16: a
//     data-dependent one mispredicts (≈15 cycles), and a loop taking an
//     unpredictable if per 7 instructions ran at ≈2.3 ns/gas; predictable
//     loops, which pay the same, land at ≈0.6–0.7;
//   - memory.grow costs 400 gas a page instead of 800 (growing one page
//     at a time ran at ≈0.45 ns/gas).
//
// Version 5 left alone what no static price per instruction can fix,
// because the same instructions run five to seven times faster in other
// code: Go's JSON decoding (≈2.7–3.6 ns/gas) and a Go switch on random
// data (≈2.6). Profiles of the compiled code (perf with wazero's perfmap)
// put JSON's time in ordinary Go code — the decoder's state functions,
// mallocgc, reflect, strconv — not in call_indirect: the scanner alone,
// a call through a func value per byte (json.Valid), runs at ≈1.2, and
// interface calls at ≈0.65. What sets the slow code apart is control flow
// that depends on the data: Go's wasm backend makes every jump that is not
// a fall-through a br_table on the function's resume point, and those
// mispredict. Pricing that needs a dynamic charge (a br_table whose target
// changed, say), not a heavier static one: raising Branch or BrTable far
// enough would put the predictable loops Go emits for every for statement
// below the band.
//
// What changed from version 3, and why:
//   - call_indirect cost 225 gas, as a proxy for Go's dynamic dispatch
//     (interface methods, closures, map hashing, sort callbacks), the one
//     class that set JSON-style code apart from integer loops; the
//     instruction itself takes ≈12 ns, so a loop of indirect calls ran at
//     0.13 ns/gas. It now costs 16 gas, and JSON decoding, which ran at
//     ≈1.1 ns/gas, runs at ≈3–4.7 (the static classes cannot tell its
//     pointer-chasing, low-IPC code from the integer loop, which lands at
//     ≈1–1.3): above the 0.5–2 band, see BENCHMARKS.md ("VM adversarial:
//     execution") for the shapes still outside it;
//   - br_table is a class of its own (2 gas): Go dispatches every
//     resumable function's entry through one, and a Go loop such as
//     for { counter++ } goes through it on every iteration, which ran at
//     ≈4–6 ns/gas when it was priced as a branch;
//   - local.get/set/tee cost 1/16 gas instead of nothing, and every
//     instruction of a function whose frame cannot live in registers pays
//     Spill in proportion (see SpillFreeSlots): 1,000 rotated locals ran at
//     ≈780 ns/gas;
//   - calls cost 5 gas (the call and depth counters around them, frame
//     setup, the callee's prologue: ≈5 ns, priced at 1 gas before), 64-bit
//     division 7.5 gas, float division and square root 4;
//   - ALU work and branches cost 1/16 gas (several retire per cycle), global
//     accesses 1.25 gas, loads 5/8 and stores 1/2.
//
// A static cost per instruction cannot see instruction-level parallelism,
// branch prediction or cache misses. Loads are priced as cache hits, as
// nearly all of Go's are: a loop of loads at random addresses over 8 MiB
// misses the caches and the TLB on each (≈10 ns) and runs at ≈3.5–6 ns/gas,
// above the band (pricing every load at its miss would overprice ordinary
// code five times over); so do unpredictable branches (≈2.5).
// Times also move by ±15 % with code layout alone, so a refit needs
// several runs (BENCHMARKS.md records them).
func DefaultCosts() CostTable {
	return CostTable{
		Version:           6,
		Scale:             16,
		Base:              1,   // 1/16 gas: ALU work retires several per cycle
		Local:             1,   // register moves, not free: see locals/rotate in vm/adversarial
		Global:            20,  // a load or store through the instance (Go's stack pointer)
		Control:           0,   // no code
		IntMul:            16,  // 3-cycle latency
		IntDiv:            120, // 64-bit division: ≈7 ns in a dependent chain, plus the zero and overflow checks
		Float:             4,
		FloatDiv:          64,
		Load:              10, // bounds check and access (an L1 hit; see the doc on misses)
		Store:             8,
		Branch:            4,   // 1/4 gas: several retire per cycle, but a data-dependent one mispredicts (see branch/random)
		BrTable:           32,  // an indirect jump; Go's resumable functions dispatch through one at every entry and loop
		BrTableMiss:       256, // 16 gas: a br_table whose index is neither of the last two it took: a mispredicted indirect jump (see go/switch, ref/json)
		Loop:              4,   // the gas check and the back edge
		Call:              80,  // the counters around the call, frame setup, the callee's prologue: ≈5 ns
		CallIndirect:      256, // ≈12 ns (table and type checks, an indirect call): see above
		Unreachable:       16,
		MemorySize:        16,
		MemoryGrow:        1600,
		MemoryGrowPerPage: 6400, // 400 gas: mapping 64 KiB read-only (written pages pay vm.GasPageWrite)
		Bulk:              800,  // a call into the engine's memmove
		BulkPerByte:       1,    // memmove/memset run at ≥16 bytes per ns
		Table:             80,
		TablePerElem:      16,
		Spill:             4, // per instruction of a frame that cannot live in registers (SpillFreeSlots)
	}
}

func (c *CostTable) validate() error {
	if c.Scale == 0 || c.Scale > MaxScale || c.Scale&(c.Scale-1) != 0 {
		return fmt.Errorf("meter: cost table v%d: scale %d is not a power of two in [1, %d]", c.Version, c.Scale, MaxScale)
	}
	// Every loop iteration pays Loop and every recursion a call: if those
	// were free, unbounded execution could be.
	if c.Loop == 0 || c.Call == 0 || c.CallIndirect == 0 {
		return fmt.Errorf("meter: cost table v%d: Loop, Call and CallIndirect must not be zero", c.Version)
	}
	fields := []uint32{c.Base, c.Local, c.Global, c.Control, c.IntMul, c.IntDiv, c.Float, c.FloatDiv, c.Load, c.Store,
		c.Branch, c.BrTable, c.BrTableMiss, c.Loop, c.Call, c.CallIndirect, c.Unreachable, c.MemorySize, c.MemoryGrow,
		c.MemoryGrowPerPage, c.Bulk, c.BulkPerByte, c.Table, c.TablePerElem, c.Spill}
	for i, f := range fields {
		if f > MaxCost {
			return fmt.Errorf("meter: cost table v%d: field %d is %d, above MaxCost %d", c.Version, i, f, MaxCost)
		}
	}
	return nil
}

// opCosts is a CostTable flattened into lookup tables for the rewriter.
type opCosts struct {
	op     [256]int64
	fc     [18]int64
	loop   int64 // per loop iteration
	spill  int64 // CostTable.Spill
	brMiss int64 // CostTable.BrTableMiss
}

func (c *CostTable) flatten() *opCosts {
	t := &opCosts{loop: int64(c.Loop), spill: int64(c.Spill), brMiss: int64(c.BrTableMiss)}
	for op := 0; op < 256; op++ {
		t.op[op] = int64(c.Base)
	}
	for _, op := range []byte{wasmbin.OpLocalGet, wasmbin.OpLocalSet, wasmbin.OpLocalTee, wasmbin.OpDrop,
		wasmbin.OpI32Const, wasmbin.OpI64Const, wasmbin.OpF32Const, wasmbin.OpF64Const} {
		t.op[op] = int64(c.Local)
	}
	t.op[wasmbin.OpGlobalGet] = int64(c.Global)
	t.op[wasmbin.OpGlobalSet] = int64(c.Global)
	for _, op := range []byte{wasmbin.OpNop, wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpElse, wasmbin.OpEnd} {
		t.op[op] = int64(c.Control)
	}
	for _, op := range []byte{wasmbin.OpIf, wasmbin.OpBr, wasmbin.OpBrIf, wasmbin.OpReturn} {
		t.op[op] = int64(c.Branch)
	}
	t.op[wasmbin.OpBrTable] = int64(c.BrTable)
	t.op[wasmbin.OpUnreachable] = int64(c.Unreachable)
	t.op[wasmbin.OpCall] = int64(c.Call)
	t.op[wasmbin.OpCallIndirect] = int64(c.CallIndirect)
	t.op[wasmbin.OpTableGet] = int64(c.Table)
	t.op[wasmbin.OpTableSet] = int64(c.Table)
	for op := 0x28; op <= 0x35; op++ {
		t.op[op] = int64(c.Load)
	}
	for op := 0x36; op <= 0x3e; op++ {
		t.op[op] = int64(c.Store)
	}
	t.op[wasmbin.OpMemorySize] = int64(c.MemorySize)
	t.op[wasmbin.OpMemoryGrow] = int64(c.MemoryGrow)
	t.op[0x6c] = int64(c.IntMul) // i32.mul
	t.op[0x7e] = int64(c.IntMul) // i64.mul
	for _, op := range []byte{0x6d, 0x6e, 0x6f, 0x70, 0x7f, 0x80, 0x81, 0x82} {
		t.op[op] = int64(c.IntDiv) // i32/i64 div_s div_u rem_s rem_u
	}
	// Float comparisons (0x5b–0x66), arithmetic (0x8b–0xa6) and conversions
	// involving floats (0xa8–0xbb, minus the integer-only wrap/extend).
	for op := 0x5b; op <= 0x66; op++ {
		t.op[op] = int64(c.Float)
	}
	for op := 0x8b; op <= 0xa6; op++ {
		t.op[op] = int64(c.Float)
	}
	for op := 0xa8; op <= 0xbb; op++ {
		if op != 0xac && op != 0xad { // i64.extend_i32_s/u
			t.op[op] = int64(c.Float)
		}
	}
	for _, op := range []byte{0x91, 0x95, 0x9f, 0xa3} { // sqrt, div
		t.op[op] = int64(c.FloatDiv)
	}
	for sub := 0; sub < 8; sub++ {
		t.fc[sub] = int64(c.Float) // trunc_sat
	}
	for _, sub := range []uint32{wasmbin.FCMemoryInit, wasmbin.FCDataDrop, wasmbin.FCMemoryCopy, wasmbin.FCMemoryFill} {
		t.fc[sub] = int64(c.Bulk)
	}
	for _, sub := range []uint32{wasmbin.FCTableInit, wasmbin.FCElemDrop, wasmbin.FCTableCopy,
		wasmbin.FCTableGrow, wasmbin.FCTableSize, wasmbin.FCTableFill} {
		t.fc[sub] = int64(c.Table)
	}
	return t
}

func (t *opCosts) of(in wasmbin.Instr) int64 {
	if in.Op == wasmbin.OpPrefixFC {
		if int(in.Sub) < len(t.fc) {
			return t.fc[in.Sub]
		}
		return 0
	}
	return t.op[in.Op]
}
