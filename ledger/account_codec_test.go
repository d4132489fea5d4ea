package ledger

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func sampleAccounts() []Account {
	return []Account{
		{},
		{Nonce: 1, Balances: Coins{}},
		{Nonce: 23, Balances: Coins{{Denom: "uTFLP", Amount: 24}}},
		{Nonce: 1 << 40, Balances: Coins{{Denom: "uKWTT", Amount: 255}, {Denom: "uTBS", Amount: 1 << 16}, {Denom: "uTFLP", Amount: 1<<64 - 1}}},
		{Nonce: 0xffff, Balances: Coins{{Denom: "dénom✓", Amount: 0x10000}}},
	}
}

// TestAccountCodecMatchesReflective: the hand-written account encoding is
// byte for byte the canonical CBOR, and over thousands of mutations the
// hand-written parser accepts exactly what the reflective canonical decoder
// accepts, with the same fields.
func TestAccountCodecMatchesReflective(t *testing.T) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(5, 6))
	for i, acc := range sampleAccounts() {
		want, err := c.Marshal(&acc)
		if err != nil {
			t.Fatal(err)
		}
		got := appendAccount(nil, &acc)
		if !bytes.Equal(got, want) {
			t.Fatalf("account %d: hand-written %x, canonical %x", i, got, want)
		}
		for j := range 3000 {
			m := bytes.Clone(want)
			if j > 0 {
				m = mutate(r, m, len(m), len(m))
			}
			checkAccountParsers(t, c, m)
		}
	}
}

func checkAccountParsers(t *testing.T, c *Codec, m []byte) {
	t.Helper()
	got, gerr := decodeAccount(m)
	var want Account
	werr := c.Unmarshal(m, &want)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%x: hand-written parser err %v, reflective err %v", m, gerr, werr)
	}
	if gerr != nil {
		return
	}
	if ge := appendAccount(nil, &got); !bytes.Equal(ge, m) {
		t.Fatalf("%x: hand-written parse re-encodes as %x", m, ge)
	}
}

// FuzzDecodeAccount holds the account parser to the reflective decoder on
// arbitrary bytes (state values are written by us, but a corrupt store must
// be reported, not misread).
func FuzzDecodeAccount(f *testing.F) {
	c := NewCodec()
	for _, acc := range sampleAccounts() {
		f.Add(appendAccount(nil, &acc))
	}
	f.Fuzz(func(t *testing.T, m []byte) { checkAccountParsers(t, c, m) })
}

func BenchmarkAccountCodec(b *testing.B) {
	acc := sampleAccounts()[3]
	raw := appendAccount(nil, &acc)
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			a, _ := decodeAccount(raw)
			_ = appendAccount(make([]byte, 0, 96), &a)
		}
	})
	b.Run("reflective", func(b *testing.B) {
		c := NewCodec()
		for b.Loop() {
			var a Account
			_ = c.Unmarshal(raw, &a)
			_, _ = c.Marshal(&a)
		}
	})
}
