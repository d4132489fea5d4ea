package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// The transaction index (table tIndex) lets clients find transactions by
// who sent them, which contract they touched and which events they
// emitted, without scanning blocks. Each committed transaction gets one
// key per index term:
//
//	tIndex || SHA-256(term)[:16] || height (8 bytes) || index (4 bytes)
//
// with these terms (strings, parts separated by 0x00; the "fee" event of
// every transaction is not indexed: its payer is the sender):
//
//	sender   <bech32 sender>
//	contract <bech32 address>        every contract the tx called (nested
//	                                 calls too: Prepared.IndexContracts), and
//	                                 every event attribute "contract"
//	event    <event type>
//	attr     <event type> <key> <value>
//
// The keys are written in the block's own commit batch, so the index is
// exactly as durable as the block (after a crash both are there or
// neither). A query walks the postings of its first term in (height,
// index) order and checks every other condition on the receipt itself, so
// a hash collision can cost a read, never a wrong answer.

// TxFilter selects transactions. Empty fields match everything; at least
// one of Sender, Contract, Event must be set.
type TxFilter struct {
	Sender   string // bech32 address
	Contract string // bech32 address
	Event    string // event type, e.g. "transfer" or "wasm-increment"
	Attrs    []Attr // attributes one event of type Event must all have (needs Event)
	From, To uint64 // height range, inclusive; To 0: no upper bound
	// After continues a listing: only transactions after this position.
	After *TxPos
	Limit int // at most this many (0: 100); at most MaxTxQuery
}

// TxPos is a transaction's position in the chain.
type TxPos struct {
	Height uint64
	Index  uint32
}

// String is "height/index", the cursor form.
func (p TxPos) String() string { return fmt.Sprintf("%d/%d", p.Height, p.Index) }

// ParseTxPos parses "height/index".
func ParseTxPos(s string) (TxPos, error) {
	h, i, ok := strings.Cut(s, "/")
	hv, err1 := strconv.ParseUint(h, 10, 64)
	iv, err2 := strconv.ParseUint(i, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return TxPos{}, fmt.Errorf("ledger: cursor %q: want height/index", s)
	}
	return TxPos{Height: hv, Index: uint32(iv)}, nil
}

// MaxTxQuery bounds one page of a transaction search.
const MaxTxQuery = 1000

// ErrBadQuery is returned for a transaction search without any indexed
// condition.
var ErrBadQuery = errors.New("bad query")

// TxSearchResult is one page of a search. Next is the cursor of the next
// page (nil: no more). IndexBase is the lowest height the index covers:
// older transactions are not found.
type TxSearchResult struct {
	Receipts  []Receipt
	Next      *TxPos
	IndexBase uint64
}

func termKey(parts ...string) [16]byte {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return [16]byte(h[:16])
}

func indexKey(term [16]byte, h uint64, i uint32) []byte {
	k := make([]byte, 0, 1+16+12)
	k = append(append(k, tIndex), term[:]...)
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(k, h), i)
}

// senderOf is the payer of a receipt's fee event (every executed
// transaction has one), else the sender decoded from the transaction.
func (c *Codec) senderOf(raw []byte, r *Receipt) string {
	for i := len(r.Events) - 1; i >= 0; i-- {
		if e := r.Events[i]; e.Type == "fee" {
			for _, a := range e.Attrs {
				if a.Key == "payer" {
					return a.Value
				}
			}
		}
	}
	if tx, err := c.DecodeTx(raw); err == nil {
		return tx.Sender.String()
	}
	return ""
}

// indexTerms lists the terms of one transaction, without repeats. The
// "fee" event every transaction has is left out: its payer is the sender,
// already indexed, and a search by fee amount or gas is not worth four keys
// per transaction in every block.
func indexTerms(sender string, r *Receipt, contracts []Address) [][16]byte {
	out := make([][16]byte, 0, 8)
	add := func(parts ...string) {
		k := termKey(parts...)
		for _, o := range out {
			if o == k {
				return
			}
		}
		out = append(out, k)
	}
	if sender != "" {
		add("sender", sender)
	}
	for _, c := range contracts {
		add("contract", c.String())
	}
	for _, e := range r.Events {
		if e.Type == "fee" {
			continue
		}
		add("event", e.Type)
		for _, a := range e.Attrs {
			if a.Key == "contract" {
				add("contract", a.Value)
			}
			add("attr", e.Type, a.Key, a.Value)
		}
	}
	return out
}

// putIndex adds the index keys of a block's transactions through set.
// contracts are the contracts each tx called (Prepared.IndexContracts;
// nil when re-indexing old blocks: then only event attributes count).
func (s *Store) putIndex(set func(k, v []byte) error, b *Block, receipts []Receipt, contracts map[uint32][]Address) error {
	for i := range receipts {
		sender := s.codec.senderOf(b.Txs[i], &receipts[i])
		for _, t := range indexTerms(sender, &receipts[i], contracts[uint32(i)]) {
			if err := set(indexKey(t, b.Header.Height, uint32(i)), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// IndexBase is the lowest height whose transactions are indexed (the head
// + 1 while a ledger written by an older version is being indexed, see
// BuildIndex).
func (s *Store) IndexBase() (uint64, error) {
	h, ok, err := s.mark(markIndexBase)
	if err != nil || ok {
		return h, err
	}
	return s.Head().Height + 1, nil
}

// BuildIndex indexes the blocks below IndexBase, newest first, a batch of
// blocks at a time (each batch also lowers IndexBase), until block 0 or
// the first block this store does not hold (a store restored from a state
// snapshot starts there). It returns when done or when ctx ends; running
// it again resumes.
func (s *Store) BuildIndex(ctx context.Context) error {
	const blocksPerBatch = 64
	for {
		base, err := s.IndexBase()
		if err != nil {
			return err
		}
		if base == 0 {
			return nil
		}
		b := s.db.NewBatch()
		h := base
		for n := 0; n < blocksPerBatch && h > 0; n++ {
			if err := ctx.Err(); err != nil {
				b.Close()
				return err
			}
			blk, err := s.Block(h - 1)
			if errors.Is(err, ErrNotFound) {
				break
			}
			if err != nil {
				b.Close()
				return err
			}
			rs, err := s.Receipts(h-1, len(blk.Txs))
			if err != nil {
				b.Close()
				return fmt.Errorf("ledger: index block %d: %w", h-1, err)
			}
			var plog pruneLog
			if err := s.putIndex(func(k, v []byte) error { plog.index(k); return b.Set(k, v, nil) }, blk, rs, nil); err != nil {
				b.Close()
				return err
			}
			if !plog.empty() { // a block written before history: no undo records to list
				_ = b.Set(heightKey(tPruneLog, h-1), plog.encode(), nil)
			}
			h--
		}
		if h == base { // the next block down is not stored: done
			b.Close()
			return nil
		}
		_ = b.Set(markIndexBase, binary.BigEndian.AppendUint64(nil, h), nil)
		err = s.commitBatch(b)
		b.Close()
		if err != nil {
			return fmt.Errorf("ledger: index blocks %d-%d: %w", h, base-1, err)
		}
		s.log.Info("indexed old blocks", "from", h, "to", base-1)
	}
}

// SearchTxs returns the receipts of transactions matching f in (height,
// index) order.
func (s *Store) SearchTxs(f TxFilter) (*TxSearchResult, error) {
	var terms [][16]byte
	if f.Sender != "" {
		terms = append(terms, termKey("sender", f.Sender))
	}
	if f.Contract != "" {
		terms = append(terms, termKey("contract", f.Contract))
	}
	if f.Event != "" {
		for _, a := range f.Attrs {
			terms = append(terms, termKey("attr", f.Event, a.Key, a.Value))
		}
		terms = append(terms, termKey("event", f.Event))
	}
	if len(terms) == 0 {
		return nil, fmt.Errorf("ledger: search transactions: give a sender, a contract or an event type: %w", ErrBadQuery)
	}
	if f.Event == "fee" {
		return nil, fmt.Errorf("ledger: search transactions: the fee event is not indexed (every transaction has one; search by sender): %w", ErrBadQuery)
	}
	if len(f.Attrs) > 0 && f.Event == "" {
		return nil, fmt.Errorf("ledger: search transactions: attributes need the event type they belong to: %w", ErrBadQuery)
	}
	if f.To > 0 && f.To < f.From {
		return nil, fmt.Errorf("ledger: search transactions: height range %d-%d is empty: %w", f.From, f.To, ErrBadQuery)
	}
	if e := s.Earliest(); (f.From > 0 && f.From < e) || (f.To > 0 && f.To < e) {
		return nil, fmt.Errorf("ledger: search transactions: heights %d-%d: %w (this node keeps blocks, and their index, from %d)", f.From, f.To, ErrPruned, e)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, MaxTxQuery)
	base, err := s.IndexBase()
	if err != nil {
		return nil, err
	}
	out := &TxSearchResult{IndexBase: base, Receipts: []Receipt{}}
	lower := indexKey(terms[0], f.From, 0)
	if a := f.After; a != nil {
		next := indexKey(terms[0], a.Height, a.Index+1)
		if a.Index == ^uint32(0) {
			next = indexKey(terms[0], a.Height+1, 0)
		}
		if string(next) > string(lower) {
			lower = next
		}
	}
	// The upper bound is exclusive: just past (To, max index).
	upper := append(indexKey(terms[0], ^uint64(0), ^uint32(0)), 0)
	if f.To > 0 {
		upper = append(indexKey(terms[0], f.To, ^uint32(0)), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("ledger: search transactions: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		h := binary.BigEndian.Uint64(k[17:25])
		i := binary.BigEndian.Uint32(k[25:29])
		if len(out.Receipts) == f.Limit {
			last := TxPos{Height: out.Receipts[len(out.Receipts)-1].Height, Index: out.Receipts[len(out.Receipts)-1].Index}
			out.Next = &last
			break
		}
		match := true
		for _, t := range terms[1:] {
			v, err := s.get(indexKey(t, h, i))
			if err != nil {
				return nil, err
			}
			if v == nil {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		r, err := s.Receipt(h, i)
		if err != nil {
			return nil, err
		}
		if !f.matches(r) {
			continue
		}
		out.Receipts = append(out.Receipts, *r)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("ledger: search transactions: %w", err)
	}
	return out, nil
}

// matches checks f against the receipt itself (the index is by hashes).
func (f *TxFilter) matches(r *Receipt) bool {
	if f.Sender != "" {
		sender := ""
		for _, e := range r.Events {
			if e.Type == "fee" {
				for _, a := range e.Attrs {
					if a.Key == "payer" {
						sender = a.Value
					}
				}
			}
		}
		if sender != f.Sender && sender != "" { // no fee event: the index decoded the tx
			return false
		}
	}
	// f.Contract is not checked here: a called contract that emitted
	// nothing is in the index only (Prepared.IndexContracts).
	if f.Event != "" {
		found := false
		for _, e := range r.Events {
			if e.Type != f.Event {
				continue
			}
			all := true
			for _, a := range f.Attrs {
				if !hasAttr([]Event{e}, f.Event, a) {
					all = false
					break
				}
			}
			if all {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func hasAttr(es []Event, typ string, want Attr) bool {
	for _, e := range es {
		if typ != "" && e.Type != typ {
			continue
		}
		for _, a := range e.Attrs {
			if a.Key == want.Key && a.Value == want.Value {
				return true
			}
		}
	}
	return false
}
