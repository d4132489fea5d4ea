package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// commitTxBlock commits a block at the next height carrying txs (opaque
// bytes: the store does not interpret them) with empty receipts.
func commitTxBlock(t *testing.T, s *Store, txs [][]byte) *Block {
	t.Helper()
	b, err := commitTxBlockErr(s, txs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tryCommitTxBlock(s *Store, txs [][]byte) error {
	_, err := commitTxBlockErr(s, txs)
	return err
}

func commitTxBlockErr(s *Store, txs [][]byte) (*Block, error) {
	st := NewState(s)
	st.Set([]byte("k"), fmt.Appendf(nil, "%d", len(txs)))
	p, err := s.Prepare(st)
	if err != nil {
		return nil, err
	}
	head := s.Head()
	h := head.Height + 1
	if head.ChainID == "" {
		h = 0
	}
	rs := make([]Receipt, len(txs))
	for i, tx := range txs {
		rs[i] = Receipt{TxHash: HashBytes(tx)}
	}
	b := &Block{Header: Header{Version: BlockVersion, ChainID: "blocks", Height: h, PrevHash: head.BlockHash,
		TxRoot: MerkleRoot(txs), ReceiptRoot: MerkleRoot(nil), StateRoot: p.Root(), NumTxs: uint32(len(txs)), Time: int64(h)},
		Signature: []byte("sig"), Txs: txs}
	return b, s.Commit(b, rs, p)
}

// TestBlockStoredInPieces: a block goes in as header and transactions and
// comes back as the same canonical bytes; a missing transaction is
// reported as corruption, not returned as a shorter block.
func TestBlockStoredInPieces(t *testing.T) {
	s, err := Open("db", StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.Codec()
	commitTxBlock(t, s, nil)
	var txs [][]byte
	for i := range 300 {
		txs = append(txs, bytes.Repeat([]byte{byte(i)}, 1+i*13))
	}
	b := commitTxBlock(t, s, txs)
	empty := commitTxBlock(t, s, nil)
	emptyList := commitTxBlock(t, s, [][]byte{}) // as the kernel builds an empty block
	for _, want := range []*Block{b, empty, emptyList} {
		wantRaw, err := c.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.BlockBytes(want.Header.Height)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantRaw) {
			t.Fatalf("block %d: stored bytes differ from the canonical encoding", want.Header.Height)
		}
		if _, err := c.DecodeBlock(got); err != nil {
			t.Fatalf("block %d: %v", want.Header.Height, err)
		}
	}
	if _, err := s.Block(99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent block: %v", err)
	}
	if err := s.db.Delete(blockTxKey(b.Header.Height, 7), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Block(b.Header.Height); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("block with a missing tx: %v, want ErrCorrupt", err)
	}
}

// TestBlockLegacyLayout: a store written before blocks were split keeps
// whole blocks under tBlock, and they are still read.
func TestBlockLegacyLayout(t *testing.T) {
	s, err := Open("db", StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.Codec()
	b := &Block{Header: Header{Version: BlockVersion, ChainID: "old", Height: 5, TxRoot: MerkleRoot([][]byte{{1, 2}}), NumTxs: 1},
		Signature: []byte("sig"), Txs: [][]byte{{1, 2}}}
	raw, err := c.EncodeBlock(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(heightKey(tBlock, 5), raw, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.BlockBytes(5)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatal("legacy block bytes changed")
	}
}
