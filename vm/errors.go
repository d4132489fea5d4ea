package vm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by Prepare and Call wrap one of them (or
// an error returned by the Host) with a precise reason; match with errors.Is.
var (
	// ErrOutOfGas: the call used its whole gas limit.
	ErrOutOfGas = errors.New("vm: out of gas")
	// ErrTrap: the contract trapped (unreachable, out-of-bounds access,
	// stack overflow, a Go panic, proc_exit).
	ErrTrap = errors.New("vm: trap")
	// ErrLimit: a protocol limit of limits.go was exceeded.
	ErrLimit = errors.New("vm: limit exceeded")
	// ErrInvalidModule: the upload (or a stored prepared module) is not
	// acceptable: malformed, unsupported feature, unknown import, missing
	// entry point.
	ErrInvalidModule = errors.New("vm: invalid module")
	// ErrReadOnly: a read-only call (query) tried to change state.
	ErrReadOnly = errors.New("vm: write in read-only call")
	// ErrCallDepth: too many nested contract calls.
	ErrCallDepth = errors.New("vm: call depth exceeded")
	// ErrClosed: the VM was closed.
	ErrClosed = errors.New("vm: closed")
)

// Errors a Host returns from Transfer to make the guest see return codes
// 1 and 2 instead of a trap.
var (
	ErrInsufficientFunds = errors.New("vm: insufficient funds")
	ErrUnknownDenom      = errors.New("vm: unknown denom")
)

// trap is the panic value host functions use to abort the guest. The call
// state keeps the first one, so the reason survives wazero's wrapping.
type trap struct{ err error }

func newTrap(kind error, format string, args ...any) *trap {
	return &trap{err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))}
}
