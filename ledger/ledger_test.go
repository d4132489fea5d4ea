package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func testKey(t testing.TB, i int) *PrivateKey {
	t.Helper()
	seed := make([]byte, SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	k, err := PrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testTx(t testing.TB, c *Codec, k *PrivateKey) *Tx {
	t.Helper()
	tx := &Tx{
		Version: TxVersion, ChainID: "test", PubKey: k.Public().Bytes(), Nonce: 7, GasLimit: 100_000,
		GasPrice: GasPrice{Denom: "uTFLP", Micro: 10_000},
		Payload:  &Transfer{To: testKey(t, 99).Address(), Amount: Coins{{Denom: "uTFLP", Amount: 25_000_000}}},
		Memo:     "hello",
	}
	if err := c.SignTx(tx, k); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestBech32Vectors(t *testing.T) {
	// Valid BIP-173 test vectors.
	for _, s := range []string{
		"A12UEL5L",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
	} {
		hrp, data, err := bech32Decode(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		five, _ := convertBits(data, 8, 5, true)
		_ = five
		_ = hrp
	}
	for _, s := range []string{"pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "A1G7SGD8", "10a06t8", "1qzzfhee"} {
		if _, _, err := bech32Decode(s); err == nil {
			t.Errorf("%s: accepted an invalid bech32 string", s)
		}
	}
}

func TestAddressRoundTripAndErrors(t *testing.T) {
	a := testKey(t, 1).Address()
	s := a.String()
	if !strings.HasPrefix(s, "sos1") {
		t.Fatalf("address %s lacks prefix", s)
	}
	got, err := ParseAddress(s)
	if err != nil || got != a {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if _, err := ParseAddress(strings.ToUpper(s)); err != nil {
		t.Fatalf("upper case must parse: %v", err)
	}
	bad := []string{"", "not-an-address", s[:len(s)-1] + "q", "cosmos1qqqqqqqq", bech32Encode("sos", []byte{1, 2, 3}), bech32Encode("xyz", a[:])}
	for _, b := range bad {
		if _, err := ParseAddress(b); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

func TestSignaturesAreDomainSeparated(t *testing.T) {
	k := testKey(t, 1)
	msg := []byte("payload")
	sig, err := k.Sign(PurposeTx, "chain-a", msg)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	if err := pub.Verify(PurposeTx, "chain-a", msg, sig); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	for name, check := range map[string]func() error{
		"other chain":   func() error { return pub.Verify(PurposeTx, "chain-b", msg, sig) },
		"other purpose": func() error { return pub.Verify(PurposeBlock, "chain-a", msg, sig) },
		"other message": func() error { return pub.Verify(PurposeTx, "chain-a", []byte("payloae"), sig) },
		"other key":     func() error { return testKey(t, 2).Public().Verify(PurposeTx, "chain-a", msg, sig) },
		"short sig":     func() error { return pub.Verify(PurposeTx, "chain-a", msg, sig[:10]) },
	} {
		if err := check(); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("%s: got %v, want ErrInvalidSignature", name, err)
		}
	}
	// Deterministic signing: golden vectors depend on it.
	sig2, _ := k.Sign(PurposeTx, "chain-a", msg)
	if !bytes.Equal(sig, sig2) {
		t.Fatal("signing is not deterministic")
	}
}

func TestTxRoundTripAndVerify(t *testing.T) {
	c := NewCodec()
	k := testKey(t, 1)
	tx := testTx(t, c, k)
	raw, err := c.EncodeTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.EncodeTx(got)
	if !bytes.Equal(raw, again) {
		t.Fatal("decode/encode changed the bytes")
	}
	if err := c.VerifyTx(got, "test", k.Public()); err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyTxRaw(got, raw, "test", k.Public()); err != nil {
		t.Fatal(err)
	}
	sb1, _ := c.SignBytes(got)
	if sb2, ok := signBytesFromRaw(raw, got.Signature); !ok || !bytes.Equal(sb1, sb2) {
		t.Fatal("sign bytes derived from raw differ from encoded sign bytes")
	}
	if err := c.VerifyTx(got, "other", k.Public()); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("wrong chain: %v", err)
	}
	got.Nonce++
	if err := c.VerifyTx(got, "test", k.Public()); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("tampered nonce: %v", err)
	}
}

func TestDecodeTxRejectsBadBytes(t *testing.T) {
	c := NewCodec()
	k := testKey(t, 1)
	raw, err := c.EncodeTx(testTx(t, c, k))
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(w *txWire)) []byte {
		var w txWire
		if err := c.Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		f(&w)
		b, err := c.Marshal(&w)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A non-canonical encoding of the same value: the nonce as a 9-byte uint.
	nonCanon := bytes.Replace(raw, []byte{0x07, 0x1a}, []byte{0x1b, 0, 0, 0, 0, 0, 0, 0, 0x07, 0x1a}, 1)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"garbage", []byte("this is not a transaction"), ErrMalformed},
		{"truncated", raw[:len(raw)/2], ErrMalformed},
		{"trailing byte", append(append([]byte{}, raw...), 0), ErrMalformed},
		{"non-canonical int", nonCanon, ErrMalformed},
		{"oversized", make([]byte, MaxTxBytes+1), ErrTxTooLarge},
		{"unknown kind", mutate(func(w *txWire) { w.Kind = 999 }), ErrUnknownKind},
		{"bad version", mutate(func(w *txWire) { w.Version = 2 }), ErrMalformed},
		{"wrong pubkey", mutate(func(w *txWire) { w.PubKey = testKey(t, 2).Public().Bytes() }), ErrBadPublicKey},
		{"short signature", mutate(func(w *txWire) { w.Signature = w.Signature[:100] }), ErrInvalidSignature},
		{"zero gas", mutate(func(w *txWire) { w.GasLimit = 0 }), nil},
		{"fee overflow", mutate(func(w *txWire) { w.GasLimit = 1 << 62; w.GasPrice.Micro = 1 << 40 }), ErrOverflow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.DecodeTx(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if !bytes.Contains(raw, []byte{0x07, 0x1a}) {
		t.Fatal("test assumption: nonce 7 followed by gas limit header")
	}
}

func TestParseAmounts(t *testing.T) {
	d, err := NewDenoms(DefaultDenoms())
	if err != nil {
		t.Fatal(err)
	}
	good := []struct {
		in   string
		want Coin
	}{
		{"25TFLP", Coin{Denom: "uTFLP", Amount: 25_000_000}},
		{"0.5TFLP", Coin{Denom: "uTFLP", Amount: 500_000}},
		{"1000uTFLP", Coin{Denom: "uTFLP", Amount: 1000}},
		{"5000KWTT", Coin{Denom: "uKWTT", Amount: 5_000_000_000}},
		{"1.000000TBS", Coin{Denom: "uTBS", Amount: 1_000_000}},
		{"18446744073709.551615TFLP", Coin{Denom: "uTFLP", Amount: 1<<64 - 1}},
	}
	for _, g := range good {
		c, err := d.ParseAmount(g.in)
		if err != nil || c != g.want {
			t.Errorf("%s: got %v %v, want %v", g.in, c, err, g.want)
		}
	}
	bad := map[string]error{
		"99999999999999999999999TFLP": ErrOverflow,
		"18446744073709.551616TFLP":   ErrOverflow,
		"1FOO":                        ErrUnknownDenom,
		"0.0000001TFLP":               nil,
		"1.5uTFLP":                    nil,
		"TFLP":                        nil,
		"1..2TFLP":                    nil,
		"-1TFLP":                      nil,
		"":                            nil,
	}
	for in, want := range bad {
		_, err := d.ParseAmount(in)
		if err == nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%q: got %v, want error %v", in, err, want)
		}
	}
	cs, err := d.ParseCoins("1TFLP,2KWTT,1TFLP")
	if err != nil || cs.String() != "2000000uKWTT,2000000uTFLP" {
		t.Fatalf("ParseCoins merge/sort: %v %v", cs, err)
	}
	if got := d.FormatAmount(Coin{Denom: "uTFLP", Amount: 25_500_000}); got != "25.5TFLP" {
		t.Fatalf("FormatAmount: %s", got)
	}
}

func TestGasPriceFee(t *testing.T) {
	d, _ := NewDenoms(DefaultDenoms())
	p, err := d.ParseGasPrice("0.01uTFLP")
	if err != nil || p.Micro != 10_000 || p.Denom != "uTFLP" {
		t.Fatalf("parse: %+v %v", p, err)
	}
	if f, _ := p.Fee(92_705); f != 928 { // ceil(927.05)
		t.Fatalf("fee %d, want 928", f)
	}
	p2, _ := d.ParseGasPrice("1uTFLP")
	if f, _ := p2.Fee(100); f != 100 {
		t.Fatalf("fee %d", f)
	}
	if _, err := (GasPrice{Denom: "uTFLP", Micro: 1 << 63}).Fee(1 << 62); !errors.Is(err, ErrOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	if p2.String() != "1uTFLP" || p.String() != "0.01uTFLP" {
		t.Fatalf("String: %s %s", p2, p)
	}
}

type memReader map[string][]byte

func (m memReader) GetState(k []byte) ([]byte, error) { return m[string(k)], nil }
func (m memReader) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	var keys []string
	for k := range m {
		if k >= string(start) && (end == nil || k < string(end)) {
			keys = append(keys, k)
		}
	}
	sortStrings(keys, reverse)
	for _, k := range keys {
		if !fn([]byte(k), m[k]) {
			break
		}
	}
	return nil
}

func sortStrings(s []string, reverse bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && (s[j] < s[j-1]) != reverse; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestStateSnapshotRevertAndIterate(t *testing.T) {
	base := memReader{"a": []byte("1"), "c": []byte("3"), "e": []byte("5")}
	st := NewState(base)
	st.Set([]byte("b"), []byte("2"))
	snap := st.Snapshot()
	st.Set([]byte("a"), []byte("x"))
	st.Delete([]byte("c"))
	st.Set([]byte("d"), []byte("4"))
	collect := func(rev bool) string {
		var sb strings.Builder
		if err := st.Iterate(nil, nil, rev, func(k, v []byte) bool { sb.WriteString(string(k) + "=" + string(v) + " "); return true }); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	if got := collect(false); got != "a=x b=2 d=4 e=5 " {
		t.Fatalf("iterate: %q", got)
	}
	if got := collect(true); got != "e=5 d=4 b=2 a=x " {
		t.Fatalf("reverse iterate: %q", got)
	}
	st.RevertTo(snap)
	if got := collect(false); got != "a=1 b=2 c=3 e=5 " {
		t.Fatalf("after revert: %q", got)
	}
	if v, _ := st.Get([]byte("c")); string(v) != "3" {
		t.Fatalf("c after revert: %q", v)
	}
	if n := len(st.Changes()); n != 1 {
		t.Fatalf("changes after revert: %d", n)
	}
}

func TestAccountsSupplyInvariant(t *testing.T) {
	c := NewCodec()
	st := NewState(memReader{})
	acc := &Accounts{St: st, Codec: c}
	a, b := testKey(t, 1).Address(), testKey(t, 2).Address()
	if err := acc.Mint(a, Coins{{Denom: "uTFLP", Amount: 100}}); err != nil {
		t.Fatal(err)
	}
	if err := acc.Transfer(a, b, Coins{{Denom: "uTFLP", Amount: 30}}); err != nil {
		t.Fatal(err)
	}
	if err := acc.Transfer(a, b, Coins{{Denom: "uTFLP", Amount: 71}}); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("overspend: %v", err)
	}
	if err := acc.Transfer(a, a, Coins{{Denom: "uTFLP", Amount: 1000}}); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("self transfer beyond balance: %v", err)
	}
	if err := acc.Credit(b, Coins{{Denom: "uTFLP", Amount: 1<<64 - 1}}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("credit overflow: %v", err)
	}
	ba, _ := acc.Balance(a, "uTFLP")
	bb, _ := acc.Balance(b, "uTFLP")
	s, _ := acc.Supply("uTFLP")
	if ba != 70 || bb != 30 || s != ba+bb {
		t.Fatalf("balances %d %d supply %d", ba, bb, s)
	}
}

func TestGenesisValidation(t *testing.T) {
	good := &Genesis{ChainID: "sos-local", GenesisTime: time.Unix(1, 0).UTC(), Denoms: DefaultDenoms(), Params: DefaultParams(),
		Accounts: []GenesisAccount{{Address: testKey(t, 1).Address(), Balances: Coins{{Denom: "uTFLP", Amount: 5}}}}}
	doc, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseGenesis(doc); err != nil {
		t.Fatalf("good genesis: %v", err)
	}
	bad := map[string]string{
		"not json":       "{",
		"unknown field":  strings.Replace(string(doc), `"chain_id"`, `"chain_idd": 1, "chain_id"`, 1),
		"bad chain id":   strings.Replace(string(doc), `"sos-local"`, `"Bad Chain"`, 1),
		"display denom":  strings.Replace(string(doc), `"denom": "uTFLP"`, `"denom": "TFLP"`, 1),
		"zero amount":    strings.Replace(string(doc), `"amount": "5"`, `"amount": "0"`, 1),
		"trailing":       string(doc) + "{}",
		"no time":        strings.Replace(string(doc), `"genesis_time": "1970-01-01T00:00:01Z"`, `"genesis_time": "0001-01-01T00:00:00Z"`, 1),
		"bad node key":   strings.Replace(string(doc), `"nodes": null`, `"nodes": [{"pub_key": "abcd"}]`, 1),
		"zero max gas":   strings.Replace(string(doc), fmt.Sprintf(`"max_tx_gas": %d`, DefaultParams().MaxTxGas), `"max_tx_gas": 0`, 1),
		"huge amount":    strings.Replace(string(doc), `"amount": "5"`, `"amount": "18446744073709551616"`, 1),
		"duplicate acct": strings.Replace(string(doc), `"accounts": [`, `"accounts": [{"address": "`+testKey(t, 1).Address().String()+`", "balances": []},`, 1),
	}
	for name, d := range bad {
		if d == string(doc) {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if _, err := ParseGenesis([]byte(d)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMerkleRoot(t *testing.T) {
	if MerkleRoot(nil) != HashBytes(nil) {
		t.Fatal("empty root")
	}
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	r3 := MerkleRoot([][]byte{a, b, c})
	if r3 == MerkleRoot([][]byte{a, c, b}) || r3 == MerkleRoot([][]byte{a, b}) {
		t.Fatal("root does not commit to order and content")
	}
}

func FuzzDecodeTx(f *testing.F) {
	c := NewCodec()
	raw, err := c.EncodeTx(testTx(f, c, testKey(f, 1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:100])
	f.Add([]byte{0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := c.DecodeTx(data)
		if err != nil {
			return
		}
		again, err := c.EncodeTx(tx)
		if err != nil {
			t.Fatalf("decoded tx does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decode/encode is not the identity")
		}
	})
}

// testBlockBytes is a signed one-tx block, encoded.
func testBlockBytes(t testing.TB, c *Codec) []byte {
	raw, _ := c.EncodeTx(testTx(t, c, testKey(t, 1)))
	b := &Block{Header: Header{Version: BlockVersion, ChainID: "test", Height: 3, NumTxs: 1, TxRoot: MerkleRoot([][]byte{raw})}, Txs: [][]byte{raw}}
	if err := c.SignBlock(b, testKey(t, 2)); err != nil {
		t.Fatal(err)
	}
	enc, err := c.EncodeBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DecodeBlock(enc); err != nil {
		t.Fatal(err)
	}
	return enc
}

// checkDecodeBlock holds DecodeBlock to the canonical reflective decoder:
// it accepts exactly what that decoder accepts (then checks version, count
// and tx root), and what it accepts re-encodes to the same bytes.
func checkDecodeBlock(t *testing.T, c *Codec, data []byte) {
	blk, err := c.DecodeBlock(data)
	var ref Block
	refErr := c.Unmarshal(data, &ref)
	if err == nil && refErr != nil {
		t.Fatalf("DecodeBlock accepted what the canonical decoder refuses: %v", refErr)
	}
	if err != nil && refErr == nil && ref.Header.Version == BlockVersion && int(ref.Header.NumTxs) == len(ref.Txs) &&
		MerkleRoot(ref.Txs) == ref.Header.TxRoot && len(data) <= MaxBlockBytes {
		t.Fatalf("DecodeBlock refused a valid canonical block: %v", err)
	}
	if err != nil {
		return
	}
	// Re-encode a copy (a decoded block remembers its bytes).
	again, err := c.EncodeBlock(&Block{Header: blk.Header, Signature: blk.Signature, Txs: blk.Txs})
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("decode/encode is not the identity: %v", err)
	}
	if MerkleRoot(blk.Txs) != blk.Header.TxRoot {
		t.Fatal("accepted a block whose tx root does not match")
	}
}

func FuzzDecodeBlock(f *testing.F) {
	c := NewCodec()
	enc := testBlockBytes(f, c)
	f.Add(enc)
	f.Add(enc[:50])
	f.Fuzz(func(t *testing.T, data []byte) { checkDecodeBlock(t, c, data) })
}

// TestDecodeBlockMutations runs the fuzz check over thousands of
// deterministic mutations of a valid block (bit flips, truncations,
// insertions, deletions, wrong heads) in every test run.
func TestDecodeBlockMutations(t *testing.T) {
	c := NewCodec()
	enc := testBlockBytes(t, c)
	r := rand.New(rand.NewPCG(1, 2))
	checkDecodeBlock(t, c, enc)
	for range 4000 {
		m := bytes.Clone(enc)
		switch r.IntN(5) {
		case 0:
			i := r.IntN(len(m))
			m[i] ^= 1 << r.IntN(8)
		case 1:
			m = m[:r.IntN(len(m))]
		case 2:
			i := r.IntN(len(m))
			m = append(m[:i:i], append([]byte{byte(r.IntN(256))}, m[i:]...)...)
		case 3:
			i := r.IntN(len(m))
			m = append(m[:i:i], m[i+1:]...)
		case 4:
			// The first bytes hold the array and header heads.
			i := r.IntN(min(len(m), 80))
			m[i] = byte(r.IntN(256))
		}
		checkDecodeBlock(t, c, m)
	}
}

// TestEncodeBlockMatchesReflectiveEncoder pins the hand-written block
// encoder to the canonical CBOR of the same value.
func TestEncodeBlockMatchesReflectiveEncoder(t *testing.T) {
	c := NewCodec()
	raw, _ := c.EncodeTx(testTx(t, c, testKey(t, 1)))
	big := make([]byte, 70_000)
	cases := []*Block{
		{Header: Header{Version: 1, ChainID: "x", Height: 0}},
		{Header: Header{Version: 1, ChainID: "x", Height: 1}, Signature: []byte{}, Txs: [][]byte{}},
		{Header: Header{Version: 1, ChainID: "x", Height: 2, NumTxs: 2}, Signature: make([]byte, SignatureSize), Txs: [][]byte{raw, {}}},
		{Header: Header{Version: 1, ChainID: "x", Height: 3}, Signature: []byte{1}, Txs: [][]byte{big, raw, make([]byte, 23), make([]byte, 24), make([]byte, 255), make([]byte, 256)}},
	}
	for i := 0; i < 30; i++ {
		cases[3].Txs = append(cases[3].Txs, raw)
	}
	for i, b := range cases {
		want, err := c.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.EncodeBlock(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: hand-written encoding differs from canonical CBOR", i)
		}
	}
}

// TestDecodeTxWireMatchesReflective: over thousands of mutations of valid
// transactions, the hand-written envelope parser accepts exactly what the
// canonical reflective decoder accepts, with the same fields.
func TestDecodeTxWireMatchesReflective(t *testing.T) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(3, 4))
	first := testTx(t, c, testKey(t, 1))
	later := testTx(t, c, testKey(t, 2))
	later.PubKey, later.Memo = nil, "later, with a memo ✓"
	if err := c.SignTx(later, testKey(t, 2)); err != nil {
		t.Fatal(err)
	}
	var encs [][]byte
	for _, tx := range []*Tx{first, later} {
		enc, err := c.EncodeTx(tx)
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, enc)
	}
	for _, p := range testJobPayloads() { // bodies of every shape: lists, nested arrays, signed ints
		encs = append(encs, jobTx(t, c, p))
	}
	for _, enc := range encs {
		for i := range 3000 {
			m := bytes.Clone(enc)
			if i > 0 {
				// The envelope's small fields sit around the large ones:
				// mutate near both ends more often.
				m = mutate(r, m, 120, 3400)
			}
			got, gerr := c.decodeTxWire(m)
			var want txWire
			werr := c.Unmarshal(m, &want)
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("mutation %d: hand-written parser err %v, reflective err %v", i, gerr, werr)
			}
			if gerr != nil {
				continue
			}
			ge, _ := c.Marshal(&got)
			we, _ := c.Marshal(&want)
			if !bytes.Equal(ge, we) || !bytes.Equal(ge, m) {
				t.Fatalf("mutation %d: parsers disagree on the fields", i)
			}
		}
	}
}

// mutate flips a bit, truncates, or overwrites a byte of m (anywhere, within
// head bytes of the start, or within tail bytes of the end).
func mutate(r *rand.Rand, m []byte, head, tail int) []byte {
	switch r.IntN(4) {
	case 0:
		m[r.IntN(len(m))] ^= 1 << r.IntN(8)
	case 1:
		m = m[:r.IntN(len(m))]
	case 2:
		m[r.IntN(min(len(m), head))] = byte(r.IntN(256))
	default:
		m[len(m)-1-r.IntN(min(len(m), tail))] = byte(r.IntN(256))
	}
	return m
}
