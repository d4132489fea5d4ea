// Package hostabi declares the host interface the SDK runs against: the
// Contract ABI v1 (docs/contracts-abi.md) lifted from pointers to Go values.
//
// Two implementations exist. Under GOOS=wasip1 package sdk implements it with
// //go:wasmimport calls into the node's VM; natively package sdktest
// implements it in process against an in-memory chain, so contracts are
// tested with plain `go test`.
package hostabi

// AddressSize is the length of an address in bytes.
const AddressSize = 32

// Address is a raw 32-byte account or contract address.
type Address = [AddressSize]byte

// Host is one contract call's view of the chain. Methods mirror the imports
// of module "sos"; a method that the ABI defines as trapping (a write inside a
// query, a key over the size limit, call depth exceeded) panics in an
// in-process implementation and traps in the VM.
type Host interface {
	// Input returns the call's message.
	Input() []byte
	// SetResult sets the call's result; the last call wins.
	SetResult(b []byte)
	// Fail records err as the call's error (set_result with its text). An
	// in-process host may keep err itself so tests can match it with errors.Is.
	Fail(err error)

	StorageGet(key []byte) (value []byte, ok bool)
	StorageSet(key, value []byte)
	StorageDelete(key []byte)
	// IterOpen opens an iterator over [start, end); end == nil means no upper bound.
	IterOpen(start, end []byte, reverse bool) int32
	// IterNext returns the next entry, or ok == false at the end.
	IterNext(id int32) (key, value []byte, ok bool)
	IterClose(id int32)

	BlockHeight() int64
	BlockTimeMillis() int64
	ChainID() string
	Self() Address
	Sender() Address
	Caller() Address
	// Funds returns the coins sent with this call as JSON: [{"denom":"..","amount":".."}].
	Funds() []byte
	Balance(addr Address, denom string) uint64
	// Transfer returns 0 on success, 1 for insufficient funds, 2 for an unknown denom.
	Transfer(to Address, denom string, amount uint64) int32
	// EmitEvent adds {"type":"..","attrs":[{"key":"..","value":".."}]} to the receipt.
	EmitEvent(event []byte)
	// Call executes another contract; ok == false means the callee returned
	// an error (its writes are reverted) and result holds the error text.
	Call(addr Address, msg, funds []byte) (result []byte, ok bool)
	// QueryContract queries another contract read-only; same convention as Call.
	QueryContract(addr Address, msg []byte) (result []byte, ok bool)

	Sha256(data []byte) [32]byte
	Blake3(data []byte) [32]byte
	MLDSAVerify(pub, msg, sig, ctx []byte) bool
	AddrToString(a Address) string
	AddrFromString(s string) (Address, bool)
	DebugLog(msg []byte)
}
