//go:build wasip1

package policy

import "unsafe"

// The three host functions a policy uses (docs/contracts-abi.md, module
// "sos"). Every other host call fails for a policy, so none is imported.

//go:wasmimport sos input_len
func sosInputLen() int32

//go:wasmimport sos input_read
func sosInputRead(dst unsafe.Pointer)

//go:wasmimport sos set_result
func sosSetResult(ptr unsafe.Pointer, n int32)

// Handle runs f on the call's snapshot: the body of a policy's exported
// allocate function. It returns 0 with the encoded allocation list as the
// result, or 1 with the error text.
func Handle(f Func) int32 { return HandleAnytime(Anytime(f)) }

// HandleAnytime is Handle for an allocator that hands in lists as it goes:
// each one is encoded and passed to set_result at once, so that the kernel
// has it should the allocator run out of gas or trap later. The list f
// returns is set last; an error replaces the result with its text.
func HandleAnytime(f AnytimeFunc) int32 {
	in := make([]byte, sosInputLen())
	if len(in) > 0 {
		sosInputRead(unsafe.Pointer(&in[0]))
	}
	out, err := ApplyAnytime(in, f, setResult)
	if err != nil {
		setResult([]byte(err.Error()))
		return 1
	}
	setResult(out)
	return 0
}

// HandleAll is HandleAnytime for an allocator that places replicas itself
// (ApplyAll): f sees replicated requests too and must follow their rules
// (docs/rome-policy-abi.md); nothing is added to its lists.
func HandleAll(f AnytimeFunc) int32 {
	in := make([]byte, sosInputLen())
	if len(in) > 0 {
		sosInputRead(unsafe.Pointer(&in[0]))
	}
	out, err := ApplyAll(in, f, setResult)
	if err != nil {
		setResult([]byte(err.Error()))
		return 1
	}
	setResult(out)
	return 0
}

func setResult(b []byte) { sosSetResult(unsafe.Pointer(unsafe.SliceData(b)), int32(len(b))) }
