package sdk

import "errors"

// Errors returned by the SDK. A contract returns them (or wraps them) from
// its handlers; their text becomes the receipt error.
var (
	// ErrNotFound reports a storage key with no value.
	ErrNotFound = errors.New("sdk: not found")
	// ErrInsufficientFunds reports a transfer larger than the contract's balance.
	ErrInsufficientFunds = errors.New("sdk: insufficient funds")
	// ErrUnknownDenom reports a transfer in a denomination the chain does not know.
	ErrUnknownDenom = errors.New("sdk: unknown denom")
	// ErrInvalidAddress reports a string that is not a bech32 "sos1..." address.
	ErrInvalidAddress = errors.New("sdk: invalid address")
	// ErrInvalidMessage reports a message that is not one JSON object naming a handler.
	ErrInvalidMessage = errors.New("sdk: invalid message")
	// ErrUnknownMessage reports a message naming no handler of the contract.
	ErrUnknownMessage = errors.New("sdk: unknown message")
	// ErrCallFailed reports a called or queried contract that returned an
	// error; the wrapping error carries the callee's text.
	ErrCallFailed = errors.New("sdk: call failed")
	// ErrNoEntryPoint reports an entry point the contract does not define.
	ErrNoEntryPoint = errors.New("sdk: entry point not defined")
)
