package rome

import (
	"math/bits"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
)

// BondAccount is the module account holding offers' bonds; DepositAccount
// holds challenge deposits until the challenge is decided.
var (
	BondAccount    = ledger.DeriveAddress("sos/module", []byte("rome_bond"))
	DepositAccount = ledger.DeriveAddress("sos/module", []byte("rome_deposit"))
)

// idle reports whether an offer has nothing that its bond still backs: it
// is closed, none of its leases is active and none of its jobs is pending
// or challengeable.
func (o *Offer) idle() bool {
	if o.Status == StatusOpen || o.OpenJobs > 0 {
		return false
	}
	for _, l := range o.Leased {
		if l.Amount > 0 {
			return false
		}
	}
	return true
}

// releaseBond returns an idle offer's bond to its owner (the caller writes
// the offer). It reports the event to record, if any.
func releaseBond(acc *ledger.Accounts, o *Offer) (*ledger.Event, error) {
	if len(o.Bond) == 0 || !o.idle() {
		return nil, nil
	}
	if err := acc.Transfer(BondAccount, o.Owner, o.Bond); err != nil {
		return nil, err
	}
	ev := ledger.NewEvent("rome_bond_returned", "offer_id", strconv.FormatUint(o.ID, 10), "provider", o.Owner.String(), "amount", o.Bond.String())
	o.Bond = ledger.Coins{}
	return &ev, nil
}

// shareBps is floor(cs × bp / 10000) per denom (zero amounts dropped).
func shareBps(cs ledger.Coins, bp uint64) ledger.Coins {
	out := ledger.Coins{}
	for _, c := range cs {
		hi, lo := bits.Mul64(c.Amount, bp)
		q, _ := bits.Div64(hi, lo, 10_000) // hi < 10000 since bp ≤ 10000
		if q > 0 {
			out = append(out, ledger.Coin{Denom: c.Denom, Amount: q})
		}
	}
	return out
}

// subCoins is a − b per denom; b must not exceed a (it is a share of a).
func subCoins(a, b ledger.Coins) ledger.Coins {
	out := ledger.Coins{}
	for _, c := range a {
		if v := c.Amount - min(c.Amount, b.AmountOf(c.Denom)); v > 0 {
			out = append(out, ledger.Coin{Denom: c.Denom, Amount: v})
		}
	}
	return out
}

// addCoins is a + b.
func addCoins(a, b ledger.Coins) (ledger.Coins, error) {
	return ledger.NormalizeCoins(append(append([]ledger.Coin{}, a...), b...))
}

// minCoins is, per denom of a, the smaller of a and b.
func minCoins(a, b ledger.Coins) ledger.Coins {
	out := ledger.Coins{}
	for _, c := range a {
		if v := min(c.Amount, b.AmountOf(c.Denom)); v > 0 {
			out = append(out, ledger.Coin{Denom: c.Denom, Amount: v})
		}
	}
	return out
}
