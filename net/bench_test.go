package net

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sos-kernel/sos/blob"
)

// BenchmarkSend1MiB measures bulk throughput (snapshot transfer) on loopback:
// 1 MiB messages on KindSync, timed until the receiver has them all.
func BenchmarkSend1MiB(b *testing.B) {
	a, c := newNode(b, testKey(b, 1), nil), newNode(b, testKey(b, 2), nil)
	link(b, a, c)
	var got atomic.Int64
	done := make(chan struct{}, 1)
	var want atomic.Int64
	c.Handle(KindSync, func(_ PeerID, msg []byte) {
		if got.Add(1) == want.Load() {
			done <- struct{}{}
		}
	})
	msg := make([]byte, 1<<20)
	ctx := context.Background()
	if err := a.Send(ctx, c.ID(), KindSync, msg); err != nil { // connect first
		b.Fatal(err)
	}
	waitFor(b, 5*time.Second, func() bool { return got.Load() == 1 }, "warm-up message")
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	got.Store(0)
	want.Store(int64(b.N))
	for range b.N {
		if err := a.Send(ctx, c.ID(), KindSync, msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		b.Fatalf("received %d of %d", got.Load(), b.N)
	}
}

// BenchmarkRoundTrip64B measures small-message latency: a 64-byte message on
// KindConsensus and its echo; one op is one round trip.
func BenchmarkRoundTrip64B(b *testing.B) {
	a, c := newNode(b, testKey(b, 1), nil), newNode(b, testKey(b, 2), nil)
	link(b, a, c)
	ctx := context.Background()
	c.Handle(KindConsensus, func(from PeerID, msg []byte) {
		c.Send(ctx, from, KindConsensus, msg)
	})
	back := make(chan struct{}, 1)
	a.Handle(KindConsensus, func(PeerID, []byte) { back <- struct{}{} })
	msg := make([]byte, 64)
	roundTrip := func() {
		if err := a.Send(ctx, c.ID(), KindConsensus, msg); err != nil {
			b.Fatal(err)
		}
		select {
		case <-back:
		case <-time.After(5 * time.Second):
			b.Fatal("no echo within 5s")
		}
	}
	roundTrip() // connect
	b.ResetTimer()
	for range b.N {
		roundTrip()
	}
}

// BenchmarkSend256B measures the message rate of raft-sized messages.
func BenchmarkSend256B(b *testing.B) {
	a, c := newNode(b, testKey(b, 1), nil), newNode(b, testKey(b, 2), nil)
	link(b, a, c)
	var got, want atomic.Int64
	done := make(chan struct{}, 1)
	c.Handle(KindConsensus, func(PeerID, []byte) {
		if got.Add(1) == want.Load() {
			done <- struct{}{}
		}
	})
	msg := make([]byte, 256)
	ctx := context.Background()
	want.Store(1)
	if err := a.Send(ctx, c.ID(), KindConsensus, msg); err != nil {
		b.Fatal(err)
	}
	<-done
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	got.Store(0)
	want.Store(int64(b.N))
	for range b.N {
		if err := a.Send(ctx, c.ID(), KindConsensus, msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		b.Fatalf("received %d of %d", got.Load(), b.N)
	}
}

// BenchmarkDataPlane measures a blob fetch between two nodes on loopback —
// request, 1 MiB slices, verification against the id and writes into the
// fetcher's store — against raw QUIC sends of the same bytes on the same
// connection, in one run: 1 MiB messages on KindSync received by a Handle
// handler (as BenchmarkSend1MiB: "send") and by a HandleBorrowed handler
// that reuses its buffer ("sendb", the cheaper baseline). One op moves 64
// MiB in each of the three ways; their order rotates between ops. It
// reports wall MB/s and MB per CPU-second of the process (both nodes, GC
// included) for each, and the ratio of the fetch to each baseline, by wall
// time and by CPU time. store=tmpfs keeps both stores in /dev/shm (the
// network and the verification, no disk); store=disk writes the fetched
// blob to disk (fsync every 64 chunks and at commit) from a source whose
// blob is in the page cache.
func BenchmarkDataPlane(b *testing.B) {
	b.Run("store=tmpfs", func(b *testing.B) {
		if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
			b.Skip("no /dev/shm")
		}
		benchDataPlane(b, "/dev/shm")
	})
	b.Run("store=disk", func(b *testing.B) { benchDataPlane(b, "") })
}

// benchDataPlane runs BenchmarkDataPlane with stores under dir (the
// default temporary directory when empty).
func benchDataPlane(b *testing.B, dir string) {
	a, c := newNode(b, testKey(b, 1), nil), newNode(b, testKey(b, 2), nil)
	link(b, a, c)
	const size = 64 << 20
	// open makes a store in a new directory; drop closes and removes it.
	open := func() (s *blob.Store, drop func()) {
		d, err := os.MkdirTemp(dir, "sos-bench-")
		if err != nil {
			b.Fatal(err)
		}
		s, err = blob.Open(d, blob.Options{})
		if err != nil {
			b.Fatal(err)
		}
		drop = func() {
			s.Close()
			os.RemoveAll(d)
		}
		b.Cleanup(drop)
		return s, drop
	}
	src, _ := open()
	id := putBlob(b, src, blobContent(size, 9))
	serve(a, src, nil)

	var got, want atomic.Int64
	done := make(chan struct{}, 1)
	received := func(PeerID, []byte) {
		if got.Add(1) == want.Load() {
			done <- struct{}{}
		}
	}
	msg := make([]byte, 1<<20)
	ctx := context.Background()
	send := func(borrow bool) func() {
		return func() {
			if borrow {
				c.HandleBorrowed(KindSync, received)
			} else {
				c.Handle(KindSync, received)
			}
			got.Store(0)
			want.Store(size / int64(len(msg)))
			for range size / len(msg) {
				if err := a.Send(ctx, c.ID(), KindSync, msg); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				b.Fatalf("received %d of %d", got.Load(), want.Load())
			}
		}
	}
	var dst *blob.Store
	fetch := func() {
		st, err := c.FetchBlob(ctx, id, size, []PeerID{a.ID()}, dst, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if st.Chunks != size/blob.ChunkSize {
			b.Fatalf("fetched %d chunks", st.Chunks)
		}
	}
	type phase struct {
		run       func()
		wall, cpu time.Duration
	}
	phases := []*phase{{run: send(false)}, {run: send(true)}, {run: fetch}}
	warm, drop := open() // connect, warm up
	dst = warm
	for _, p := range phases {
		p.run()
	}
	drop()

	b.SetBytes(size * int64(len(phases)))
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		var drop func()
		dst, drop = open()
		b.StartTimer()
		for j := range phases {
			p := phases[(i+j)%len(phases)]
			c0, t0 := cpuNow(), time.Now()
			p.run()
			p.wall += time.Since(t0)
			p.cpu += cpuNow() - c0
		}
		b.StopTimer()
		drop()
		b.StartTimer()
	}
	mb := float64(size) * float64(b.N) / 1e6
	for _, p := range []struct {
		name string
		*phase
	}{{"send", phases[0]}, {"sendb", phases[1]}, {"blob", phases[2]}} {
		b.ReportMetric(mb/p.wall.Seconds(), p.name+"-MB/s")
		b.ReportMetric(mb/p.cpu.Seconds(), p.name+"-MB/cpu-s")
	}
	f := phases[2]
	b.ReportMetric(phases[0].wall.Seconds()/f.wall.Seconds(), "blob/send-wall")
	b.ReportMetric(phases[0].cpu.Seconds()/f.cpu.Seconds(), "blob/send-cpu")
	b.ReportMetric(phases[1].wall.Seconds()/f.wall.Seconds(), "blob/sendb-wall")
	b.ReportMetric(phases[1].cpu.Seconds()/f.cpu.Seconds(), "blob/sendb-cpu")
}

// cpuNow is the CPU time of the process (all threads, user and system).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
