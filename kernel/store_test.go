package kernel

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/sos-kernel/sos/ledger"
)

func TestSecondOpenOfSameHomeIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := ledger.Open(dir, ledger.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := ledger.Open(dir, ledger.StoreOptions{}); !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// TestDiskFullDuringCommit injects write errors into the filesystem under
// Pebble while a block commits: the commit fails with an error, and after
// reopening, the store is at the previous block with its state intact.
func TestDiskFullDuringCommit(t *testing.T) {
	mem := vfs.NewMem()
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	fs := errorfs.Wrap(mem, toggle)
	src := newTestChain(t, 2) // only for keys and genesis
	g, _ := ledger.ParseGenesis(src.doc)
	open := func(fs vfs.FS) (*ledger.Store, *Chain) {
		st, err := ledger.Open("data", ledger.StoreOptions{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		c := NewChain(st, g, nil)
		if err := c.InitGenesis(src.doc); err != nil {
			t.Fatal(err)
		}
		return st, c
	}
	store, chain := open(fs)
	tn := &testNet{chain: chain, store: store, doc: src.doc, nodeKey: src.nodeKey, users: src.users, codec: store.Codec(), nonces: map[ledger.Address]uint64{}}
	a, b := tn.users[0], tn.users[1]
	tn.block(t, tn.tx(t, a, transfer(b, 7), 200_000))
	good := store.Head()

	bb, err := chain.BuildBlock(context.Background(), []*PendingTx{tn.tx(t, a, transfer(b, 9), 200_000)}, good.Time+1000, tn.nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	toggle.On()
	if err := chain.Commit(bb); err == nil {
		t.Fatal("commit succeeded on a full disk")
	}
	if store.Head() != good {
		t.Fatal("head moved although the commit failed")
	}
	toggle.Off()
	_ = closeQuietly(store)

	store2, chain2 := open(mem)
	defer store2.Close()
	if store2.Head() != good {
		t.Fatalf("after reopen head %+v, want %+v", store2.Head(), good)
	}
	tn2 := &testNet{chain: chain2, store: store2, codec: store2.Codec(), nodeKey: tn.nodeKey, nonces: map[ledger.Address]uint64{a.Address(): 1}}
	if got := tn2.balance(t, b.Address(), "uTFLP"); got != 1_000_000_000_000+7 {
		t.Fatalf("balance after recovery %d", got)
	}
	// The chain goes on.
	tn2.block(t, tn2.tx(t, a, transfer(b, 9), 200_000))
	if store2.Head().Height != good.Height+1 {
		t.Fatal("no progress after recovery")
	}
}

// closeQuietly closes a store whose filesystem failed; Pebble may report
// the earlier error again.
func closeQuietly(s *ledger.Store) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("close panicked")
		}
	}()
	return s.Close()
}

func TestRestartKeepsStateRootAndProofs(t *testing.T) {
	tn := newTestChain(t, 3)
	dir := t.TempDir()
	tn = openTestChain(t, dir, tn.doc, tn.users)
	for i := 0; i < 5; i++ {
		tn.block(t, tn.tx(t, tn.users[i%3], transfer(tn.users[(i+1)%3], uint64(i+1)), 200_000))
	}
	head := tn.store.Head()
	sp, err := tn.store.Prove(ledger.AccountKey(tn.users[1].Address()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Verify(head.StateRoot); err != nil {
		t.Fatalf("proof: %v", err)
	}
	absent, _ := tn.store.Prove(ledger.AccountKey(seededKey(t, 4242).Address()))
	if absent.Value != nil || absent.Verify(head.StateRoot) != nil {
		t.Fatal("absence proof")
	}
	sp.Value = append([]byte(nil), sp.Value...)
	sp.Value[len(sp.Value)-1] ^= 1
	if sp.Verify(head.StateRoot) == nil {
		t.Fatal("proof verified a tampered value")
	}
	if err := tn.store.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	re := openTestChain(t, dir, tn.doc, tn.users)
	if re.store.Head() != head {
		t.Fatalf("head after restart %+v, want %+v", re.store.Head(), head)
	}
	t.Logf("reopen took %s", time.Since(start))
	b5, err := re.store.Block(head.Height)
	if err != nil || b5.Header.StateRoot != head.StateRoot {
		t.Fatalf("block %d: %v", head.Height, err)
	}
}
