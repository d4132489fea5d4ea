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
func Handle(f Func) int32 {
	in := make([]byte, sosInputLen())
	if len(in) > 0 {
		sosInputRead(unsafe.Pointer(&in[0]))
	}
	out, err := Apply(in, f)
	if err != nil {
		msg := []byte(err.Error())
		sosSetResult(unsafe.Pointer(unsafe.SliceData(msg)), int32(len(msg)))
		return 1
	}
	sosSetResult(unsafe.Pointer(&out[0]), int32(len(out)))
	return 0
}
