package ledger

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func blob(b byte) BlobID { var id BlobID; id[0], id[31] = b, b; return id }

// testJobPayloads are one valid payload of each job kind, and an offer
// with a node and a bond.
func testJobPayloads() []Payload {
	out := Hash{9}
	return []Payload{
		&RomeOffer{Capacity: []ResourceAmount{{Kind: 1, Amount: 10}}, Price: []ResourceAmount{{Kind: 1, Amount: 5}},
			Node: Address{7}, Bond: Coins{{Denom: "uTFLP", Amount: 100_000_000}}},
		&JobSubmit{LeaseID: 3, Module: BlobRef{ID: blob(1), Size: 3 << 20},
			Inputs: []JobFile{{Name: "corpus.txt", ID: blob(2), Size: 1000}, {Name: "stop-words", ID: blob(3), Size: 12}},
			Stdin:  BlobRef{ID: blob(4), Size: 5}, Args: []string{"-top", "20"}, Env: []string{"LANG=C", "EMPTY="},
			GasLimit: 1 << 30, MemoryLimit: 256 << 20, OutputLimit: 64 << 20},
		&JobSubmit{LeaseID: 1, Module: BlobRef{ID: blob(1), Size: 1}, GasLimit: 1, MemoryLimit: 1},
		&JobResult{JobID: 1, Class: JobExited, ExitCode: -1, GasUsed: 123,
			Outputs: []JobFile{{Name: "SHA256SUMS", ID: blob(5), Size: 80}, {Name: "dir/a.png", ID: blob(6), Size: 1}},
			Stdout:  BlobRef{ID: blob(7), Size: 80}, Stderr: BlobRef{ID: blob(8)}, OutputRoot: out, BytesIn: 10, BytesOut: 20},
		&JobChallenge{JobID: 1, Outcome: JobOutcome{ExitCode: 0, GasUsed: 124, OutputRoot: out, Stdout: blob(7)}},
		&JobVerdict{JobID: 1, Outcome: JobOutcome{ExitCode: 2, GasUsed: 1, OutputRoot: Hash{1}, Stdout: blob(1)}},
	}
}

func jobTx(t testing.TB, c *Codec, p Payload) []byte {
	t.Helper()
	k := testKey(t, 3)
	tx := &Tx{Version: TxVersion, ChainID: "test", PubKey: k.Public().Bytes(), Nonce: 1, GasLimit: 500_000,
		GasPrice: GasPrice{Denom: "uTFLP", Micro: 10_000}, Payload: p}
	if err := c.SignTx(tx, k); err != nil {
		t.Fatal(err)
	}
	raw, err := c.EncodeTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestJobPayloadsRoundTrip(t *testing.T) {
	c := NewCodec()
	names := map[PayloadKind]string{KindJobSubmit: "job_submit", KindJobResult: "job_result", KindJobChallenge: "job_challenge",
		KindJobVerdict: "job_verdict", KindRomeOffer: "rome_offer"}
	for _, p := range testJobPayloads() {
		if err := p.ValidateBasic(); err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
		if p.Kind().String() != names[p.Kind()] {
			t.Fatalf("kind %d named %q", p.Kind(), p.Kind())
		}
		raw := jobTx(t, c, p)
		tx, err := c.DecodeTx(raw)
		if err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
		if !reflect.DeepEqual(tx.Payload, p) {
			t.Fatalf("%s: decoded %+v, want %+v", p.Kind(), tx.Payload, p)
		}
		// JSON (receipts, API) shows blob ids and roots in hex and reads back.
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		back := newPayload(p.Kind())
		if err := json.Unmarshal(js, back); err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("%s: JSON round trip: %v\n%s", p.Kind(), err, js)
		}
		if p.Kind() == KindJobResult && !bytes.Contains(js, []byte(`"stdout":{"id":"07`)) {
			t.Fatalf("blob ids not in hex: %s", js)
		}
	}
}

func TestJobPayloadsValidateBasic(t *testing.T) {
	okSubmit := func() *JobSubmit { return testJobPayloads()[1].(*JobSubmit) }
	okResult := func() *JobResult { return testJobPayloads()[3].(*JobResult) }
	long := strings.Repeat("x", MaxJobNameBytes+1)
	cases := []struct {
		name string
		p    Payload
	}{
		{"offer bond without node", &RomeOffer{Capacity: []ResourceAmount{{Kind: 1, Amount: 1}}, Price: []ResourceAmount{{Kind: 1, Amount: 1}}, Bond: Coins{{Denom: "uTFLP", Amount: 1}}}},
		{"offer bond zero amount", &RomeOffer{Capacity: []ResourceAmount{{Kind: 1, Amount: 1}}, Price: []ResourceAmount{{Kind: 1, Amount: 1}}, Node: Address{1}, Bond: Coins{{Denom: "uTFLP"}}}},
		{"submit lease 0", func() Payload { p := okSubmit(); p.LeaseID = 0; return p }()},
		{"submit no module", func() Payload { p := okSubmit(); p.Module = BlobRef{}; return p }()},
		{"submit empty module", func() Payload { p := okSubmit(); p.Module.Size = 0; return p }()},
		{"submit stdin size without id", func() Payload { p := okSubmit(); p.Stdin = BlobRef{Size: 3}; return p }()},
		{"submit gas 0", func() Payload { p := okSubmit(); p.GasLimit = 0; return p }()},
		{"submit memory 0", func() Payload { p := okSubmit(); p.MemoryLimit = 0; return p }()},
		{"submit input with slash", func() Payload { p := okSubmit(); p.Inputs[0].Name = "a/b"; return p }()},
		{"submit input dot-dot", func() Payload { p := okSubmit(); p.Inputs[0].Name = ".."; return p }()},
		{"submit input dot", func() Payload { p := okSubmit(); p.Inputs[0].Name = "."; return p }()},
		{"submit input empty name", func() Payload { p := okSubmit(); p.Inputs[0].Name = ""; return p }()},
		{"submit input name too long", func() Payload { p := okSubmit(); p.Inputs[0].Name = long; return p }()},
		{"submit input NUL", func() Payload { p := okSubmit(); p.Inputs[0].Name = "a\x00"; return p }()},
		{"submit inputs duplicate", func() Payload { p := okSubmit(); p.Inputs[1].Name = p.Inputs[0].Name; return p }()},
		{"submit inputs unsorted", func() Payload { p := okSubmit(); p.Inputs[0], p.Inputs[1] = p.Inputs[1], p.Inputs[0]; return p }()},
		{"submit input zero id", func() Payload { p := okSubmit(); p.Inputs[0].ID = BlobID{}; return p }()},
		{"submit too many inputs", func() Payload {
			p := okSubmit()
			p.Inputs = nil
			for i := range MaxJobInputs + 1 {
				p.Inputs = append(p.Inputs, JobFile{Name: string(rune('a'+i/26)) + string(rune('a'+i%26)), ID: blob(1), Size: 1})
			}
			return p
		}()},
		{"submit env without =", func() Payload { p := okSubmit(); p.Env = []string{"LANG"}; return p }()},
		{"submit env empty key", func() Payload { p := okSubmit(); p.Env = []string{"=x"}; return p }()},
		{"submit env twice", func() Payload { p := okSubmit(); p.Env = []string{"A=1", "A=2"}; return p }()},
		{"submit arg NUL", func() Payload { p := okSubmit(); p.Args = []string{"a\x00b"}; return p }()},
		{"submit too many args", func() Payload { p := okSubmit(); p.Args = make([]string, MaxJobArgs+1); return p }()},
		{"submit args too large", func() Payload { p := okSubmit(); p.Args = []string{strings.Repeat("a", MaxJobArgBytes)}; return p }()},
		{"result job 0", func() Payload { p := okResult(); p.JobID = 0; return p }()},
		{"result class 0", func() Payload { p := okResult(); p.Class = 0; return p }()},
		{"result class 5", func() Payload { p := okResult(); p.Class = 5; return p }()},
		{"result no stdout id", func() Payload { p := okResult(); p.Stdout = BlobRef{}; return p }()},
		{"result stderr too large", func() Payload { p := okResult(); p.Stderr.Size = MaxJobLogBytes + 1; return p }()},
		{"result zero root", func() Payload { p := okResult(); p.OutputRoot = Hash{}; return p }()},
		{"result output absolute", func() Payload { p := okResult(); p.Outputs[0].Name = "/etc"; return p }()},
		{"result output escapes", func() Payload { p := okResult(); p.Outputs[1].Name = "dir/../../x"; return p }()},
		{"result output empty component", func() Payload { p := okResult(); p.Outputs[1].Name = "dir//a"; return p }()},
		{"result outputs unsorted", func() Payload { p := okResult(); p.Outputs[0], p.Outputs[1] = p.Outputs[1], p.Outputs[0]; return p }()},
		{"challenge job 0", &JobChallenge{Outcome: JobOutcome{OutputRoot: Hash{1}, Stdout: blob(1)}}},
		{"challenge zero root", &JobChallenge{JobID: 1, Outcome: JobOutcome{Stdout: blob(1)}}},
		{"verdict no stdout", &JobVerdict{JobID: 1, Outcome: JobOutcome{OutputRoot: Hash{1}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.ValidateBasic(); err == nil {
				t.Fatal("accepted")
			}
			// A transaction carrying it does not decode either.
			c := NewCodec()
			k := testKey(t, 3)
			tx := &Tx{Version: TxVersion, ChainID: "test", PubKey: k.Public().Bytes(), GasLimit: 1, GasPrice: GasPrice{Denom: "uTFLP"}, Payload: tc.p}
			if err := c.SignTx(tx, k); err != nil {
				t.Fatal(err)
			}
			raw, err := c.Marshal(mustWire(t, c, tx))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.DecodeTx(raw); err == nil {
				t.Fatal("DecodeTx accepted it")
			}
		})
	}
}

func mustWire(t *testing.T, c *Codec, tx *Tx) *txWire {
	w, err := c.txToWire(tx, true)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkJobTx: whatever DecodeTx accepts re-encodes to the same bytes, and
// its payload passes ValidateBasic.
func checkJobTx(t *testing.T, c *Codec, data []byte) {
	tx, err := c.DecodeTx(data)
	if err != nil {
		return
	}
	again, err := c.EncodeTx(tx)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("decode/encode is not the identity (%v)", err)
	}
	if err := tx.Payload.ValidateBasic(); err != nil {
		t.Fatalf("accepted a payload that fails ValidateBasic: %v", err)
	}
}

// TestJobTxMutations runs the decoder over thousands of deterministic
// mutations of valid job transactions in every test run: what it accepts
// is canonical and valid.
func TestJobTxMutations(t *testing.T) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range testJobPayloads() {
		enc := jobTx(t, c, p)
		for range 1500 {
			m := mutate(r, bytes.Clone(enc), len(enc), len(enc))
			checkJobTx(t, c, m)
		}
	}
}

// FuzzDecodeJobTx holds the decoder to the round trip on job transactions.
func FuzzDecodeJobTx(f *testing.F) {
	c := NewCodec()
	for _, p := range testJobPayloads() {
		raw := jobTx(f, c, p)
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkJobTx(t, c, data) })
}

func TestBlobIDText(t *testing.T) {
	id := blob(0xab)
	s := id.String()
	if len(s) != 64 {
		t.Fatalf("%q", s)
	}
	back, err := ParseBlobID(s)
	if err != nil || back != id {
		t.Fatalf("parse: %v", err)
	}
	for _, bad := range []string{"", "00", strings.Repeat("g", 64), s + "00"} {
		if _, err := ParseBlobID(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}
