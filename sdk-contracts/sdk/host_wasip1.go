//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/hostabi"
)

// The imports of module "sos" (docs/contracts-abi.md). Pointers are offsets
// into the guest's memory; Go's heap never moves, so passing the address of
// a live slice or array is safe for the duration of the call.

//go:wasmimport sos input_len
func sosInputLen() int32

//go:wasmimport sos input_read
func sosInputRead(dst unsafe.Pointer)

//go:wasmimport sos set_result
func sosSetResult(ptr unsafe.Pointer, n int32)

//go:wasmimport sos storage_get
func sosStorageGet(kptr unsafe.Pointer, klen int32, vptr unsafe.Pointer, vcap int32) int32

//go:wasmimport sos storage_set
func sosStorageSet(kptr unsafe.Pointer, klen int32, vptr unsafe.Pointer, vlen int32)

//go:wasmimport sos storage_delete
func sosStorageDelete(kptr unsafe.Pointer, klen int32)

//go:wasmimport sos storage_iter_open
func sosIterOpen(sptr unsafe.Pointer, slen int32, eptr unsafe.Pointer, elen int32, reverse int32) int32

//go:wasmimport sos storage_iter_next
func sosIterNext(id int32, kptr unsafe.Pointer, kcap int32, vptr unsafe.Pointer, vcap int32) int64

//go:wasmimport sos storage_iter_close
func sosIterClose(id int32)

//go:wasmimport sos block_height
func sosBlockHeight() int64

//go:wasmimport sos block_time
func sosBlockTime() int64

//go:wasmimport sos chain_id
func sosChainID(dst unsafe.Pointer, cap int32) int32

//go:wasmimport sos self_address
func sosSelfAddress(dst unsafe.Pointer)

//go:wasmimport sos sender
func sosSender(dst unsafe.Pointer)

//go:wasmimport sos caller
func sosCaller(dst unsafe.Pointer)

//go:wasmimport sos funds
func sosFunds(dst unsafe.Pointer, cap int32) int32

//go:wasmimport sos balance
func sosBalance(aptr unsafe.Pointer, dptr unsafe.Pointer, dlen int32) int64

//go:wasmimport sos transfer
func sosTransfer(aptr unsafe.Pointer, dptr unsafe.Pointer, dlen int32, amount int64) int32

//go:wasmimport sos emit_event
func sosEmitEvent(ptr unsafe.Pointer, n int32)

//go:wasmimport sos call
func sosCall(aptr unsafe.Pointer, mptr unsafe.Pointer, mlen int32, fptr unsafe.Pointer, flen int32) int32

//go:wasmimport sos query_contract
func sosQueryContract(aptr unsafe.Pointer, mptr unsafe.Pointer, mlen int32) int32

//go:wasmimport sos call_result_len
func sosCallResultLen() int32

//go:wasmimport sos call_result_read
func sosCallResultRead(dst unsafe.Pointer)

//go:wasmimport sos sha256
func sosSha256(ptr unsafe.Pointer, n int32, dst unsafe.Pointer)

//go:wasmimport sos blake3
func sosBlake3(ptr unsafe.Pointer, n int32, dst unsafe.Pointer)

//go:wasmimport sos mldsa_verify
func sosMLDSAVerify(pkptr unsafe.Pointer, pklen int32, mptr unsafe.Pointer, mlen int32, sptr unsafe.Pointer, slen int32, cptr unsafe.Pointer, clen int32) int32

//go:wasmimport sos addr_to_string
func sosAddrToString(aptr unsafe.Pointer, dst unsafe.Pointer, cap int32) int32

//go:wasmimport sos addr_from_string
func sosAddrFromString(ptr unsafe.Pointer, n int32, dst unsafe.Pointer) int32

//go:wasmimport sos debug_log
func sosDebugLog(ptr unsafe.Pointer, n int32)

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func sptr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

// wasmHost is the node, reached through the imports. Its scratch buffers
// live for one entry-point call.
type wasmHost struct {
	kbuf, vbuf []byte
}

func defaultHost() hostabi.Host {
	return &wasmHost{kbuf: make([]byte, 256), vbuf: make([]byte, 1024)}
}

func (*wasmHost) Input() []byte {
	b := make([]byte, sosInputLen())
	if len(b) > 0 {
		sosInputRead(ptr(b))
	}
	return b
}

func (*wasmHost) SetResult(b []byte) { sosSetResult(ptr(b), int32(len(b))) }

func (*wasmHost) Fail(err error) {
	s := err.Error()
	sosSetResult(sptr(s), int32(len(s)))
}

// readSized calls f with a buffer until the length f reports fits, and
// returns a copy of exactly that length. The ABI copies only when the value
// fits, so a too-small buffer costs one more call, never a wrong answer.
func readSized(buf *[]byte, f func(dst []byte) int32) ([]byte, bool) {
	for {
		n := f(*buf)
		if n < 0 {
			return nil, false
		}
		if int(n) <= len(*buf) {
			return append([]byte(nil), (*buf)[:n]...), true
		}
		*buf = make([]byte, n)
	}
}

func (h *wasmHost) StorageGet(key []byte) ([]byte, bool) {
	return readSized(&h.vbuf, func(dst []byte) int32 {
		return sosStorageGet(ptr(key), int32(len(key)), ptr(dst), int32(len(dst)))
	})
}

func (*wasmHost) StorageSet(key, value []byte) {
	sosStorageSet(ptr(key), int32(len(key)), ptr(value), int32(len(value)))
}

func (*wasmHost) StorageDelete(key []byte) { sosStorageDelete(ptr(key), int32(len(key))) }

func (*wasmHost) IterOpen(start, end []byte, reverse bool) int32 {
	elen := int32(len(end))
	if end == nil {
		elen = -1
	}
	var rev int32
	if reverse {
		rev = 1
	}
	return sosIterOpen(ptr(start), int32(len(start)), ptr(end), elen, rev)
}

func (h *wasmHost) IterNext(id int32) (key, value []byte, ok bool) {
	for {
		r := sosIterNext(id, ptr(h.kbuf), int32(len(h.kbuf)), ptr(h.vbuf), int32(len(h.vbuf)))
		if r < 0 {
			return nil, nil, false
		}
		klen, vlen := int(uint64(r)>>32), int(uint32(r))
		if klen <= len(h.kbuf) && vlen <= len(h.vbuf) {
			return append([]byte(nil), h.kbuf[:klen]...), append([]byte(nil), h.vbuf[:vlen]...), true
		}
		if klen > len(h.kbuf) {
			h.kbuf = make([]byte, klen)
		}
		if vlen > len(h.vbuf) {
			h.vbuf = make([]byte, vlen)
		}
	}
}

func (*wasmHost) IterClose(id int32) { sosIterClose(id) }

func (*wasmHost) BlockHeight() int64 { return sosBlockHeight() }

func (*wasmHost) BlockTimeMillis() int64 { return sosBlockTime() }

func (*wasmHost) ChainID() string {
	buf := make([]byte, 64)
	b, _ := readSized(&buf, func(dst []byte) int32 { return sosChainID(ptr(dst), int32(len(dst))) })
	return string(b)
}

func (*wasmHost) Self() (a hostabi.Address) {
	sosSelfAddress(unsafe.Pointer(&a))
	return a
}

func (*wasmHost) Sender() (a hostabi.Address) {
	sosSender(unsafe.Pointer(&a))
	return a
}

func (*wasmHost) Caller() (a hostabi.Address) {
	sosCaller(unsafe.Pointer(&a))
	return a
}

func (*wasmHost) Funds() []byte {
	buf := make([]byte, 128)
	b, _ := readSized(&buf, func(dst []byte) int32 { return sosFunds(ptr(dst), int32(len(dst))) })
	return b
}

func (*wasmHost) Balance(addr hostabi.Address, denom string) uint64 {
	return uint64(sosBalance(unsafe.Pointer(&addr), sptr(denom), int32(len(denom))))
}

func (*wasmHost) Transfer(to hostabi.Address, denom string, amount uint64) int32 {
	return sosTransfer(unsafe.Pointer(&to), sptr(denom), int32(len(denom)), int64(amount))
}

func (*wasmHost) EmitEvent(event []byte) { sosEmitEvent(ptr(event), int32(len(event))) }

func callResult() []byte {
	b := make([]byte, sosCallResultLen())
	if len(b) > 0 {
		sosCallResultRead(ptr(b))
	}
	return b
}

func (*wasmHost) Call(addr hostabi.Address, msg, funds []byte) ([]byte, bool) {
	rc := sosCall(unsafe.Pointer(&addr), ptr(msg), int32(len(msg)), ptr(funds), int32(len(funds)))
	return callResult(), rc == 0
}

func (*wasmHost) QueryContract(addr hostabi.Address, msg []byte) ([]byte, bool) {
	rc := sosQueryContract(unsafe.Pointer(&addr), ptr(msg), int32(len(msg)))
	return callResult(), rc == 0
}

func (*wasmHost) Sha256(data []byte) (d [32]byte) {
	sosSha256(ptr(data), int32(len(data)), unsafe.Pointer(&d))
	return d
}

func (*wasmHost) Blake3(data []byte) (d [32]byte) {
	sosBlake3(ptr(data), int32(len(data)), unsafe.Pointer(&d))
	return d
}

func (*wasmHost) MLDSAVerify(pub, msg, sig, ctx []byte) bool {
	return sosMLDSAVerify(ptr(pub), int32(len(pub)), ptr(msg), int32(len(msg)),
		ptr(sig), int32(len(sig)), ptr(ctx), int32(len(ctx))) == 1
}

func (*wasmHost) AddrToString(a hostabi.Address) string { return addrToString(Address(a)) }

func (*wasmHost) AddrFromString(s string) (hostabi.Address, bool) {
	a, ok := addrFromString(s)
	return hostabi.Address(a), ok
}

func (*wasmHost) DebugLog(msg []byte) { sosDebugLog(ptr(msg), int32(len(msg))) }

func addrToString(a Address) string {
	buf := make([]byte, 64)
	b, _ := readSized(&buf, func(dst []byte) int32 {
		return sosAddrToString(unsafe.Pointer(&a), ptr(dst), int32(len(dst)))
	})
	return string(b)
}

func addrFromString(s string) (Address, bool) {
	var a Address
	ok := sosAddrFromString(sptr(s), int32(len(s)), unsafe.Pointer(&a)) == 0
	return a, ok
}

// Main does nothing under GOOS=wasip1: a contract's main is never called
// there. Natively it serves `go run . schema`; see host_native.go.
func Main(Contract) {}
