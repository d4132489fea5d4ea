package kernel

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// Hand-written WASI commands (no toolchain needed), for the jobs run in
// the real Jobs VM by the node tests and benchmarks.

func uleb(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

func wasmName(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func wasmSection(id byte, items ...[]byte) []byte {
	body := uleb(uint32(len(items)))
	for _, it := range items {
		body = append(body, it...)
	}
	return append(append([]byte{id}, uleb(uint32(len(body)))...), body...)
}

// wasiCommand is a module importing fd_write (func 0) and proc_exit
// (func 1) whose _start (func 2) runs code; memory (one page) holds at 0
// an iovec of the 3 bytes at 16: "ok\n".
func wasiCommand(code ...byte) []byte {
	const i32 = 0x7f
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, wasmSection(1,
		[]byte{0x60, 4, i32, i32, i32, i32, 1, i32}, // fd_write
		[]byte{0x60, 1, i32, 0},                     // proc_exit
		[]byte{0x60, 0, 0},                          // _start
	)...)
	m = append(m, wasmSection(2,
		slices.Concat(wasmName("wasi_snapshot_preview1"), wasmName("fd_write"), []byte{0, 0}),
		slices.Concat(wasmName("wasi_snapshot_preview1"), wasmName("proc_exit"), []byte{0, 1}),
	)...)
	m = append(m, wasmSection(3, []byte{2})...)
	m = append(m, wasmSection(5, []byte{0, 1})...)
	m = append(m, wasmSection(7, slices.Concat(wasmName("memory"), []byte{2, 0}), slices.Concat(wasmName("_start"), []byte{0, 2}))...)
	body := append([]byte{0}, append(code, 0x0b)...)
	m = append(m, wasmSection(10, append(uleb(uint32(len(body))), body...))...)
	m = append(m, wasmSection(11,
		[]byte{0, 0x41, 0, 0x0b, 8, 16, 0, 0, 0, 3, 0, 0, 0},
		[]byte{0, 0x41, 16, 0x0b, 3, 'o', 'k', '\n'},
	)...)
	return m
}

// Bodies of _start for wasiCommand.
var (
	// writeOK: fd_write(1, iovec at 0, 1, nwritten at 8); drop the errno.
	writeOK = []byte{0x41, 1, 0x41, 0, 0x41, 1, 0x41, 8, 0x10, 0, 0x1a}
	// trivialJob prints "ok" and returns from _start (exit 0).
	trivialJob = wasiCommand(writeOK...)
)

// exitJob prints "ok" and exits with code (0..63).
func exitJob(code byte) []byte {
	return wasiCommand(append(slices.Clone(writeOK), 0x41, code, 0x10, 1)...)
}

// BenchmarkDevnetTrivialJob is the devnet figure of issue 12: three nodes
// in this process on loopback QUIC, each with the default config (as `sos
// devnet` writes it), jobs run in the nodes' own Jobs VMs. The consumer's
// key is in node 0's keyring, the offer names node 1's key. A trivial job
// (a hand-written WASI command printing "ok") goes through the whole path:
// job_submit sent to node 0 → committed → node 1 runs it and sends
// job_result → committed → node 0 re-executes it (job_verify = all) and
// marks it verified.
//
// Latency: one job at a time, from handing the signed job_submit to node
// 0's API until node 0 has verified the committed result (p50-ms,
// p99-ms over latencyJobs jobs). Throughput: burstJobs job_submits sent at
// once (batches of 100), timed until node 0 has verified every result
// (jobs/s). cpu-ms/job is the process CPU (all three nodes and the
// client) per job of the burst, and jobs/cpu-s its inverse: what the
// three nodes and the client do per second of one core, a figure that
// does not depend on how many cores other processes leave to this one.
func BenchmarkDevnetTrivialJob(b *testing.B) {
	const latencyJobs, burstJobs = 100, 1000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		jc := newJobClusterWith(b, 1000, jobClusterOptions{realVM: true, config: func(c *Config) { c.BlockInterval = DefaultConfig().BlockInterval }})
		jc.openLease()
		mod := jc.upload(jobClusterConsumer, trivialJob)
		tb, err := txbuild.New(jc.ctx, jc.clients[jobClusterConsumer])
		if err != nil {
			b.Fatal(err)
		}
		acc, err := jc.clients[jobClusterConsumer].Account(jc.ctx, jc.cons.Address().String(), false)
		if err != nil {
			b.Fatal(err)
		}
		nonce := acc.Nonce
		p := &ledger.JobSubmit{LeaseID: jc.lease, Module: mod, GasLimit: 1_000_000, MemoryLimit: 1 << 20, OutputLimit: 1 << 10}
		gas, err := tb.Estimate(jc.ctx, jc.cons, p, nonce, false, "")
		if err != nil {
			b.Fatal(err)
		}
		sign := func() []byte {
			raw, err := tb.Sign(jc.cons, p, nonce, false, gas, txbuild.DefaultGasPrice, "")
			if err != nil {
				b.Fatal(err)
			}
			nonce++
			return raw
		}
		// Job ids are sequence numbers and only cons submits: the next
		// job is the one after the last.
		var next uint64 = 1
		w := newVerifiedWatch(jc)
		// A first job, untimed: the nodes compile the module.
		w.expect(next)
		if _, err := jc.clients[jobClusterConsumer].SubmitTx(jc.ctx, sign(), false); err != nil {
			b.Fatal(err)
		}
		w.wait(b, next)
		next++

		b.StartTimer()
		lat := make([]time.Duration, 0, latencyJobs)
		for range latencyJobs {
			raw := sign()
			w.expect(next)
			t0 := time.Now()
			if _, err := jc.clients[jobClusterConsumer].SubmitTx(jc.ctx, raw, false); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, w.wait(b, next).Sub(t0))
			next++
		}
		raws := make([][]byte, burstJobs)
		for k := range raws {
			raws[k] = sign()
		}
		first := next
		for k := range burstJobs {
			w.expect(first + uint64(k))
		}
		cpu0, t0 := processCPU(), time.Now()
		for k := 0; k < burstJobs; k += 100 {
			res, err := jc.clients[jobClusterConsumer].SubmitBatch(jc.ctx, raws[k:min(k+100, burstJobs)])
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Error != "" {
					b.Fatalf("job_submit refused: %s", r.Error)
				}
			}
		}
		var last time.Time
		for k := range burstJobs {
			if at := w.wait(b, first+uint64(k)); at.After(last) {
				last = at
			}
		}
		elapsed, cpu := last.Sub(t0), processCPU()-cpu0
		b.StopTimer()
		w.stop()
		for _, id := range []uint64{first, first + burstJobs - 1} {
			if j, err := jc.clients[jobClusterConsumer].Job(jc.ctx, id); err != nil || j.Status != "done" || j.ExitCode == nil || *j.ExitCode != 0 {
				b.Fatalf("job %d: %+v %v", id, j, err)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(burstJobs/elapsed.Seconds(), "jobs/s")
		b.ReportMetric(float64(cpu.Microseconds())/1000/burstJobs, "cpu-ms/job")
		b.ReportMetric(burstJobs/cpu.Seconds(), "jobs/cpu-s")
		for k := range jc.nodes {
			jc.stop(k)
		}
	}
}

// verifiedWatch records when node 0 (the consumer's) has verified the
// results of the jobs it is told to expect, polling its job registry.
type verifiedWatch struct {
	mu      sync.Mutex
	at      map[uint64]chan time.Time
	pending map[uint64]bool
	done    chan struct{}
	jc      *jobCluster
}

func newVerifiedWatch(jc *jobCluster) *verifiedWatch {
	w := &verifiedWatch{at: map[uint64]chan time.Time{}, pending: map[uint64]bool{}, done: make(chan struct{}), jc: jc}
	reg := jc.nodes[jobClusterConsumer].Jobs()
	go func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-jc.ctx.Done():
				return
			case now := <-t.C:
				w.mu.Lock()
				for id := range w.pending {
					if v := reg.Verified(id); v != nil {
						if !*v {
							jc.t.Errorf("job %d: the consumer's node did not reproduce the result", id)
						}
						w.at[id] <- now
						delete(w.pending, id)
					}
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *verifiedWatch) expect(id uint64) {
	w.mu.Lock()
	w.at[id], w.pending[id] = make(chan time.Time, 1), true
	w.mu.Unlock()
}

// wait returns when job id was seen verified.
func (w *verifiedWatch) wait(tb testing.TB, id uint64) time.Time {
	tb.Helper()
	w.mu.Lock()
	c := w.at[id]
	w.mu.Unlock()
	if c == nil {
		tb.Fatalf("job %d is not expected", id)
	}
	select {
	case at := <-c:
		return at
	case <-w.jc.ctx.Done():
		tb.Fatalf("job %d never verified", id)
		return time.Time{}
	}
}

func (w *verifiedWatch) stop() { close(w.done) }

// BenchmarkJobLoopPass is the cost of one pass of the provider's job loop
// (after each block and each finished task) with a queue of pending jobs:
// it must not grow with the queue (the pass reads only the records of
// the jobs it can start). Node 1 runs the jobs, one at a time; the first
// holds its slot, so all the others stay pending.
func BenchmarkJobLoopPass(b *testing.B) {
	for _, pending := range []int{10, 1000} {
		b.Run(fmt.Sprintf("pending=%d", pending), func(b *testing.B) {
			jc := newJobClusterWith(b, 100_000, jobClusterOptions{config: func(c *Config) { c.JobConcurrency = 1 }})
			jc.openLease()
			in := jc.upload(jobClusterConsumer, []byte("input"))
			p := &ledger.JobSubmit{LeaseID: jc.lease, Module: jc.upload(jobClusterConsumer, testModule), Inputs: []ledger.JobFile{{Name: "in", ID: in.ID, Size: in.Size}},
				Args: []string{"hold"}, GasLimit: 1_000_000, MemoryLimit: 1 << 20, OutputLimit: 1 << 10}
			c := jc.clients[jobClusterConsumer]
			tb, err := txbuild.New(jc.ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			acc, err := c.Account(jc.ctx, jc.cons.Address().String(), false)
			if err != nil {
				b.Fatal(err)
			}
			gas, err := tb.Estimate(jc.ctx, jc.cons, p, acc.Nonce, false, "")
			if err != nil {
				b.Fatal(err)
			}
			raws := make([][]byte, pending+1)
			for k := range raws {
				if raws[k], err = tb.Sign(jc.cons, p, acc.Nonce+uint64(k), false, gas, txbuild.DefaultGasPrice, ""); err != nil {
					b.Fatal(err)
				}
			}
			for k := 0; k < len(raws); k += 100 {
				if _, err := c.SubmitBatch(jc.ctx, raws[k:min(k+100, len(raws))]); err != nil {
					b.Fatal(err)
				}
			}
			n := jc.nodes[jobClusterProvider]
			jc.wait("every job pending on the provider", func() bool {
				ids, err := n.chain.market.PendingJobIDs(ledger.NewState(n.store), jc.keys[jobClusterProvider].Address(), 0)
				return err == nil && len(ids) == pending+1 && n.Jobs().Running(ids[0])
			})
			b.ResetTimer()
			for b.Loop() {
				n.jobsvc.scan(jc.ctx)
			}
			b.StopTimer()
			jc.release(jobClusterProvider)
		})
	}
}
