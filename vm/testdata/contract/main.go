// Command contract is the VM's test contract: a Go wasip1 c-shared module
// that talks to the host ABI directly (no SDK) so that package vm can be
// tested on its own. Build it with ../build.sh.
//
// The message is a command word followed by space-separated arguments, e.g.
// "set k v", "incr", "loop". The result is set with set_result.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

func main() {}

//go:wasmimport sos input_len
func inputLen() int32

//go:wasmimport sos input_read
func inputRead(dst unsafe.Pointer)

//go:wasmimport sos set_result
func setResult(ptr unsafe.Pointer, n int32)

//go:wasmimport sos storage_get
func storageGet(kptr unsafe.Pointer, klen int32, vptr unsafe.Pointer, vcap int32) int32

//go:wasmimport sos storage_set
func storageSet(kptr unsafe.Pointer, klen int32, vptr unsafe.Pointer, vlen int32)

//go:wasmimport sos storage_delete
func storageDelete(kptr unsafe.Pointer, klen int32)

//go:wasmimport sos storage_iter_open
func storageIterOpen(sptr unsafe.Pointer, slen int32, eptr unsafe.Pointer, elen int32, reverse int32) int32

//go:wasmimport sos storage_iter_next
func storageIterNext(id int32, kptr unsafe.Pointer, kcap int32, vptr unsafe.Pointer, vcap int32) int64

//go:wasmimport sos storage_iter_close
func storageIterClose(id int32)

//go:wasmimport sos block_height
func blockHeight() int64

//go:wasmimport sos block_time
func blockTime() int64

//go:wasmimport sos chain_id
func chainID(dst unsafe.Pointer, n int32) int32

//go:wasmimport sos self_address
func selfAddress(dst unsafe.Pointer)

//go:wasmimport sos sender
func sender(dst unsafe.Pointer)

//go:wasmimport sos caller
func caller(dst unsafe.Pointer)

//go:wasmimport sos funds
func funds(dst unsafe.Pointer, n int32) int32

//go:wasmimport sos balance
func balance(aptr unsafe.Pointer, dptr unsafe.Pointer, dlen int32) int64

//go:wasmimport sos transfer
func transfer(aptr unsafe.Pointer, dptr unsafe.Pointer, dlen int32, amount int64) int32

//go:wasmimport sos emit_event
func emitEvent(ptr unsafe.Pointer, n int32)

//go:wasmimport sos call
func callContract(aptr, mptr unsafe.Pointer, mlen int32, fptr unsafe.Pointer, flen int32) int32

//go:wasmimport sos query_contract
func queryContract(aptr, mptr unsafe.Pointer, mlen int32) int32

//go:wasmimport sos call_result_len
func callResultLen() int32

//go:wasmimport sos call_result_read
func callResultRead(dst unsafe.Pointer)

//go:wasmimport sos sha256
func hostSHA256(ptr unsafe.Pointer, n int32, dst unsafe.Pointer)

//go:wasmimport sos addr_to_string
func addrToString(aptr, dst unsafe.Pointer, n int32) int32

//go:wasmimport sos addr_from_string
func addrFromString(ptr unsafe.Pointer, n int32, dst unsafe.Pointer) int32

//go:wasmimport sos debug_log
func debugLog(ptr unsafe.Pointer, n int32)

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func input() []byte {
	b := make([]byte, inputLen())
	if len(b) > 0 {
		inputRead(ptr(b))
	}
	return b
}

func result(s string) {
	b := []byte(s)
	setResult(ptr(b), int32(len(b)))
}

func get(k string) ([]byte, bool) {
	kb := []byte(k)
	buf := make([]byte, 16)
	for {
		n := storageGet(ptr(kb), int32(len(kb)), ptr(buf), int32(len(buf)))
		if n < 0 {
			return nil, false
		}
		if int(n) <= len(buf) {
			return buf[:n], true
		}
		buf = make([]byte, n)
	}
}

func set(k, v string) {
	kb, vb := []byte(k), []byte(v)
	storageSet(ptr(kb), int32(len(kb)), ptr(vb), int32(len(vb)))
}

// goGlobal lives only in the Go heap: a fresh instance state per call
// means it never exceeds 1 when read after an increment.
var goGlobal int

var sink []byte

func recurse(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	return recurse(n+1) + int(pad[3])
}

//go:wasmexport instantiate
func instantiate() int32 {
	set("count", "0")
	result("instantiated")
	return 0
}

//go:wasmexport migrate
func migrate() int32 {
	result("migrated " + string(input()))
	return 0
}

//go:wasmexport execute
func execute() int32 { return dispatch(false) }

//go:wasmexport query
func query() int32 { return dispatch(true) }

func dispatch(readOnly bool) int32 {
	args := strings.Fields(string(input()))
	if len(args) == 0 {
		result("empty message")
		return 1
	}
	num := func(i int) int {
		if i >= len(args) {
			return 0
		}
		n, _ := strconv.Atoi(args[i])
		return n
	}
	switch args[0] {
	case "incr":
		v, _ := get("count")
		n, _ := strconv.Atoi(string(v))
		s := strconv.Itoa(n + 1)
		set("count", s)
		result(s)
	case "count":
		v, _ := get("count")
		result(string(v))
	case "get":
		v, ok := get(args[1])
		if !ok {
			result("<absent>")
		} else {
			result(string(v))
		}
	case "set":
		set(args[1], args[2])
		result("ok")
	case "setbig": // setbig key n: a value of n bytes
		kb, vb := []byte(args[1]), make([]byte, num(2))
		storageSet(ptr(kb), int32(len(kb)), ptr(vb), int32(len(vb)))
		result("ok")
	case "del":
		kb := []byte(args[1])
		storageDelete(ptr(kb), int32(len(kb)))
		result("ok")
	case "iter": // iter start end reverse: "k=v," list; tiny buffers force retries
		sb, eb := []byte(args[1]), []byte(args[2])
		elen := int32(len(eb))
		if args[2] == "-" {
			elen = -1
		}
		id := storageIterOpen(ptr(sb), int32(len(sb)), ptr(eb), elen, int32(num(3)))
		kbuf, vbuf := make([]byte, 1), make([]byte, 1)
		var out strings.Builder
		for {
			r := storageIterNext(id, ptr(kbuf), int32(len(kbuf)), ptr(vbuf), int32(len(vbuf)))
			if r == -1 {
				break
			}
			kl, vl := int(r>>32), int(uint32(r))
			if kl > len(kbuf) || vl > len(vbuf) {
				kbuf, vbuf = make([]byte, max(kl, len(kbuf))), make([]byte, max(vl, len(vbuf)))
				continue
			}
			out.WriteString(string(kbuf[:kl]) + "=" + string(vbuf[:vl]) + ",")
		}
		storageIterClose(id)
		result(out.String())
	case "global":
		goGlobal++
		result(strconv.Itoa(goGlobal))
	case "loop":
		for {
			goGlobal++
		}
	case "recurse":
		result(strconv.Itoa(recurse(0)))
	case "grow": // allocate n MiB
		sink = make([]byte, num(1)<<20)
		for i := 0; i < len(sink); i += 4096 {
			sink[i] = 1
		}
		result(strconv.Itoa(len(sink)))
	case "panic":
		panic("boom: " + strings.Join(args[1:], " "))
	case "fail":
		result("handled error")
		return 1
	case "event": // event n: an event with an n-byte value
		ev := fmt.Sprintf(`{"type":"t","attrs":[{"key":"k","value":"%s"}]}`, strings.Repeat("x", num(1)))
		b := []byte(ev)
		emitEvent(ptr(b), int32(len(b)))
		result("ok")
	case "debug":
		msg := []byte("hello from debug_log")
		debugLog(ptr(msg), int32(len(msg)))
		fmt.Println("hello from stdout")
		fmt.Fprintln(os.Stderr, "hello from stderr")
		result("ok")
	case "sha": // host and guest sha256 of the argument must agree
		data := []byte(args[1])
		var h [32]byte
		hostSHA256(ptr(data), int32(len(data)), unsafe.Pointer(&h[0]))
		g := sha256.Sum256(data)
		if h != g {
			result("mismatch")
			return 1
		}
		result(hex.EncodeToString(h[:]))
	case "rand":
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			result(err.Error())
			return 1
		}
		result(hex.EncodeToString(b[:]))
	case "clock":
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		d := time.Since(t0)
		result(fmt.Sprintf("%d %d %v", t0.UnixMilli(), blockTime(), d >= time.Millisecond))
	case "env":
		var self, snd, cal [32]byte
		selfAddress(unsafe.Pointer(&self[0]))
		sender(unsafe.Pointer(&snd[0]))
		caller(unsafe.Pointer(&cal[0]))
		cid := make([]byte, 64)
		n := chainID(ptr(cid), int32(len(cid)))
		f := make([]byte, 256)
		fn := funds(ptr(f), int32(len(f)))
		s := make([]byte, 100)
		sn := addrToString(unsafe.Pointer(&self[0]), ptr(s), int32(len(s)))
		var back [32]byte
		bad := addrFromString(ptr(s), sn, unsafe.Pointer(&back[0]))
		result(fmt.Sprintf("%d %s %x %x %x %s %s %d %v", blockHeight(), cid[:n], self[:2], snd[:2], cal[:2],
			f[:fn], s[:sn], bad, back == self))
	case "bank": // bank denom amount: balance of self, then transfer to sender
		d := []byte(args[1])
		var self, snd [32]byte
		selfAddress(unsafe.Pointer(&self[0]))
		sender(unsafe.Pointer(&snd[0]))
		bal := balance(unsafe.Pointer(&self[0]), ptr(d), int32(len(d)))
		rc := transfer(unsafe.Pointer(&snd[0]), ptr(d), int32(len(d)), int64(num(2)))
		result(fmt.Sprintf("%d %d", bal, rc))
	case "call", "callq": // call msg...: call contract 0x07.. with the rest of the message
		var addr [32]byte
		addr[0] = 7
		m := []byte(strings.Join(args[1:], " "))
		var rc int32
		if args[0] == "call" {
			f := []byte(`[{"denom":"uTFLP","amount":"1"}]`)
			rc = callContract(unsafe.Pointer(&addr[0]), ptr(m), int32(len(m)), ptr(f), int32(len(f)))
		} else {
			rc = queryContract(unsafe.Pointer(&addr[0]), ptr(m), int32(len(m)))
		}
		r := make([]byte, callResultLen())
		if len(r) > 0 {
			callResultRead(ptr(r))
		}
		result(fmt.Sprintf("%d %s", rc, r))
	// Gas calibration workloads.
	case "shaloop":
		buf := make([]byte, 4096)
		var h [32]byte
		for i := 0; i < num(1); i++ {
			h = sha256.Sum256(buf)
			buf[0] = h[0]
		}
		result(hex.EncodeToString(h[:4]))
	case "json":
		doc := []byte(`{"a":[1,2,3,{"b":"hello","c":[true,false,null]}],"d":{"e":1.5e3,"f":"x\u00e9y"},"g":12345678901}`)
		total := 0
		for i := 0; i < num(1); i++ {
			var v map[string]any
			if err := json.Unmarshal(doc, &v); err != nil {
				result(err.Error())
				return 1
			}
			total += len(v)
		}
		result(strconv.Itoa(total))
	case "storage":
		var k [8]byte
		for i := 0; i < num(1); i++ {
			binary.BigEndian.PutUint64(k[:], uint64(i))
			storageSet(unsafe.Pointer(&k[0]), 8, unsafe.Pointer(&k[0]), 8)
			var v [8]byte
			storageGet(unsafe.Pointer(&k[0]), 8, unsafe.Pointer(&v[0]), 8)
		}
		result("ok")
	case "arith":
		x := uint64(1)
		for i := 0; i < num(1); i++ {
			x = x*6364136223846793005 + 1442695040888963407
			x ^= x >> 17
		}
		result(strconv.FormatUint(x, 10))
	default:
		result("unknown command " + args[0])
		return 1
	}
	return 0
}
