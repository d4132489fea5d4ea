package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// storeWithState commits a block at height h whose state holds n records.
func storeWithState(t testing.TB, n int, h uint64) (*Store, *Block) {
	t.Helper()
	s, err := Open("db", StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	commitState(t, s, 0, func(st *State) { st.Set([]byte("genesis"), []byte{1}) })
	var b *Block
	for height := uint64(1); height <= h; height++ {
		b = commitState(t, s, height, func(st *State) {
			for i := range n {
				st.Set(fmt.Appendf(nil, "acct/%08d", i), fmt.Appendf(nil, "balance %d at %d", i*7, height))
			}
		})
	}
	return s, b
}

func commitState(t testing.TB, s *Store, h uint64, fill func(*State)) *Block {
	t.Helper()
	st := NewState(s)
	fill(st)
	p, err := s.Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	head := s.Head()
	b := &Block{Header: Header{Version: BlockVersion, ChainID: "sync-test", Height: h, PrevHash: head.BlockHash,
		TxRoot: MerkleRoot(nil), ReceiptRoot: MerkleRoot(nil), StateRoot: p.Root(), Time: int64(h)}}
	if err := s.Commit(b, nil, p); err != nil {
		t.Fatal(err)
	}
	return b
}

// exportAll exports s and returns its chunks, head and head block.
func exportAll(t testing.TB, s *Store, chunk int) ([][]byte, Head, *Block) {
	t.Helper()
	var chunks [][]byte
	head, raw, err := s.ExportState(chunk, func(c []byte) error { chunks = append(chunks, c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Codec().DecodeBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	return chunks, head, b
}

func TestStateSyncRoundTrip(t *testing.T) {
	src, _ := storeWithState(t, 3000, 3)
	chunks, head, block := exportAll(t, src, 4096)
	if len(chunks) < 10 {
		t.Fatalf("%d chunks: want the state split", len(chunks))
	}
	dst, _ := storeWithState(t, 10, 1) // a node that is behind, with other state
	im, err := dst.BeginImport()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if err := im.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Finish(block); err != nil {
		t.Fatal(err)
	}
	got := dst.Head()
	if got.Height != head.Height || got.StateRoot != head.StateRoot || got.BlockHash != head.BlockHash {
		t.Fatalf("head after import %+v, exporter %+v", got, head)
	}
	// The state is the exporter's, and new blocks build on it.
	for _, k := range []string{"acct/00000000", "acct/00002999", "genesis"} {
		a, _ := src.GetState([]byte(k))
		b, _ := dst.GetState([]byte(k))
		if !bytes.Equal(a, b) || a == nil {
			t.Fatalf("%s: exporter %q, importer %q", k, a, b)
		}
	}
	p, err := dst.Prove([]byte("acct/00001234"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(got.StateRoot); err != nil {
		t.Fatal(err)
	}
	next := commitState(t, dst, head.Height+1, func(st *State) { st.Set([]byte("acct/00000001"), []byte("moved")) })
	want := commitState(t, src, head.Height+1, func(st *State) { st.Set([]byte("acct/00000001"), []byte("moved")) })
	if next.Header.StateRoot != want.Header.StateRoot {
		t.Fatal("the next block's state root differs between exporter and importer")
	}
}

func TestStateSyncRejectsBadSnapshots(t *testing.T) {
	src, _ := storeWithState(t, 500, 2)
	chunks, _, block := exportAll(t, src, 1024)
	cases := map[string]func([][]byte) [][]byte{
		"dropped chunk": func(c [][]byte) [][]byte { return c[1:] },
		"changed value": func(c [][]byte) [][]byte {
			c = cloneChunks(c)
			c[3][len(c[3])-1] ^= 1
			return c
		},
		"truncated chunk": func(c [][]byte) [][]byte {
			c = cloneChunks(c)
			c[2] = c[2][:len(c[2])-3]
			return c
		},
		"reordered chunks": func(c [][]byte) [][]byte {
			c = cloneChunks(c)
			c[1], c[2] = c[2], c[1]
			return c
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			dst, _ := storeWithState(t, 10, 1)
			before := dst.Head()
			im, err := dst.BeginImport()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range mutate(chunks) {
				if err = im.Add(c); err != nil {
					break
				}
			}
			if err == nil {
				err = im.Finish(block)
			} else {
				im.Abort()
			}
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("import of a bad snapshot: %v", err)
			}
			if dst.Head() != before {
				t.Fatal("a failed import changed the head")
			}
			if v, _ := dst.GetState([]byte("acct/00000003")); !bytes.Contains(v, []byte("at 1")) {
				t.Fatalf("a failed import changed the state: %q", v)
			}
		})
	}
}

func cloneChunks(c [][]byte) [][]byte {
	out := make([][]byte, len(c))
	for i := range c {
		out[i] = bytes.Clone(c[i])
	}
	return out
}

// FuzzStateImportChunk: arbitrary chunk bytes never panic the importer.
func FuzzStateImportChunk(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 1, 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, chunk []byte) {
		s, err := Open("db", StoreOptions{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		im, err := s.BeginImport()
		if err != nil {
			t.Fatal(err)
		}
		defer im.Abort()
		_ = im.Add(chunk)
	})
}
