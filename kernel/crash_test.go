package kernel

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/ledger/smt"
)

// TestMain doubles as the crash child: with SOS_CRASH_CHILD set, the test
// binary commits blocks into that directory until it is killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SOS_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	t := &testing.T{}
	doc, err := os.ReadFile(filepath.Join(dir, "genesis.json"))
	if err != nil {
		panic(err)
	}
	users := make([]*ledger.PrivateKey, 4)
	for i := range users {
		users[i] = seededKey(t, 1000+i)
	}
	g, _ := ledger.ParseGenesis(doc)
	store, err := ledger.Open(filepath.Join(dir, "data"), ledger.StoreOptions{})
	if err != nil {
		panic(err)
	}
	c := NewChain(store, g, nil)
	if err := c.InitGenesis(doc); err != nil {
		panic(err)
	}
	tn := &testNet{chain: c, store: store, doc: doc, nodeKey: seededKey(t, 0), users: users, codec: store.Codec(), nonces: map[ledger.Address]uint64{}}
	acc := &ledger.Accounts{St: ledger.NewState(store), Codec: tn.codec}
	for _, u := range users {
		a, _, _ := acc.Get(u.Address())
		tn.nonces[u.Address()] = a.Nonce
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		var txs []*PendingTx
		for j := 0; j < 200; j++ {
			u := users[(i+j)%len(users)]
			txs = append(txs, tn.tx(t, u, transfer(users[(i+j+1)%len(users)], uint64(j+1)), 200_000))
		}
		bb, err := c.BuildBlock(context.Background(), txs, store.Head().Time+1000, tn.nodeKey)
		if err != nil {
			panic(err)
		}
		if err := c.Commit(bb); err != nil {
			panic(err)
		}
		fmt.Fprintln(out, bb.Block.Header.Height)
		out.Flush()
	}
}

// TestKillDashNineMidCommit kills a process that commits blocks as fast as
// it can at random moments and checks, after each kill, that the store opens
// at a complete block: the head block exists, its state root is the root of
// the stored tree, the tree matches the stored state exactly, and supply
// still equals the sum of balances. Then the chain continues.
func TestKillDashNineMidCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	tn := newTestChain(t, 4)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "genesis.json"), tn.doc, 0o644); err != nil {
		t.Fatal(err)
	}
	var lastHeight uint64
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SOS_CRASH_CHILD="+dir)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		// Wait for a few commits, then kill at a random moment.
		for i := 0; i < 2 && sc.Scan(); i++ {
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		store, err := ledger.Open(filepath.Join(dir, "data"), ledger.StoreOptions{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		head := store.Head()
		if head.Height <= lastHeight {
			t.Fatalf("round %d: height %d did not advance past %d", round, head.Height, lastHeight)
		}
		lastHeight = head.Height
		b, err := store.Block(head.Height)
		if err != nil || b.Header.StateRoot != head.StateRoot {
			t.Fatalf("round %d: head block %d: %v", round, head.Height, err)
		}
		checkTreeMatchesState(t, store, head.StateRoot)
		c := &testNet{store: store, codec: store.Codec(), chain: NewChain(store, tn.chain.genesis, nil)}
		supplyInvariant(t, c)
		store.Close()
		t.Logf("round %d: killed at height %d, store consistent", round, head.Height)
	}
}

// checkTreeMatchesState rebuilds the sparse Merkle root from every stored
// state entry and compares it with the committed root.
func checkTreeMatchesState(t *testing.T, store *ledger.Store, root ledger.Hash) {
	t.Helper()
	mem := memNodes{}
	tree := smt.New(mem, smt.Hash{}, 0)
	var changes []smt.Change
	err := store.IterateState(nil, nil, false, func(k, v []byte) bool {
		changes = append(changes, smt.Change{Key: ledger.StateKeyHash(k), Value: v})
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := tree.Update(changes)
	if err != nil {
		t.Fatal(err)
	}
	if ledger.Hash(p.Root()) != root {
		t.Fatalf("state entries hash to %x, committed root is %s", p.Root(), root)
	}
}

type memNodes map[string][]byte

func (m memNodes) GetNode(p []byte) ([]byte, error) { return m[string(p)], nil }
