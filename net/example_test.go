package net_test

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
)

// Two nodes of one chain authenticate each other by their ML-DSA keys and
// exchange a consensus message.
func Example() {
	ctx := context.Background()
	start := func(seed byte) *sosnet.Transport {
		key, err := ledger.GenerateKey(rand.NewChaCha8([32]byte{seed}))
		if err != nil {
			panic(err)
		}
		t, err := sosnet.Listen(ctx, sosnet.Config{
			ListenAddr:  "127.0.0.1:0",
			Key:         key,
			ChainID:     "example",
			GenesisHash: [32]byte{1},
		})
		if err != nil {
			panic(err)
		}
		return t
	}
	a, b := start(1), start(2)
	defer a.Close()
	defer b.Close()

	got := make(chan string, 1)
	b.Handle(sosnet.KindConsensus, func(from sosnet.PeerID, msg []byte) {
		got <- fmt.Sprintf("%s from a: %v", msg, from == a.ID())
	})
	members := []sosnet.Member{
		{Key: a.Key(), Addr: a.Addr().String()},
		{Key: b.Key(), Addr: b.Addr().String()},
	}
	a.SetMembers(members)
	b.SetMembers(members)

	if err := a.Send(ctx, b.ID(), sosnet.KindConsensus, []byte("vote")); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: vote from a: true
}
