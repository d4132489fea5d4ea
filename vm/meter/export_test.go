package meter

import "github.com/sos-kernel/sos/vm/internal/wasmbin"

// TwoLocalBrTableMiss returns opts with the br_table tracking emitted as
// cost table v6 first did: $last and $prev in two i32 locals (the same
// branch-free compares, then $prev = $last; $last = index). Its gas must
// equal brTableMiss's everywhere (TestBrTableMissEmissions).
func TwoLocalBrTableMiss(opts Options) Options {
	opts.brMissEmit = twoLocals{}
	return opts
}

type twoLocals struct{}

func (twoLocals) emitBrMiss(r *rewriter, off int) error {
	t := r.local(slotI32)
	g := r.local(slotGas)
	last := uint32(int64(r.nLocals) + int64(len(r.scratch)))
	prev := last + 1
	r.scratch = append(r.scratch, wasmbin.I32, wasmbin.I32)
	o := wasmbin.AppendU32(append(r.seg, wasmbin.OpLocalTee), t)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), g)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), last)
	o = append(o, opI32Ne)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), prev)
	o = append(o, opI32Ne, opI32And, wasmbin.OpI64ExtendI32U)
	o = r.appendTimesBrMiss(o)
	o = append(o, wasmbin.OpI64Sub)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), g)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), last)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), prev)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	r.seg = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), last)
	return nil
}
