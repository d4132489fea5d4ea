package kernel

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
)

// syncPeer is one side of a state transfer over the real QUIC transport.
type syncPeer struct {
	key   *ledger.PrivateKey
	t     *sosnet.Transport
	store *ledger.Store
	ss    *stateSyncer
}

// newSyncPeers links two QUIC transports on loopback; the first holds a
// store with n state records (about 170 bytes each) at height 1.
func newSyncPeers(b *testing.B, records int) (src, dst *syncPeer) {
	b.Helper()
	codec := ledger.NewCodec()
	mk := func(seed int) *syncPeer {
		key := seededKey(b, seed)
		t, err := sosnet.Listen(context.Background(), sosnet.Config{ListenAddr: "127.0.0.1:0", Key: key, ChainID: "sync-bench", GenesisHash: [32]byte{9}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { t.Close() })
		return &syncPeer{key: key, t: t}
	}
	src, dst = mk(1), mk(2)
	for _, p := range []*syncPeer{src, dst} {
		if err := p.t.SetMembers([]sosnet.Member{{Key: src.key.Public(), Addr: src.t.Addr().String()}, {Key: dst.key.Public(), Addr: dst.t.Addr().String()}}); err != nil {
			b.Fatal(err)
		}
	}
	var err error
	if src.store, err = ledger.Open(b.TempDir(), ledger.StoreOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.store.Close() })
	commit := func(h uint64, fill func(*ledger.State)) {
		st := ledger.NewState(src.store)
		fill(st)
		p, err := src.store.Prepare(st)
		if err != nil {
			b.Fatal(err)
		}
		head := src.store.Head()
		blk := &ledger.Block{Header: ledger.Header{Version: ledger.BlockVersion, ChainID: "sync-bench", Height: h, PrevHash: head.BlockHash,
			TxRoot: ledger.MerkleRoot(nil), ReceiptRoot: ledger.MerkleRoot(nil), StateRoot: p.Root()}}
		if err := codec.SignBlock(blk, src.key); err != nil {
			b.Fatal(err)
		}
		if err := src.store.Commit(blk, nil, p); err != nil {
			b.Fatal(err)
		}
	}
	commit(0, func(st *ledger.State) { st.Set([]byte("genesis"), []byte{1}) })
	commit(1, func(st *ledger.State) {
		for i := range records {
			st.Set(fmt.Appendf(nil, "\x01account/%032d", i), fmt.Appendf(nil, "%0128d", i))
		}
	})
	srcPub := src.key.Public()
	for _, p := range []*syncPeer{src, dst} {
		p.ss = &stateSyncer{ctx: context.Background(), codec: codec, net: quicNet{p.t}, log: slog.New(slog.DiscardHandler),
			checkBlock: func(raw []byte) (*ledger.Block, error) {
				blk, err := codec.DecodeBlock(raw)
				if err != nil {
					return nil, err
				}
				return blk, codec.VerifyBlockSignature(blk, srcPub)
			}}
		ss := p.ss
		p.t.Handle(sosnet.KindSync, func(from sosnet.PeerID, msg []byte) { ss.handle(string(from), msg) })
	}
	src.ss.store = src.store
	return src, dst
}

// BenchmarkStateSync200k: a node installs a 200,000-record state (≈34 MB)
// from a peer over QUIC on loopback: export from a Pebble snapshot,
// transfer, SMT rebuild and root check, one synced batch. MB/s is state
// bytes per second, end to end.
func BenchmarkStateSync200k(b *testing.B) {
	src, dst := newSyncPeers(b, 200_000)
	var bytes int64
	_, _, _ = src.store.ExportState(stateChunkBytes, func(c []byte) error { bytes += int64(len(c)); return nil })
	b.SetBytes(bytes)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		store, err := ledger.Open(b.TempDir(), ledger.StoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		dst.ss.store = store
		b.StartTimer()
		blk, err := dst.ss.fetch(string(src.t.ID()))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if store.Head().StateRoot != blk.Header.StateRoot || store.Head().Height != 1 {
			b.Fatal("imported state does not match")
		}
		store.Close()
		b.StartTimer()
	}
}
