package kernel

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// seededKey makes reproducible test keys.
func seededKey(t testing.TB, i int) *ledger.PrivateKey {
	t.Helper()
	seed := make([]byte, ledger.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	k, err := ledger.PrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type testNet struct {
	chain   *Chain
	store   *ledger.Store
	doc     []byte
	nodeKey *ledger.PrivateKey
	users   []*ledger.PrivateKey
	codec   *ledger.Codec
	nonces  map[ledger.Address]uint64
}

// newTestChain makes a chain in a temp dir with n funded users.
func newTestChain(t testing.TB, n int) *testNet {
	t.Helper()
	users := make([]*ledger.PrivateKey, n)
	var accs []ledger.GenesisAccount
	for i := range users {
		users[i] = seededKey(t, 1000+i)
		accs = append(accs, ledger.GenesisAccount{Address: users[i].Address(), Balances: ledger.Coins{
			{Denom: "uKWTT", Amount: 1_000_000_000}, {Denom: "uTFLP", Amount: 1_000_000_000_000}}})
	}
	g := &ledger.Genesis{
		ChainID: "test-chain", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams(), Accounts: accs,
	}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return openTestChain(t, t.TempDir(), doc, users)
}

func openTestChain(t testing.TB, dir string, doc []byte, users []*ledger.PrivateKey) *testNet {
	t.Helper()
	g, err := ledger.ParseGenesis(doc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := ledger.Open(dir, ledger.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := NewChain(store, g, nil)
	if err := c.InitGenesis(doc); err != nil {
		t.Fatal(err)
	}
	return &testNet{chain: c, store: store, doc: doc, nodeKey: seededKey(t, 0), users: users, codec: store.Codec(), nonces: map[ledger.Address]uint64{}}
}

// tx signs a payload from user with the next nonce (the first carries the key).
func (tn *testNet) tx(t testing.TB, from *ledger.PrivateKey, p ledger.Payload, gas uint64) *PendingTx {
	t.Helper()
	n := tn.nonces[from.Address()]
	tn.nonces[from.Address()] = n + 1
	return tn.txNonce(t, from, p, gas, n)
}

func (tn *testNet) txNonce(t testing.TB, from *ledger.PrivateKey, p ledger.Payload, gas, nonce uint64) *PendingTx {
	t.Helper()
	tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: tn.chain.genesis.ChainID, Nonce: nonce, GasLimit: gas,
		GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 10_000}, Payload: p}
	if nonce == 0 {
		tx.PubKey = from.Public().Bytes()
	}
	if err := tn.codec.SignTx(tx, from); err != nil {
		t.Fatal(err)
	}
	raw, err := tn.codec.EncodeTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := tn.codec.DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &PendingTx{Tx: dec, Raw: raw, Hash: ledger.HashBytes(raw)}
}

func transfer(to *ledger.PrivateKey, amount uint64) *ledger.Transfer {
	return &ledger.Transfer{To: to.Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: amount}}}
}

// block builds and commits a block of txs, failing the test on error.
func (tn *testNet) block(t testing.TB, txs ...*PendingTx) *BuiltBlock {
	t.Helper()
	bb, err := tn.chain.BuildBlock(context.Background(), txs, tn.store.Head().Time+1000, tn.nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.chain.Commit(bb); err != nil {
		t.Fatal(err)
	}
	return bb
}

func (tn *testNet) balance(t testing.TB, a ledger.Address, denom string) uint64 {
	t.Helper()
	acc := &ledger.Accounts{St: ledger.NewState(tn.store), Codec: tn.codec}
	b, err := acc.Balance(a, denom)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ = rand.New
