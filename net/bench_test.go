package net

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
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
