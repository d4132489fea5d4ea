// Command gocontract is the Go-compiled contract of the adversarial
// benchmark (package vm/adversarial): hostile shapes as the Go toolchain
// emits them. It talks to the host ABI directly. The message is a command
// word and arguments: "loop" (for { counter++ } until out of gas), "loopn
// N", "trap", "maps N", "json N", "sort N", "alloc N", "iface N".
package main

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"unsafe"
)

func main() {}

//go:wasmimport sos input_len
func inputLen() int32

//go:wasmimport sos input_read
func inputRead(dst unsafe.Pointer)

//go:wasmimport sos set_result
func setResult(ptr unsafe.Pointer, n int32)

var counter uint64

//go:wasmexport instantiate
func instantiate() int32 { return 0 }

//go:wasmexport query
func query() int32 { return 0 }

//go:wasmexport execute
func execute() int32 {
	b := make([]byte, inputLen())
	if len(b) > 0 {
		inputRead(unsafe.Pointer(&b[0]))
	}
	args := strings.Fields(string(b))
	n := 0
	if len(args) > 1 {
		n, _ = strconv.Atoi(args[1])
	}
	var out string
	switch args[0] {
	case "loop":
		for {
			counter++
		}
	case "loopn":
		for i := 0; i < n; i++ {
			counter++
		}
		out = strconv.FormatUint(counter, 10)
	case "trap":
		panic("adversarial trap")
	case "maps":
		m := map[int]int{}
		for i := 0; i < n; i++ {
			m[i*7919%n] += i
			if len(m) > 4096 {
				clear(m)
			}
		}
		out = strconv.Itoa(len(m))
	case "json":
		doc := []byte(`{"a":[1,2,3,{"b":"c","d":[true,false,null]}],"e":{"f":1.5,"g":"hhhhhhhhhhhhhhhh"},"i":[[],[{}],"j"]}`)
		var v any
		for i := 0; i < n; i++ {
			v = nil
			if err := json.Unmarshal(doc, &v); err != nil {
				panic(err)
			}
		}
		out = "ok"
	case "sort":
		xs := make([]uint32, 4096)
		for r := 0; r < n; r++ {
			x := uint32(r + 1)
			for i := range xs {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				xs[i] = x
			}
			sort.Sort(u32s(xs))
		}
		out = strconv.Itoa(int(xs[0]))
	case "alloc":
		var keep [][]byte
		for i := 0; i < n; i++ {
			keep = append(keep, make([]byte, 64+i%512))
			if len(keep) > 256 {
				keep = keep[:0]
			}
		}
		out = strconv.Itoa(len(keep))
	case "iface":
		var s shape = square{2}
		if n < 0 {
			s = circle{1}
		}
		t := 0.0
		for i := 0; i < n; i++ {
			t += s.area()
		}
		out = strconv.FormatFloat(t, 'g', -1, 64)
	case "valid":
		// encoding/json's scanner alone: a state function called through
		// a func value per byte, no allocation.
		doc := []byte(`{"a":[1,2,3,{"b":"c","d":[true,false,null]}],"e":{"f":1.5,"g":"hhhhhhhhhhhhhhhh"},"i":[[],[{}],"j"]}`)
		k := 0
		for i := 0; i < n; i++ {
			if json.Valid(doc) {
				k++
			}
		}
		out = strconv.Itoa(k)
	case "switch":
		// A data-dependent switch per byte of a pseudo-random buffer:
		// unpredictable branches as a parser's take them.
		buf := make([]byte, 4096)
		x := uint32(1)
		for i := range buf {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			buf[i] = byte(x)
		}
		t := 0
		for r := 0; r < n; r++ {
			for _, c := range buf {
				switch c & 7 {
				case 0:
					t += 3
				case 1:
					t ^= 5
				case 2:
					t -= 7
				case 3:
					t *= 3
				case 4:
					t >>= 1
				case 5:
					t |= 9
				case 6:
					t += int(c)
				default:
					t--
				}
			}
		}
		out = strconv.Itoa(t)
	case "calls":
		t := 0
		for i := 0; i < n; i++ {
			t = step(t, i)
		}
		out = strconv.Itoa(t)
	case "chase":
		// Pointer chasing through 4,096 heap nodes in random order (they
		// fit in the caches).
		nodes := make([]*node, 4096)
		for i := range nodes {
			nodes[i] = &node{v: i}
		}
		x := uint32(7)
		for i := len(nodes) - 1; i > 0; i-- {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			j := int(x % uint32(i+1))
			nodes[i], nodes[j] = nodes[j], nodes[i]
		}
		for i := range nodes {
			nodes[i].next = nodes[(i+1)%len(nodes)]
		}
		p, t := nodes[0], 0
		for i := 0; i < n; i++ {
			t += p.v
			p = p.next
		}
		out = strconv.Itoa(t)
	default:
		out = "unknown command"
	}
	r := []byte(out)
	if len(r) > 0 {
		setResult(unsafe.Pointer(&r[0]), int32(len(r)))
	}
	return 0
}

type node struct {
	v    int
	next *node
}

//go:noinline
func step(t, i int) int { return t*31 + i }

type u32s []uint32

func (s u32s) Len() int           { return len(s) }
func (s u32s) Less(i, j int) bool { return s[i] < s[j] }
func (s u32s) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }

type shape interface{ area() float64 }
type square struct{ s float64 }
type circle struct{ r float64 }

//go:noinline
func (q square) area() float64 { return q.s * q.s }

//go:noinline
func (c circle) area() float64 { return 3 * c.r * c.r }
