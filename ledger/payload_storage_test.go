package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// testStoragePayloads are one valid payload of each storage and meter
// kind, and a replicated request.
func testStoragePayloads(t testing.TB) []Payload {
	dev := testKey(t, 9)
	c := NewCodec()
	st := MeterStatement{LeaseID: 4, Epoch: 7, Kind: 3, Counter: 12_500_000, Seq: 2}
	sig, err := SignMeterStatement(c, dev, "test", &st)
	if err != nil {
		t.Fatal(err)
	}
	return []Payload{
		&RomeRequest{Demand: []ResourceAmount{{Kind: 4, Amount: 20}}, MaxPrice: []ResourceAmount{{Kind: 4, Amount: 3}}, Epochs: 10,
			Replicas: 3, Spread: SpreadRegion, MeterKinds: 1 << 3},
		&BlobPin{RequestID: 2, Blob: BlobRef{ID: blob(1), Size: 5_000_000}},
		&BlobPin{RequestID: 2, Blob: BlobRef{ID: blob(2)}}, // the empty blob: nothing to prove
		&StorageProof{Epoch: 9, Entries: []StorageEntry{
			{LeaseID: 3, Blob: blob(1), Proofs: [][]byte{bytes.Repeat([]byte{1}, 2312), {2}}},
			{LeaseID: 3, Blob: blob(2)}, // a declared miss
		}},
		&MeterRegister{Resource: 3, PubKey: dev.Public().Bytes()},
		&MeterReading{MeterID: 1, Statement: st, Signature: sig},
	}
}

func TestStoragePayloadsRoundTrip(t *testing.T) {
	c := NewCodec()
	names := map[PayloadKind]string{KindBlobPin: "blob_pin", KindStorageProof: "storage_proof", KindMeterRegister: "meter_register",
		KindMeterReading: "meter_reading", KindRomeRequest: "rome_request"}
	for _, p := range testStoragePayloads(t) {
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
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("%s: JSON: %v", p.Kind(), err)
		}
	}
	// Receipts show proof sizes and key fingerprints, not kilobytes of bytes.
	ps := testStoragePayloads(t)
	js, _ := json.Marshal(ps[3])
	if !bytes.Contains(js, []byte(`"proof_bytes":[2312,1]`)) || len(js) > 400 {
		t.Fatalf("storage proof JSON: %s", js)
	}
	js, _ = json.Marshal(ps[4])
	if len(js) > 120 || !bytes.Contains(js, []byte(`"key":"`)) {
		t.Fatalf("meter register JSON: %s", js)
	}
}

func TestMeterStatementSignature(t *testing.T) {
	c := NewCodec()
	dev := testKey(t, 9)
	r := testStoragePayloads(t)[5].(*MeterReading)
	if err := VerifyMeterStatement(c, dev.Public(), "test", &r.Statement, r.Signature); err != nil {
		t.Fatal(err)
	}
	changed := r.Statement
	changed.LeaseID++
	if err := VerifyMeterStatement(c, dev.Public(), "test", &changed, r.Signature); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("a statement for another lease verified: %v", err)
	}
	if err := VerifyMeterStatement(c, dev.Public(), "other-chain", &r.Statement, r.Signature); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("a statement of another chain verified: %v", err)
	}
	// A transaction signature is never a meter reading (purposes differ).
	b, _ := c.Marshal(&r.Statement)
	txSig, _ := dev.Sign(PurposeTx, "test", b)
	if err := VerifyMeterStatement(c, dev.Public(), "test", &r.Statement, txSig); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("a tx-purpose signature verified as a reading: %v", err)
	}
}

func TestStoragePayloadsValidateBasic(t *testing.T) {
	ps := testStoragePayloads(t)
	req := func() *RomeRequest { p := *ps[0].(*RomeRequest); return &p }
	proof := func() *StorageProof {
		p := ps[3].(*StorageProof)
		q := &StorageProof{Epoch: p.Epoch}
		for _, e := range p.Entries {
			q.Entries = append(q.Entries, StorageEntry{LeaseID: e.LeaseID, Blob: e.Blob, Proofs: append([][]byte(nil), e.Proofs...)})
		}
		return q
	}
	reading := func() *MeterReading { p := *ps[5].(*MeterReading); return &p }
	cases := []struct {
		name string
		p    Payload
	}{
		{"request too many replicas", func() Payload { p := req(); p.Replicas = MaxReplicas + 1; return p }()},
		{"request bundle and replicas", func() Payload { p := req(); p.Bundle = true; return p }()},
		{"request spread 2", func() Payload { p := req(); p.Spread = 2; return p }()},
		{"request spread without replicas", func() Payload { p := req(); p.Replicas = 0; return p }()},
		{"request meter for unknown kind", func() Payload { p := req(); p.MeterKinds = 1 << 4; return p }()},
		{"request meter for kind not demanded", func() Payload { p := req(); p.MeterKinds = 1; return p }()},
		{"pin request 0", &BlobPin{Blob: BlobRef{ID: blob(1), Size: 1}}},
		{"pin zero blob", &BlobPin{RequestID: 1, Blob: BlobRef{Size: 1}}},
		{"proof no entries", &StorageProof{Epoch: 1}},
		{"proof lease 0", func() Payload { p := proof(); p.Entries[0].LeaseID = 0; return p }()},
		{"proof zero blob", func() Payload { p := proof(); p.Entries[0].Blob = BlobID{}; return p }()},
		{"proof empty proof", func() Payload { p := proof(); p.Entries[0].Proofs[1] = nil; return p }()},
		{"proof too large", func() Payload {
			p := proof()
			p.Entries[0].Proofs[0] = make([]byte, MaxStorageProofBytes+1)
			return p
		}()},
		{"proof too many segments", func() Payload {
			p := proof()
			p.Entries[0].Proofs = make([][]byte, MaxStorageSegments+1)
			for i := range p.Entries[0].Proofs {
				p.Entries[0].Proofs[i] = []byte{1}
			}
			return p
		}()},
		{"proof too many entries", func() Payload {
			p := &StorageProof{Epoch: 1}
			for range MaxStorageEntries + 1 {
				p.Entries = append(p.Entries, StorageEntry{LeaseID: 1, Blob: blob(1)})
			}
			return p
		}()},
		{"meter kind 0", &MeterRegister{PubKey: testKey(t, 9).Public().Bytes()}},
		{"meter kind 5", &MeterRegister{Resource: 5, PubKey: testKey(t, 9).Public().Bytes()}},
		{"meter short key", &MeterRegister{Resource: 3, PubKey: []byte{1, 2, 3}}},
		{"reading meter 0", func() Payload { p := reading(); p.MeterID = 0; return p }()},
		{"reading lease 0", func() Payload { p := reading(); p.Statement.LeaseID = 0; return p }()},
		{"reading kind 9", func() Payload { p := reading(); p.Statement.Kind = 9; return p }()},
		{"reading seq 0", func() Payload { p := reading(); p.Statement.Seq = 0; return p }()},
		{"reading short signature", func() Payload { p := reading(); p.Signature = p.Signature[:10]; return p }()},
		{"result energy without source", func() Payload {
			p := testJobPayloads()[3].(*JobResult)
			p.Energy = 5
			return p
		}()},
		{"result energy source 3", func() Payload {
			p := testJobPayloads()[3].(*JobResult)
			p.EnergySource, p.Energy = 3, 5
			return p
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.ValidateBasic(); err == nil {
				t.Fatal("accepted")
			}
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
	// Energy with its source passes.
	r := testJobPayloads()[3].(*JobResult)
	r.Energy, r.EnergySource = 1500, EnergyModeled
	if err := r.ValidateBasic(); err != nil {
		t.Fatal(err)
	}
	if EnergySourceName(EnergyMeasured) != "measured" || EnergySourceName(EnergyModeled) != "modeled" || !strings.HasPrefix(EnergySourceName(7), "source(") {
		t.Fatal("energy source names")
	}
}

// TestStorageTxMutations: what the decoder accepts among mutations of
// valid storage and meter transactions is canonical and valid.
func TestStorageTxMutations(t *testing.T) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(7, 8))
	for _, p := range testStoragePayloads(t) {
		enc := jobTx(t, c, p)
		for range 800 {
			m := mutate(r, bytes.Clone(enc), len(enc), len(enc))
			checkJobTx(t, c, m)
		}
	}
}

// FuzzDecodeStorageTx holds the decoder to the round trip on storage and
// meter transactions.
func FuzzDecodeStorageTx(f *testing.F) {
	c := NewCodec()
	for _, p := range testStoragePayloads(f) {
		raw := jobTx(f, c, p)
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkJobTx(t, c, data) })
}

// storageProofBodies are storage_proof bodies for the decoder tests: the
// valid payload's, and the shapes the codec also accepts (null or empty
// lists, null or empty proofs, large integers) that ValidateBasic rejects.
func storageProofBodies(t testing.TB) [][]byte {
	c := NewCodec()
	vals := []*StorageProof{
		testStoragePayloads(t)[3].(*StorageProof),
		{},
		{Epoch: 1 << 40, Entries: []StorageEntry{}},
		{Epoch: 23, Entries: []StorageEntry{{LeaseID: 1 << 63, Blob: blob(3), Proofs: [][]byte{}}, {LeaseID: 24, Proofs: [][]byte{nil, {}, bytes.Repeat([]byte{7}, 300)}}}},
	}
	var out [][]byte
	for _, v := range vals {
		b, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// checkStorageProofDecoder holds the hand-written decoder to the codec's
// answer on data: the same acceptance and the same value.
func checkStorageProofDecoder(t *testing.T, c *Codec, data []byte) {
	var want, got StorageProof
	werr := c.Unmarshal(data, &want)
	gerr := got.decodeCanonical(data)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("codec says %v, decodeCanonical says %v on %d bytes %.64x", werr, gerr, len(data), data)
	}
	if gerr != nil {
		if !errors.Is(gerr, ErrMalformed) {
			t.Fatalf("decodeCanonical error %v is not ErrMalformed", gerr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeCanonical and the codec decode %d bytes %.64x differently", len(data), data)
	}
}

// TestStorageProofDecoderMatchesCodec runs both decoders over the bodies,
// their truncations and deterministic mutations in every test run (it
// fails if decodeCanonical accepts or rejects anything the codec does
// not, or decodes it differently), and checks that proofs alias the input.
func TestStorageProofDecoderMatchesCodec(t *testing.T) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(11, 12))
	for _, body := range storageProofBodies(t) {
		for n := range len(body) {
			checkStorageProofDecoder(t, c, body[:n])
		}
		checkStorageProofDecoder(t, c, append(bytes.Clone(body), 0))
		for range 3000 {
			checkStorageProofDecoder(t, c, mutate(r, bytes.Clone(body), len(body), len(body)))
		}
	}
	body := storageProofBodies(t)[0]
	var p StorageProof
	if err := p.decodeCanonical(body); err != nil {
		t.Fatal(err)
	}
	pr := p.Entries[0].Proofs[0]
	if len(pr) != 2312 || &pr[0] != &body[bytes.Index(body, bytes.Repeat([]byte{1}, 2312))] {
		t.Fatal("the decoded proof does not alias the body")
	}
}

// FuzzStorageProofDecoder holds the storage_proof decoder DecodeTx uses
// to the codec's answers.
func FuzzStorageProofDecoder(f *testing.F) {
	c := NewCodec()
	for _, b := range storageProofBodies(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkStorageProofDecoder(t, c, data) })
}
