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
// All costs are charged per executed basic block (see Instrument); the
// dynamic Per* costs are multiplied by an operand at run time. Every field is
// capped at MaxCost so that no charge can overflow the i64 gas counter: a
// 32-bit size operand times MaxCost stays below 2^62.
type CostTable struct {
	// Version identifies this table in cache keys and receipts.
	Version uint32

	// Base is the cost of cheap integer ALU work, constants, locals,
	// globals, comparisons, conversions, drop, select and reference ops.
	Base uint32
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
	// Branch is the cost of br, br_if, br_table, if and return.
	Branch uint32
	// Call is the cost of a direct call (frame setup); CallIndirect adds the
	// table bounds and signature checks.
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
}

// MaxCost bounds every CostTable field; see CostTable.
const MaxCost = 1 << 24

// DefaultCosts returns the protocol cost table, version 1. Units are chosen
// so that one gas is roughly one nanosecond of execution on the reference
// machine (1 Mgas ≈ 1 ms).
func DefaultCosts() CostTable {
	return CostTable{
		Version:           1,
		Base:              1,
		Control:           0,
		IntMul:            2,
		IntDiv:            8,
		Float:             2,
		FloatDiv:          8,
		Load:              2,
		Store:             2,
		Branch:            1,
		Call:              5,
		CallIndirect:      8,
		Unreachable:       1,
		MemorySize:        2,
		MemoryGrow:        100,
		MemoryGrowPerPage: 2000, // zeroing 64 KiB is ≈2 µs
		Bulk:              10,
		BulkPerByte:       1,
		Table:             5,
		TablePerElem:      2,
	}
}

func (c *CostTable) validate() error {
	fields := []uint32{c.Base, c.Control, c.IntMul, c.IntDiv, c.Float, c.FloatDiv, c.Load, c.Store,
		c.Branch, c.Call, c.CallIndirect, c.Unreachable, c.MemorySize, c.MemoryGrow,
		c.MemoryGrowPerPage, c.Bulk, c.BulkPerByte, c.Table, c.TablePerElem}
	for i, f := range fields {
		if f > MaxCost {
			return fmt.Errorf("meter: cost table v%d: field %d is %d, above MaxCost %d", c.Version, i, f, MaxCost)
		}
	}
	return nil
}

// opCosts is a CostTable flattened into lookup tables for the rewriter.
type opCosts struct {
	op [256]int64
	fc [18]int64
}

func (c *CostTable) flatten() *opCosts {
	t := &opCosts{}
	for op := 0; op < 256; op++ {
		t.op[op] = int64(c.Base)
	}
	for _, op := range []byte{wasmbin.OpNop, wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpElse, wasmbin.OpEnd} {
		t.op[op] = int64(c.Control)
	}
	for _, op := range []byte{wasmbin.OpIf, wasmbin.OpBr, wasmbin.OpBrIf, wasmbin.OpBrTable, wasmbin.OpReturn} {
		t.op[op] = int64(c.Branch)
	}
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
