package blob

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/bao"
	"lukechampine.com/blake3/guts"
)

func TestMain(m *testing.M) {
	m.Run()
	if big.s != nil {
		big.s.Close()
		os.RemoveAll(big.dir)
	}
}

// big is a 1 GiB blob on disk shared by the proof benchmarks (built once
// per test binary run: it takes seconds).
var big struct {
	once sync.Once
	dir  string
	s    *Store
	id   ID
	err  error
}

const bigSize = 1 << 30

func bigBlob(b *testing.B) (*Store, ID) {
	big.once.Do(func() {
		big.dir, big.err = os.MkdirTemp("", "sos-blob-bench-")
		if big.err != nil {
			return
		}
		big.s, big.err = Open(big.dir, Options{})
		if big.err != nil {
			return
		}
		var seed [32]byte
		big.id, _, big.err = big.s.Put(context.Background(), io.LimitReader(rand.NewChaCha8(seed), bigSize))
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	return big.s, big.id
}

// storeFor opens a store in memory or in a temporary directory on disk.
func storeFor(b *testing.B, where string) *Store {
	if where == "mem" {
		return openMem(b, vfs.NewMem(), Options{})
	}
	s, err := Open(b.TempDir(), Options{})
	must(b, err)
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkPut stores a new 64 MiB blob per iteration: hash, outboard,
// write, fsync, rename ("mem": the same without a disk).
func BenchmarkPut(b *testing.B) {
	for _, where := range []string{"mem", "disk"} {
		b.Run(where, func(b *testing.B) {
			s := storeFor(b, where)
			data := content(64<<20, 1)
			b.SetBytes(int64(len(data)))
			var i uint64
			cpu := startCPU()
			defer cpu.report(b, len(data))
			for b.Loop() {
				i++
				binary.LittleEndian.PutUint64(data, i)
				id, _, err := s.Put(context.Background(), bytes.NewReader(data))
				must(b, err)
				b.StopTimer()
				must(b, s.Delete(id))
				b.StartTimer()
			}
		})
	}
}

// BenchmarkHashOnly is the hashing inside Put alone (BLAKE3 over 16 KiB
// groups with the outboard pairs), for comparison with blake3.Sum256.
func BenchmarkHashOnly(b *testing.B) {
	s := openMem(b, vfs.NewMem(), Options{})
	data := content(64<<20, 2)
	b.SetBytes(int64(len(data)))
	cpu := startCPU()
	defer cpu.report(b, len(data))
	for b.Loop() {
		if _, _, err := s.ingest(context.Background(), bytes.NewReader(data), nil, discard{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashRef is the yardstick for the two above in the same run:
// blake3.Sum256 and the bare SIMD compression of 16 KiB groups that
// groupNode uses (the most any verification here can reach on one core).
func BenchmarkHashRef(b *testing.B) {
	data := content(64<<20, 2)
	b.Run("sum256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		cpu := startCPU()
		defer cpu.report(b, len(data))
		for b.Loop() {
			blake3.Sum256(data)
		}
	})
	b.Run("compress16k", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		cpu := startCPU()
		defer cpu.report(b, len(data))
		for b.Loop() {
			for i := 0; i < len(data); i += GroupSize {
				guts.CompressBuffer((*[GroupSize]byte)(data[i:]), GroupSize, &guts.IV, uint64(i/SegmentSize), 0)
			}
		}
	})
}

// BenchmarkOutboardGroup is why the outboard stops at 16 KiB groups: the
// Bao library's outboard encoder at group 0 (a pair per 1 KiB chunk, 6.25 %
// of the size) hashes chunk by chunk, at group 4 (0.4 %) 16 chunks per SIMD
// call. Proofs keep 1 KiB segments either way: the pairs below a group are
// recomputed from its 16 KiB when a proof is made.
func BenchmarkOutboardGroup(b *testing.B) {
	data := content(16<<20, 3)
	for _, g := range []int{0, groupLog} {
		b.Run(fmt.Sprintf("group%d", g), func(b *testing.B) {
			w := &bufferAt{make([]byte, bao.EncodedSize(len(data), g, true))}
			b.SetBytes(int64(len(data)))
			cpu := startCPU()
			defer cpu.report(b, len(data))
			for b.Loop() {
				if _, err := bao.Encode(w, bytes.NewReader(data), int64(len(data)), g, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type bufferAt struct{ b []byte }

func (w *bufferAt) WriteAt(p []byte, off int64) (int, error) { return copy(w.b[off:], p), nil }

type discard struct{}

func (discard) write([]byte) error { return nil }

// BenchmarkReadSlice reads 1 MiB slices of a 64 MiB blob on disk (page
// cache warm), round robin, into one reused buffer (AppendSlice).
func BenchmarkReadSlice(b *testing.B) {
	s := storeFor(b, "disk")
	id := put(b, s, content(64<<20, 3))
	b.SetBytes(ChunkSize)
	var k uint64
	var buf []byte
	var err error
	cpu := startCPU()
	for b.Loop() {
		if buf, err = s.AppendSlice(buf[:0], id, k%64); err != nil {
			b.Fatal(err)
		}
		k++
	}
	cpu.report(b, ChunkSize)
}

// cpuMeter reports a benchmark's throughput per CPU-second of the process
// (all threads, GC included): on a machine shared with other jobs this is
// what one core does, where MB/s is what the core was given.
type cpuMeter time.Duration

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter(cpuNow()) }

// reportPerOp reports CPU time per operation.
func (c cpuMeter) reportPerOp(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-time.Duration(c))/float64(b.N), "cpu-ns/op")
}

func (c cpuMeter) report(b *testing.B, bytesPerOp int) {
	used := cpuNow() - time.Duration(c)
	if used > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/used.Seconds()/1e6, "MB/cpu-s")
	}
}

// BenchmarkVerifySlice verifies 1 MiB slices against the id (no IO).
func BenchmarkVerifySlice(b *testing.B) {
	s := openMem(b, vfs.NewMem(), Options{})
	data := content(64<<20, 4)
	id := put(b, s, data)
	encs := make([][]byte, 64)
	for k := range encs {
		encs[k] = mustSlice(b, s, id, uint64(k))
	}
	b.SetBytes(ChunkSize)
	var k int
	cpu := startCPU()
	defer cpu.report(b, ChunkSize)
	for b.Loop() {
		if _, err := VerifySlice(id, uint64(len(data)), uint64(k%64), encs[k%64]); err != nil {
			b.Fatal(err)
		}
		k++
	}
}

// BenchmarkWriteSlice receives 1 MiB slices into a partial blob on disk:
// verify, write data and outboard, persist the bitmap every 64 chunks.
func BenchmarkWriteSlice(b *testing.B) {
	src := openMem(b, vfs.NewMem(), Options{})
	data := content(64<<20, 5)
	size := uint64(len(data))
	id := put(b, src, data)
	encs := make([][]byte, 64)
	for k := range encs {
		encs[k] = mustSlice(b, src, id, uint64(k))
	}
	dst := storeFor(b, "disk")
	p, err := dst.Begin(id, size)
	must(b, err)
	b.SetBytes(ChunkSize)
	var k int
	cpu := startCPU()
	defer cpu.report(b, ChunkSize)
	for b.Loop() {
		if k == 64 {
			b.StopTimer()
			must(b, p.Abort())
			p, err = dst.Begin(id, size)
			must(b, err)
			k = 0
			b.StartTimer()
		}
		if err := p.WriteSlice(uint64(k), encs[k]); err != nil {
			b.Fatal(err)
		}
		k++
	}
	b.StopTimer()
	must(b, p.Abort())
}

// BenchmarkProve1GiB produces storage proofs of random segments of a 1 GiB
// blob on disk (page cache warm: it was just written).
func BenchmarkProve1GiB(b *testing.B) {
	s, id := bigBlob(b)
	rng := rand.New(rand.NewPCG(1, 1))
	var n int
	cpu := startCPU()
	for b.Loop() {
		p, err := s.Prove(id, rng.Uint64N(SegmentCount(bigSize)))
		if err != nil {
			b.Fatal(err)
		}
		n = len(p)
	}
	cpu.reportPerOp(b)
	b.ReportMetric(float64(n), "proof-bytes")
}

// BenchmarkVerifyProof1GiB verifies proofs of random segments of a 1 GiB
// blob.
func BenchmarkVerifyProof1GiB(b *testing.B) {
	s, id := bigBlob(b)
	rng := rand.New(rand.NewPCG(2, 2))
	type challenge struct {
		seg uint64
		p   Proof
	}
	cs := make([]challenge, 256)
	for i := range cs {
		seg := rng.Uint64N(SegmentCount(bigSize))
		p, err := s.Prove(id, seg)
		must(b, err)
		cs[i] = challenge{seg, p}
	}
	var i int
	cpu := startCPU()
	for b.Loop() {
		c := cs[i%len(cs)]
		if err := VerifyProof(id, bigSize, c.seg, c.p); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu.reportPerOp(b)
	b.ReportMetric(float64(len(cs[0].p)), "proof-bytes")
}
