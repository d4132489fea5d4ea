package wasmbin

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed classifies bytes that are not a well-formed WebAssembly
	// 2.0 binary.
	ErrMalformed = errors.New("malformed module")
	// ErrUnsupported classifies well-formed encodings of features outside
	// WebAssembly 2.0 core (SIMD, threads, exception handling, ...).
	ErrUnsupported = errors.New("unsupported feature")
)

// Error is a decode error with its position. Offsets are relative to the
// buffer being decoded (a section payload or a function body).
type Error struct {
	Kind   error // ErrMalformed or ErrUnsupported
	Offset int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("%s at offset %#x", e.Msg, e.Offset) }

func (e *Error) Unwrap() error { return e.Kind }

func errAt(kind error, off int, format string, args ...any) error {
	return &Error{Kind: kind, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// where prefixes err with a location ("code section: function 12: ...").
func where(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}
