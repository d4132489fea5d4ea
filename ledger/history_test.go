package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestStateAtMatchesEveryPastState commits random writes and deletes over
// several blocks (keys with 0x00 bytes and prefixes of each other
// included) and checks that StateAt(h) answers every read and range read
// exactly as the state after block h did. Without the undo records the
// store can only answer for the head.
func TestStateAtMatchesEveryPastState(t *testing.T) {
	seed := uint64(7)
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	s, err := Open("db", StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := [][]byte{{}, {0}, {0, 0}, {0, 1}, {0, 0xff}, {1}, {1, 0}, []byte("a"), []byte("ab"), []byte("abc"), []byte("b"), {0xff}, {0xff, 0xff}}
	for i := range 20 {
		keys = append(keys, fmt.Appendf(nil, "acct/%02d", i))
	}
	keys = keys[1:] // the empty key is not a valid state key
	var states []map[string][]byte
	cur := map[string][]byte{}
	for h := uint64(0); h < 12; h++ {
		commitState(t, s, h, func(st *State) {
			for range 8 {
				k := keys[r.IntN(len(keys))]
				if _, has := cur[string(k)]; has && r.IntN(3) == 0 {
					st.Delete(k)
					delete(cur, string(k))
				} else {
					v := fmt.Appendf(nil, "v%d-%d", h, r.IntN(1000))
					st.Set(k, v)
					cur[string(k)] = v
				}
			}
		})
		snap := map[string][]byte{}
		for k, v := range cur {
			snap[k] = v
		}
		states = append(states, snap)
	}
	for h, want := range states {
		hs, err := s.StateAt(uint64(h))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			got, err := hs.GetState(k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[string(k)]) {
				t.Fatalf("height %d key %x: got %q want %q", h, k, got, want[string(k)])
			}
		}
		for _, rg := range [][2][]byte{{{0}, nil}, {{0}, {1}}, {[]byte("a"), []byte("b")}, {[]byte("acct/05"), []byte("acct/15")}, {{0, 0xff}, {0xff}}} {
			for _, rev := range []bool{false, true} {
				var got, exp []string
				if err := hs.IterateState(rg[0], rg[1], rev, func(k, v []byte) bool {
					got = append(got, fmt.Sprintf("%x=%s", k, v))
					return true
				}); err != nil {
					t.Fatal(err)
				}
				var ks []string
				for k := range want {
					if k >= string(rg[0]) && (rg[1] == nil || k < string(rg[1])) {
						ks = append(ks, k)
					}
				}
				slices.Sort(ks)
				if rev {
					slices.Reverse(ks)
				}
				for _, k := range ks {
					exp = append(exp, fmt.Sprintf("%x=%s", k, want[k]))
				}
				if !slices.Equal(got, exp) {
					t.Fatalf("height %d range %x-%x rev %v:\n got %v\nwant %v", h, rg[0], rg[1], rev, got, exp)
				}
			}
		}
		hs.Close()
	}
	if _, err := s.StateAt(12); !errors.Is(err, ErrHistoryUnavailable) {
		t.Fatalf("above the head: %v", err)
	}
}

// TestStateAtOnOlderLedger: a store written before history existed (no
// marker, no undo records) keeps history only from its head on, and says so.
func TestStateAtOnOlderLedger(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("db", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(0); h < 3; h++ {
		commitState(t, s, h, func(st *State) { st.Set([]byte("k"), fmt.Appendf(nil, "%d", h)) })
	}
	// What an older version left: no markers.
	if err := s.db.DeleteRange([]byte{tMarks}, []byte{tMarks + 1}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open("db", StoreOptions{FS: fs}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if base, _ := s.HistoryBase(); base != 2 {
		t.Fatalf("history base %d, want the head 2", base)
	}
	if _, err := s.StateAt(1); !errors.Is(err, ErrHistoryUnavailable) {
		t.Fatalf("StateAt(1) on an older ledger: %v", err)
	}
	commitState(t, s, 3, func(st *State) { st.Set([]byte("k"), []byte("3")) })
	hs, err := s.StateAt(2)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	if v, _ := hs.GetState([]byte("k")); string(v) != "2" {
		t.Fatalf("k at 2 = %q", v)
	}
}

func TestHistKeyRoundTripAndOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var ks [][]byte
	for range 300 {
		k := make([]byte, r.IntN(5))
		for i := range k {
			k[i] = []byte{0, 1, 2, 0xfe, 0xff}[r.IntN(5)]
		}
		ks = append(ks, k)
		h := r.Uint64()
		got, gh, err := unescKey(histKey(k, h)[1:])
		if err != nil || !bytes.Equal(got, k) || gh != h {
			t.Fatalf("%x@%d: got %x@%d %v", k, h, got, gh, err)
		}
	}
	for _, a := range ks {
		for _, b := range ks {
			if c := bytes.Compare(a, b); c != bytes.Compare(histKey(a, 5), histKey(b, 1)) && c != 0 {
				t.Fatalf("order of %x and %x not kept", a, b)
			}
		}
	}
}

func FuzzUnescKey(f *testing.F) {
	f.Add(histKey([]byte("acct/1"), 3)[1:])
	f.Add([]byte{0, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, h, err := unescKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(histKey(k, h)[1:], b) {
			t.Fatalf("%x decodes to %x@%d which encodes differently", b, k, h)
		}
	})
}

// indexBlock commits a block whose receipts carry the given events; each
// tx's fee event names its sender.
func indexBlock(t *testing.T, s *Store, senders []string, events [][]Event) {
	t.Helper()
	st := NewState(s)
	head := s.Head()
	h := head.Height + 1
	if head.ChainID == "" {
		h = 0
	}
	st.Set([]byte("h"), fmt.Appendf(nil, "%d", h))
	p, err := s.Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	var txs [][]byte
	var rs []Receipt
	for i, snd := range senders {
		tx := fmt.Appendf(nil, "tx %d/%d", h, i)
		txs = append(txs, tx)
		evs := append(slices.Clone(events[i]), NewEvent("fee", "payer", snd, "amount", "1uTFLP"))
		rs = append(rs, Receipt{TxHash: HashBytes(tx), Height: h, Index: uint32(i), Events: evs})
	}
	b := &Block{Header: Header{Version: BlockVersion, ChainID: "idx", Height: h, PrevHash: head.BlockHash,
		TxRoot: MerkleRoot(txs), StateRoot: p.Root(), NumTxs: uint32(len(txs)), Time: int64(h)}, Txs: txs}
	if err := s.Commit(b, rs, p); err != nil {
		t.Fatal(err)
	}
}

func positions(rs []Receipt) string {
	var out []string
	for _, r := range rs {
		out = append(out, TxPos{Height: r.Height, Index: r.Index}.String())
	}
	return fmt.Sprint(out)
}

func searchIndexFixture(t *testing.T, fs vfs.FS) *Store {
	s, err := Open("db", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	indexBlock(t, s, nil, nil)
	for h := 1; h <= 6; h++ {
		indexBlock(t, s, []string{"alice", "bob"}, [][]Event{
			{NewEvent("wasm-increment", "contract", "c1", "count", fmt.Sprint(h))},
			{NewEvent("transfer", "from", "bob", "to", "alice", "amount", "5uTFLP"), NewEvent("wasm-reset", "contract", fmt.Sprintf("c%d", h%2+1), "count", "0")},
		})
	}
	return s
}

// TestSearchTxs: by sender, contract, event, attribute and height range,
// in (height, index) order, page by page.
func TestSearchTxs(t *testing.T) {
	fs := vfs.NewMem()
	s := searchIndexFixture(t, fs)
	for _, tc := range []struct {
		name string
		f    TxFilter
		want string
	}{
		{"sender", TxFilter{Sender: "alice"}, "[1/0 2/0 3/0 4/0 5/0 6/0]"},
		{"contract", TxFilter{Contract: "c2"}, "[1/1 3/1 5/1]"},
		{"contract c1 (two event types)", TxFilter{Contract: "c1", From: 2, To: 3}, "[2/0 2/1 3/0]"},
		{"event", TxFilter{Event: "transfer", From: 5}, "[5/1 6/1]"},
		{"attr", TxFilter{Event: "wasm-increment", Attrs: []Attr{{Key: "count", Value: "4"}}}, "[4/0]"},
		{"attr of another event type", TxFilter{Event: "transfer", Attrs: []Attr{{Key: "count", Value: "4"}}}, "[]"},
		{"sender and event", TxFilter{Sender: "bob", Event: "wasm-increment"}, "[]"},
		{"sender and contract", TxFilter{Sender: "bob", Contract: "c1", To: 4}, "[2/1 4/1]"},
		{"after", TxFilter{Sender: "bob", After: &TxPos{Height: 4, Index: 1}}, "[5/1 6/1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.SearchTxs(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := positions(res.Receipts); got != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
	// Pages of 4 cover all 6 transactions of bob exactly once.
	var all []Receipt
	var after *TxPos
	for pages := 0; ; pages++ {
		res, err := s.SearchTxs(TxFilter{Sender: "bob", Limit: 4, After: after})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, res.Receipts...)
		if res.Next == nil {
			break
		}
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		after = res.Next
	}
	if positions(all) != "[1/1 2/1 3/1 4/1 5/1 6/1]" {
		t.Fatalf("paged: %s", positions(all))
	}
	if _, err := s.SearchTxs(TxFilter{Event: "fee"}); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("fee events are not indexed: %v", err)
	}
	if _, err := s.SearchTxs(TxFilter{From: 1}); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("no condition: %v", err)
	}
	// The index is in the block's batch: it is there after reopening.
	s.Close()
	s2, err := Open("db", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	res, err := s2.SearchTxs(TxFilter{Contract: "c2"})
	if err != nil || positions(res.Receipts) != "[1/1 3/1 5/1]" || res.IndexBase != 0 {
		t.Fatalf("after reopen: %v %v base %d", res, err, res.IndexBase)
	}
}

// TestBuildIndexForOlderLedger: a ledger written before the index existed
// is indexed backwards from its head; until then searches say from which
// height they are complete.
func TestBuildIndexForOlderLedger(t *testing.T) {
	fs := vfs.NewMem()
	s := searchIndexFixture(t, fs)
	if err := s.db.DeleteRange([]byte{tIndex}, []byte{tMarks + 1}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open("db", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.SearchTxs(TxFilter{Sender: "alice"})
	if err != nil || len(res.Receipts) != 0 || res.IndexBase != 7 {
		t.Fatalf("before building: %s base %d %v", positions(res.Receipts), res.IndexBase, err)
	}
	indexBlock(t, s, []string{"alice"}, [][]Event{nil})
	if err := s.BuildIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err = s.SearchTxs(TxFilter{Sender: "alice"})
	if err != nil || positions(res.Receipts) != "[1/0 2/0 3/0 4/0 5/0 6/0 7/0]" || res.IndexBase != 0 {
		t.Fatalf("after building: %s base %d %v", positions(res.Receipts), res.IndexBase, err)
	}
}

func FuzzParseTxPos(f *testing.F) {
	f.Add("12/3")
	f.Add("18446744073709551615/4294967295")
	f.Add("1/")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseTxPos(s)
		if err != nil {
			return
		}
		if q, err := ParseTxPos(p.String()); err != nil || q != p {
			t.Fatalf("%q -> %v -> %v %v", s, p, q, err)
		}
	})
}
