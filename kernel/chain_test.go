package kernel

import (
	"context"
	"errors"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

// supplyInvariant checks total supply = sum of all balances (fees included,
// they sit in the fee collector account) for every denom.
func supplyInvariant(t *testing.T, tn *testNet) {
	t.Helper()
	sums := map[string]uint64{}
	err := tn.store.IterateState([]byte{0x01}, []byte{0x02}, false, func(k, v []byte) bool {
		var acc ledger.Account
		if err := tn.codec.Unmarshal(v, &acc); err != nil {
			t.Fatal(err)
		}
		for _, c := range acc.Balances {
			sums[c.Denom] += c.Amount
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	acc := &ledger.Accounts{St: ledger.NewState(tn.store), Codec: tn.codec}
	for _, d := range tn.chain.denoms.List() {
		s, err := acc.Supply(d.Base)
		if err != nil {
			t.Fatal(err)
		}
		if s != sums[d.Base] {
			t.Fatalf("supply of %s is %d, balances add up to %d", d.Base, s, sums[d.Base])
		}
	}
}

func TestTransferChargesFeeAndKeepsSupply(t *testing.T) {
	tn := newTestChain(t, 2)
	a, b := tn.users[0], tn.users[1]
	beforeA := tn.balance(t, a.Address(), "uTFLP")
	beforeB := tn.balance(t, b.Address(), "uTFLP")
	bb := tn.block(t, tn.tx(t, a, transfer(b, 25_000_000), 200_000))
	r := bb.Receipts[0]
	if r.Code != ledger.CodeOK {
		t.Fatalf("receipt %+v", r)
	}
	fee, _ := (ledger.GasPrice{Denom: "uTFLP", Micro: 10_000}).Fee(r.GasUsed)
	if r.Fee.Amount != fee || fee == 0 {
		t.Fatalf("fee %v, want %d", r.Fee, fee)
	}
	if got := tn.balance(t, a.Address(), "uTFLP"); got != beforeA-25_000_000-fee {
		t.Fatalf("sender balance %d, want %d", got, beforeA-25_000_000-fee)
	}
	if got := tn.balance(t, b.Address(), "uTFLP"); got != beforeB+25_000_000 {
		t.Fatalf("recipient balance %d", got)
	}
	if got := tn.balance(t, ledger.FeeCollector, "uTFLP"); got != fee {
		t.Fatalf("fee collector %d, want %d", got, fee)
	}
	supplyInvariant(t, tn)
}

func TestFailedPayloadKeepsNonceAndFeeRevertsRest(t *testing.T) {
	tn := newTestChain(t, 2)
	a, b := tn.users[0], tn.users[1]
	before := tn.balance(t, a.Address(), "uKWTT")
	// Too many KWTT: the fee (in TFLP) is affordable, the amount is not.
	p := &ledger.Transfer{To: b.Address(), Amount: ledger.Coins{{Denom: "uKWTT", Amount: before + 1}}}
	bb := tn.block(t, tn.tx(t, a, p, 200_000))
	r := bb.Receipts[0]
	if r.Code != ledger.CodeInsufficientFunds || r.Error == "" || r.Fee.Amount == 0 {
		t.Fatalf("receipt %+v", r)
	}
	if got := tn.balance(t, b.Address(), "uKWTT"); got != 1_000_000_000 {
		t.Fatalf("recipient got KWTT: %d", got)
	}
	acc, _, _ := (&ledger.Accounts{St: ledger.NewState(tn.store), Codec: tn.codec}).Get(a.Address())
	if acc.Nonce != 1 {
		t.Fatalf("nonce %d, want 1", acc.Nonce)
	}
	supplyInvariant(t, tn)
}

func TestOutOfGasRevertsPayload(t *testing.T) {
	tn := newTestChain(t, 2)
	a, b := tn.users[0], tn.users[1]
	// Just enough for intrinsic gas, not for the transfer's state access.
	// (Gas limits 100,000 and ~70,000 encode to the same number of bytes.)
	probe := tn.txNonce(t, a, transfer(b, 5), 100_000, 0)
	intrinsic := tn.chain.IntrinsicGas(probe) + tn.chain.sched.StorePubKeyPer*ledger.PublicKeySize + tn.chain.sched.WriteBase + 10
	ptx := tn.tx(t, a, transfer(b, 5), intrinsic)
	bb := tn.block(t, ptx)
	r := bb.Receipts[0]
	if r.Code != ledger.CodeOutOfGas || r.GasUsed != intrinsic {
		t.Fatalf("receipt %+v (limit %d)", r, intrinsic)
	}
	if got := tn.balance(t, b.Address(), "uTFLP"); got != 1_000_000_000_000 {
		t.Fatalf("transfer happened despite out of gas: %d", got)
	}
	supplyInvariant(t, tn)
}

func TestRejectedTxsAreLeftOut(t *testing.T) {
	tn := newTestChain(t, 3)
	a, b, c := tn.users[0], tn.users[1], tn.users[2]
	poor := seededKey(t, 5000) // never funded
	cases := []struct {
		name string
		tx   *PendingTx
	}{
		{"nonce too high", tn.txNonce(t, a, transfer(b, 1), 200_000, 5)},
		{"cannot pay max fee", tn.txNonce(t, poor, transfer(b, 1), 200_000, 0)},
		{"gas below intrinsic", tn.txNonce(t, c, transfer(b, 1), 1000, 0)},
	}
	noKey := tn.txNonce(t, b, transfer(a, 1), 200_000, 0)
	noKey.Tx.PubKey = nil
	cases = append(cases, struct {
		name string
		tx   *PendingTx
	}{"first tx without public key", noKey})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bb, err := tn.chain.BuildBlock(context.Background(), []*PendingTx{tc.tx}, tn.store.Head().Time+1, tn.nodeKey)
			if err != nil {
				t.Fatal(err)
			}
			if len(bb.Included) != 0 || len(bb.Rejected) != 1 || !errors.Is(bb.Rejected[0].Err, ErrTxRejected) {
				t.Fatalf("included %d rejected %v", len(bb.Included), bb.Rejected)
			}
		})
	}
}

func TestReexecutionMatchesAndDetectsTampering(t *testing.T) {
	leader := newTestChain(t, 4)
	follower := openTestChain(t, t.TempDir(), leader.doc, leader.users)
	var txs []*PendingTx
	for i, u := range leader.users {
		txs = append(txs, leader.tx(t, u, transfer(leader.users[(i+1)%4], uint64(1000+i)), 200_000))
	}
	bb := leader.block(t, txs...)
	fb, err := follower.chain.ExecuteBlock(context.Background(), bb.Block, leader.nodeKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	if fb.Prepared.Root() != bb.Block.Header.StateRoot {
		t.Fatal("follower root differs")
	}
	// A header with a wrong state root, properly signed, must be refused.
	bad := *bb.Block
	bad.Header.StateRoot[0] ^= 1
	if err := follower.codec.SignBlock(&bad, leader.nodeKey); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.chain.ExecuteBlock(context.Background(), &bad, leader.nodeKey.Public()); !errors.Is(err, ErrStateMismatch) {
		t.Fatalf("tampered root: %v", err)
	}
	// A block signed by someone else is refused.
	if _, err := follower.chain.ExecuteBlock(context.Background(), bb.Block, seededKey(t, 77).Public()); !errors.Is(err, ledger.ErrInvalidSignature) {
		t.Fatalf("wrong proposer: %v", err)
	}
	if err := follower.chain.Commit(fb); err != nil {
		t.Fatal(err)
	}
	if follower.store.Head() != leader.store.Head() {
		t.Fatalf("heads differ: %+v vs %+v", follower.store.Head(), leader.store.Head())
	}
}
