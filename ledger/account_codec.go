package ledger

import (
	"fmt"
)

// Accounts are read and written several times per transfer (sender, fees,
// recipient), so their canonical CBOR, [nonce, balances] with each coin as
// [denom, amount], is written and parsed by hand: the reflective codec with
// its re-encode-and-compare canonical check took a few µs per access. Tests
// hold both paths to the same bytes and the same accepted inputs.

// appendAccount appends the canonical encoding of acc.
func appendAccount(out []byte, acc *Account) []byte {
	out = append(out, 0x82)
	out = AppendCBORHead(out, 0, acc.Nonce)
	if acc.Balances == nil {
		return append(out, 0xf6) // a nil slice is null, as the reflective encoder writes it
	}
	out = AppendCBORHead(out, 4, uint64(len(acc.Balances)))
	for _, c := range acc.Balances {
		out = append(out, 0x82)
		out = AppendCBORHead(out, 3, uint64(len(c.Denom)))
		out = append(out, c.Denom...)
		out = AppendCBORHead(out, 0, c.Amount)
	}
	return out
}

// decodeAccount parses exactly the canonical encoding of an Account.
func decodeAccount(b []byte) (Account, error) {
	var acc Account
	n, r, err := cborHead(b, 4)
	if err != nil {
		return acc, err
	}
	if n != 2 {
		return acc, fmt.Errorf("account of %d fields, want 2: %w", n, ErrMalformed)
	}
	if acc.Nonce, r, err = cborHead(r, 0); err != nil {
		return acc, fmt.Errorf("nonce: %w", err)
	}
	if len(r) > 0 && r[0] == 0xf6 {
		r = r[1:]
	} else {
		if n, r, err = cborHead(r, 4); err != nil {
			return acc, fmt.Errorf("balances: %w", err)
		}
		if n > uint64(len(r))/3 { // a coin takes at least 3 bytes
			return acc, fmt.Errorf("%d coins in %d bytes: %w", n, len(r), ErrMalformed)
		}
		acc.Balances = make(Coins, n)
		for i := range acc.Balances {
			c := &acc.Balances[i]
			var k uint64
			if k, r, err = cborHead(r, 4); err != nil || k != 2 {
				return acc, fmt.Errorf("coin %d: %w", i, errorsJoinMalformed(err))
			}
			if c.Denom, r, err = cborText(r); err != nil {
				return acc, fmt.Errorf("coin %d denom: %w", i, err)
			}
			if c.Amount, r, err = cborHead(r, 0); err != nil {
				return acc, fmt.Errorf("coin %d amount: %w", i, err)
			}
		}
	}
	if len(r) != 0 {
		return acc, fmt.Errorf("%d trailing bytes: %w", len(r), ErrMalformed)
	}
	return acc, nil
}

// errorsJoinMalformed is err when set, else ErrMalformed (a well-formed
// item of the wrong shape).
func errorsJoinMalformed(err error) error {
	if err != nil {
		return err
	}
	return ErrMalformed
}
