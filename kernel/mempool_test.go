package kernel

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

func newTestPool(t *testing.T, tn *testNet, cfg MempoolConfig) *Mempool {
	t.Helper()
	if cfg.MinGasPrices == nil {
		cfg.MinGasPrices = map[string]ledger.GasPrice{"uTFLP": {Denom: "uTFLP", Micro: 10_000}}
	}
	return NewMempool(tn.chain, cfg)
}

func addOne(m *Mempool, raw []byte) error {
	_, errs := m.Add([][]byte{raw})
	return errs[0]
}

func TestMempoolRejectsBadInput(t *testing.T) {
	tn := newTestChain(t, 3)
	a, b := tn.users[0], tn.users[1]
	pool := newTestPool(t, tn, MempoolConfig{})
	good := tn.txNonce(t, a, transfer(b, 1), 200_000, 0)
	if err := addOne(pool, good.Raw); err != nil {
		t.Fatal(err)
	}
	sign := func(mod func(tx *ledger.Tx), key *ledger.PrivateKey) []byte {
		tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: "test-chain", PubKey: key.Public().Bytes(), Nonce: 0, GasLimit: 200_000,
			GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 10_000}, Payload: transfer(b, 1)}
		mod(tx)
		if err := tn.codec.SignTx(tx, key); err != nil {
			t.Fatal(err)
		}
		raw, err := tn.codec.EncodeTx(tx)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	c := tn.users[2]
	badSig := sign(func(*ledger.Tx) {}, c)
	badSig[len(badSig)-5] ^= 0xff
	big := sign(func(tx *ledger.Tx) {}, c)
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"garbage", []byte("garbage"), ledger.ErrMalformed},
		{"truncated", good.Raw[:len(good.Raw)-10], ledger.ErrMalformed},
		{"oversized", make([]byte, ledger.MaxTxBytes+1), ledger.ErrTxTooLarge},
		{"wrong chain", sign(func(tx *ledger.Tx) { tx.ChainID = "other" }, c), ledger.ErrWrongChain},
		{"bad signature", badSig, ledger.ErrInvalidSignature},
		{"duplicate", good.Raw, ErrDuplicate},
		{"nonce too high", sign(func(tx *ledger.Tx) { tx.Nonce = 1 << 40 }, c), ErrNonceTooHigh},
		{"insufficient funds", sign(func(tx *ledger.Tx) {
			tx.Payload = &ledger.Transfer{To: b.Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1 << 62}}}
		}, c), ledger.ErrInsufficientFunds},
		{"unfunded sender", sign(func(*ledger.Tx) {}, seededKey(t, 9999)), ledger.ErrInsufficientFunds},
		{"unknown denom", sign(func(tx *ledger.Tx) {
			tx.Payload = &ledger.Transfer{To: b.Address(), Amount: ledger.Coins{{Denom: "uFOO", Amount: 1}}}
		}, c), ledger.ErrUnknownDenom},
		{"unknown fee denom", sign(func(tx *ledger.Tx) { tx.GasPrice.Denom = "uFOO" }, c), ledger.ErrUnknownDenom},
		{"gas price too low", sign(func(tx *ledger.Tx) { tx.GasPrice.Micro = 1 }, c), ErrGasPriceLow},
		{"fee denom not accepted", sign(func(tx *ledger.Tx) { tx.GasPrice.Denom = "uKWTT" }, c), ErrGasPriceLow},
	}
	_ = big
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := addOne(pool, tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if pool.Size() != 1 {
		t.Fatalf("pool holds %d txs, want 1", pool.Size())
	}
}

func TestMempoolReplayAfterCommit(t *testing.T) {
	tn := newTestChain(t, 2)
	a, b := tn.users[0], tn.users[1]
	pool := newTestPool(t, tn, MempoolConfig{})
	tx0 := tn.txNonce(t, a, transfer(b, 1), 200_000, 0)
	if err := addOne(pool, tx0.Raw); err != nil {
		t.Fatal(err)
	}
	bb, err := tn.chain.BuildBlock(context.Background(), pool.Reap(10), tn.store.Head().Time+1, tn.nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.chain.Commit(bb); err != nil {
		t.Fatal(err)
	}
	pool.Update(bb)
	if err := addOne(pool, tx0.Raw); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay of committed tx: %v", err)
	}
	other := tn.txNonce(t, a, transfer(b, 2), 200_000, 0) // same nonce, new content
	if err := addOne(pool, other.Raw); !errors.Is(err, ErrNonceTooLow) {
		t.Fatalf("reused nonce: %v", err)
	}
}

func TestMempoolOrdersByPriceThenNonce(t *testing.T) {
	tn := newTestChain(t, 3)
	pool := newTestPool(t, tn, MempoolConfig{})
	mk := func(k *ledger.PrivateKey, nonce, micro uint64) *PendingTx {
		tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: "test-chain", Nonce: nonce, GasLimit: 200_000,
			GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: micro}, Payload: transfer(tn.users[0], 1)}
		if nonce == 0 {
			tx.PubKey = k.Public().Bytes()
		}
		if err := tn.codec.SignTx(tx, k); err != nil {
			t.Fatal(err)
		}
		raw, _ := tn.codec.EncodeTx(tx)
		return &PendingTx{Raw: raw}
	}
	cheap, rich := tn.users[1], tn.users[2]
	// rich's nonce 1 comes before its nonce 0 in the batch (and before the
	// key it needs): it must be admitted and still be ordered after nonce 0.
	var raws [][]byte
	for _, p := range []*PendingTx{mk(cheap, 0, 10_000), mk(rich, 1, 50_000), mk(rich, 0, 90_000), mk(cheap, 1, 10_000)} {
		raws = append(raws, p.Raw)
	}
	if _, errs := pool.Add(raws); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	got := pool.Reap(10)
	var order []string
	for _, p := range got {
		who := "cheap"
		if p.Tx.Sender == rich.Address() {
			who = "rich"
		}
		order = append(order, who+string(rune('0'+p.Tx.Nonce)))
	}
	want := []string{"rich0", "rich1", "cheap0", "cheap1"}
	if len(order) != 4 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] || order[3] != want[3] {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestMempoolBoundedWithEviction(t *testing.T) {
	tn := newTestChain(t, 3)
	pool := newTestPool(t, tn, MempoolConfig{MaxTxs: 2})
	a, b, c := tn.users[0], tn.users[1], tn.users[2]
	if err := addOne(pool, tn.txNonce(t, a, transfer(b, 1), 200_000, 0).Raw); err != nil {
		t.Fatal(err)
	}
	if err := addOne(pool, tn.txNonce(t, a, transfer(b, 1), 200_000, 1).Raw); err != nil {
		t.Fatal(err)
	}
	// Same price: the pool is full and nothing is cheaper.
	if err := addOne(pool, tn.txNonce(t, b, transfer(a, 1), 200_000, 0).Raw); !errors.Is(err, ErrMempoolFull) {
		t.Fatalf("full pool: %v", err)
	}
	// A better price evicts the cheapest tail.
	tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: "test-chain", PubKey: c.Public().Bytes(), GasLimit: 200_000,
		GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 20_000}, Payload: transfer(a, 1)}
	_ = tn.codec.SignTx(tx, c)
	raw, _ := tn.codec.EncodeTx(tx)
	if err := addOne(pool, raw); err != nil {
		t.Fatalf("better price not admitted: %v", err)
	}
	if pool.Size() != 2 {
		t.Fatalf("size %d", pool.Size())
	}
}

// TestBlockReusesAdmittedTxs: executing a block, a node takes the
// transactions its mempool admitted (decoded, signature checked) instead of
// decoding and verifying them again; the others are verified as usual.
func TestBlockReusesAdmittedTxs(t *testing.T) {
	tn := newTestChain(t, 3)
	pool := NewMempool(tn.chain, MempoolConfig{MaxTxs: 100})
	tn.chain.verified = pool.Lookup
	a, b := tn.users[0], tn.users[1]
	admitted := tn.txNonce(t, a, transfer(b, 1), 200_000, 0)
	if err := addOne(pool, admitted.Raw); err != nil {
		t.Fatal(err)
	}
	fresh := tn.txNonce(t, b, transfer(a, 1), 200_000, 0)
	got, err := tn.chain.DecodeAndVerify(ledger.NewState(tn.store), [][]byte{admitted.Raw, fresh.Raw})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != pool.Lookup(admitted.Hash) {
		t.Fatal("the admitted transaction was decoded again")
	}
	if got[1].PubKey.IsZero() || got[1] == pool.Lookup(fresh.Hash) {
		t.Fatal("a transaction the pool never saw was not verified")
	}
	// A tampered transaction the pool never admitted still fails.
	bad := bytes.Clone(fresh.Raw)
	bad[len(bad)-10] ^= 1
	if _, err := tn.chain.DecodeAndVerify(ledger.NewState(tn.store), [][]byte{admitted.Raw, bad}); err == nil {
		t.Fatal("a tampered signature passed")
	}
}

// TestMempoolUpdateKeepsLaterNonces: a block that commits the first part of
// a sender's long queue removes exactly that part; the rest stays queued in
// order and every included transaction's waiter gets its receipt.
func TestMempoolUpdateKeepsLaterNonces(t *testing.T) {
	tn := newTestChain(t, 2)
	a, b := tn.users[0], tn.users[1]
	pool := newTestPool(t, tn, MempoolConfig{})
	var txs []*PendingTx
	for n := range uint64(30) {
		p := tn.txNonce(t, a, transfer(b, 1+n), 200_000, n)
		if err := addOne(pool, p.Raw); err != nil {
			t.Fatalf("nonce %d: %v", n, err)
		}
		txs = append(txs, p)
	}
	waits := make([]<-chan TxOutcome, 12)
	for i := range waits {
		ch, cancel := pool.Wait(txs[i].Hash)
		defer cancel()
		waits[i] = ch
	}
	bb, err := tn.chain.BuildBlock(context.Background(), pool.Reap(10), tn.store.Head().Time+1, tn.nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(bb.Included) != 10 {
		t.Fatalf("included %d", len(bb.Included))
	}
	if err := tn.chain.Commit(bb); err != nil {
		t.Fatal(err)
	}
	pool.Update(bb)
	if pool.Size() != 20 {
		t.Fatalf("pool holds %d, want the 20 later nonces", pool.Size())
	}
	for i := range 10 {
		select {
		case o := <-waits[i]:
			if o.Receipt == nil || o.Err != nil {
				t.Fatalf("tx %d: %+v", i, o)
			}
		default:
			t.Fatalf("tx %d: no outcome after its block", i)
		}
	}
	for i := 10; i < 12; i++ {
		select {
		case o := <-waits[i]:
			t.Fatalf("queued tx %d got an outcome: %+v", i, o)
		default:
		}
	}
	next, err := pool.NextNonce(a.Address())
	if err != nil || next != 30 {
		t.Fatalf("next nonce %d, %v; want 30", next, err)
	}
	rest := pool.Reap(100)
	for i, p := range rest {
		if p.Tx.Nonce != uint64(10+i) {
			t.Fatalf("reaped nonce %d at %d, want %d", p.Tx.Nonce, i, 10+i)
		}
	}
}

// forgedTxs makes n transactions that decode and pass every stateless check
// but whose signatures are random bytes, each from a fresh sender carrying a
// fresh public key (random bytes are a valid packed ML-DSA-65 key): what an
// attacker floods a node with at no cost to themselves.
func forgedTxs(t testing.TB, codec *ledger.Codec, seed uint64, n int) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	to := seededKey(t, 1).Address()
	raws := make([][]byte, n)
	for i := range raws {
		pub := make([]byte, ledger.PublicKeySize)
		sig := make([]byte, ledger.SignatureSize)
		for j := range pub {
			pub[j] = byte(rng.Uint32())
		}
		for j := range sig {
			sig[j] = byte(rng.Uint32())
		}
		tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: "test-chain", Sender: ledger.AddressFromPublicKey(pub), PubKey: pub,
			GasLimit: 200_000, GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 10_000},
			Payload: &ledger.Transfer{To: to, Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1}}}, Signature: sig}
		raw, err := codec.EncodeTx(tx)
		if err != nil {
			t.Fatal(err)
		}
		raws[i] = raw
	}
	return raws
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestRefusedTxsRetainNothing floods the mempool with transactions whose
// signatures do not verify, each with a fresh public key. All are refused,
// and nothing of them stays in memory: an expanded ML-DSA-65 key is ≈40 KB,
// so retaining the keys of 3,000 refused transactions would keep ≈120 MB.
func TestRefusedTxsRetainNothing(t *testing.T) {
	tn := newTestChain(t, 1)
	pool := newTestPool(t, tn, MempoolConfig{})
	const n, batch = 3000, 250
	raws := forgedTxs(t, tn.codec, 15, n)
	before := liveHeap()
	for lo := 0; lo < n; lo += batch {
		_, errs := pool.Add(raws[lo : lo+batch])
		for i, err := range errs {
			if !errors.Is(err, ledger.ErrInvalidSignature) {
				t.Fatalf("tx %d: %v, want an invalid signature", lo+i, err)
			}
		}
	}
	after := liveHeap()
	runtime.KeepAlive(pool)
	runtime.KeepAlive(raws)
	grew := int64(after) - int64(before)
	t.Logf("live heap %d → %d bytes (%+d) after %d refused txs", before, after, grew, n)
	if grew > 16<<20 {
		t.Fatalf("live heap grew by %d MB after refusing %d transactions: something of them is retained", grew>>20, n)
	}
	if pool.Size() != 0 {
		t.Fatalf("pool holds %d", pool.Size())
	}
}

// TestKeysBeyondTheCache: with more active senders than the key cache
// holds, admission and block verification still find every key (carried
// by the batch, or read from the chain) and the cache stays in its budget.
func TestKeysBeyondTheCache(t *testing.T) {
	tn := newTestChain(t, 5)
	var first []*PendingTx
	for i, u := range tn.users {
		first = append(first, tn.tx(t, u, transfer(tn.users[(i+1)%5], 1), 200_000))
	}
	tn.block(t, first...) // the keys are on chain now
	tn.chain.keys = ledger.NewKeyCache(ledger.PublicKeyMemBytes)
	pool := newTestPool(t, tn, MempoolConfig{})
	var next []*PendingTx
	var raws [][]byte
	for i, u := range tn.users {
		p := tn.tx(t, u, transfer(tn.users[(i+2)%5], 1), 200_000)
		next = append(next, p)
		raws = append(raws, p.Raw)
	}
	if _, errs := pool.Add(raws); errors.Join(errs...) != nil {
		t.Fatalf("admission with keys from the chain: %v", errors.Join(errs...))
	}
	if n := tn.chain.keys.Len(); n != 1 {
		t.Fatalf("cache holds %d keys, budget 1", n)
	}
	got, err := tn.chain.DecodeAndVerify(ledger.NewState(tn.store), raws)
	if err != nil {
		t.Fatalf("block verification with keys from the chain: %v", err)
	}
	for i := range got {
		if got[i].PubKey.IsZero() {
			t.Fatalf("tx %d has no verified key", i)
		}
	}
	// A forged signature from a sender whose key is on chain still fails.
	bad := bytes.Clone(next[0].Raw)
	bad[len(bad)-7] ^= 1
	if _, err := tn.chain.DecodeAndVerify(ledger.NewState(tn.store), [][]byte{bad}); !errors.Is(err, ledger.ErrInvalidSignature) {
		t.Fatalf("tampered tx: %v", err)
	}
}
