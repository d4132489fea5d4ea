package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sos-kernel/sos/ledger/smt"
)

// Pebble key layout. One leading byte per table; heights are big-endian so
// blocks iterate in order.
const (
	tMeta      byte = 0x00 // "meta" → Head (CBOR)
	tBlock     byte = 0x01 // height → block bytes (stores written before tBlockHead)
	tBlockHash byte = 0x02 // block hash → height
	tTx        byte = 0x03 // tx hash → height, index
	tReceipt   byte = 0x04 // height, index → receipt bytes
	tState     byte = 0x05 // state key → value (current state only)
	tSMT       byte = 0x06 // smt path → node
	tGenesis   byte = 0x07 // genesis document bytes
	tAux       byte = 0x08 // node-local data outside consensus (raft log etc.), owned by the caller
	tBlockHead byte = 0x09 // height → block header and signature (see blockstore.go)
	tBlockTx   byte = 0x0a // height, index → transaction bytes
	tHist      byte = 0x0b // state key, height → the key's value before that block (see history.go)
	tIndex     byte = 0x0c // index term, height, index → nothing (see txindex.go)
	tMarks     byte = 0x0d // what history and index cover (see history.go)
	tPruneLog  byte = 0x0e // height → the history and index keys of that block, for pruning (see prune.go)
)

// ErrNotFound is returned for an absent block, tx or receipt.
var ErrNotFound = errors.New("not found")

// ErrLocked is returned when another process holds the store.
var ErrLocked = errors.New("store is in use by another process")

// Head describes the last committed block.
type Head struct {
	_         struct{} `cbor:",toarray"`
	ChainID   string   `json:"chain_id"`
	Height    uint64   `json:"height"`
	BlockHash Hash     `json:"block_hash"`
	StateRoot Hash     `json:"state_root"`
	Time      int64    `json:"time_ms"`
	Genesis   Hash     `json:"genesis_hash"` // hash of the genesis block header
}

// StoreOptions configures Open. The zero value uses the real filesystem.
type StoreOptions struct {
	FS         vfs.FS // nil: the OS filesystem; vfs.NewMem() or errorfs in tests
	CacheNodes int    // SMT nodes kept decoded in memory (default 1<<20)
	// CacheValueBytes bounds the committed state values kept in memory
	// (default 64 MiB; negative: none). See valueCache.
	CacheValueBytes int
	// MemTableBytes is Pebble's memtable size (default 64 MiB; see Open).
	MemTableBytes int
	Logger        *slog.Logger // nil: discard
	// NoSync skips the fsync of each block batch. Only for bulk-loading
	// benchmark fixtures: a crash can then lose recent blocks.
	NoSync bool
	// FreeReserve is the free disk space Open wants beyond what replaying
	// the write-ahead log takes (default 64 MiB: the new log, manifest and
	// the first blocks). See checkFreeSpace.
	FreeReserve int64
}

// ErrNoSpace is returned by Open when the disk has too little free space
// to replay the store's write-ahead log (see checkFreeSpace).
var ErrNoSpace = errors.New("not enough free disk space")

// Store is the node's ledger on Pebble: blocks, transactions, receipts and
// the current state with its sparse Merkle tree. Every block commits in one
// synced Pebble batch, so after a crash the store is at the last block whose
// batch reached the disk, never in between.
type Store struct {
	db    *pebble.DB
	codec *Codec
	tree  *smt.Tree
	vals  *valueCache
	log   *slog.Logger

	sync       bool
	cacheNodes int
	mu         sync.RWMutex // held for writing during a commit, for reading by proofs
	head       Head
	failed     atomic.Pointer[error] // set once a write failed: no further commits
	earliest   atomic.Uint64         // lowest height above 0 not pruned (prune.go)
	batches    batchPool
	reads      atomic.Uint64 // Pebble point reads (tests count them)
}

// batchPool keeps committed Pebble batches for reuse. A block's batch holds
// the whole block (megabytes); a fresh one per block, grown by doubling,
// costs growth copies and, above all, page faults on memory the process
// never touched before (measured at about 2 µs per 4 KiB page here, more
// than the copy itself). Pebble's own batch pool drops buffers over 1 MiB.
type batchPool struct {
	mu   sync.Mutex
	free []*pebble.Batch
}

const (
	batchPoolSize    = 4        // concurrent writers: block commit, raft log, sync
	batchMaxRetained = 64 << 20 // larger batches are dropped after use
)

// newBatch returns an empty batch with room for at least size bytes.
func (s *Store) newBatch(size int) *pebble.Batch {
	s.batches.mu.Lock()
	if n := len(s.batches.free); n > 0 {
		b := s.batches.free[n-1]
		s.batches.free = s.batches.free[:n-1]
		s.batches.mu.Unlock()
		return b
	}
	s.batches.mu.Unlock()
	return s.db.NewBatchWithSize(size, pebble.WithMaxRetainedSizeBytes(batchMaxRetained))
}

// releaseBatch returns a batch that was committed (or abandoned) for reuse.
// A batch whose commit failed is closed instead: the store is failed anyway.
func (s *Store) releaseBatch(b *pebble.Batch, reusable bool) {
	if reusable {
		b.Reset()
		s.batches.mu.Lock()
		if len(s.batches.free) < batchPoolSize {
			s.batches.free = append(s.batches.free, b)
			s.batches.mu.Unlock()
			return
		}
		s.batches.mu.Unlock()
	}
	_ = b.Close()
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts StoreOptions) (*Store, error) {
	if opts.CacheNodes == 0 {
		opts.CacheNodes = 1 << 20
	}
	if opts.CacheValueBytes == 0 {
		opts.CacheValueBytes = 64 << 20
	}
	if opts.MemTableBytes <= 0 {
		opts.MemTableBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	po := &pebble.Options{
		FS:                 opts.FS,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{opts.Logger},
		// A block of 5,000 transfers is ≈17 MB (ML-DSA signatures are 3.3 KB):
		// keep such a batch below the large-batch threshold (half the
		// memtable), which would otherwise force a memtable flush per block,
		// and hold several blocks, so a cluster node's raft log entries are
		// deleted (raftnode compacts by bytes, 16 MiB) before they are ever
		// flushed. Not larger: every write searches the memtable's skiplist,
		// and in a large one (a genesis of 100,000 accounts and what the
		// blocks since wrote: each changed key rewrites a path of SMT
		// nodes) each search costs microseconds of cache misses — 64 MiB
		// against 256 MiB halves the insert time of a block's batch
		// (BenchmarkCommitSpread).
		MemTableSize: uint64(opts.MemTableBytes),
		Cache:        pebble.NewCache(256 << 20),
	}
	// Most bytes stored are ML-DSA signatures and public keys, which do
	// not compress: compressing them only costs CPU on every flush and
	// compaction.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	// Blocks arrive in bursts of tens of megabytes: let L0 absorb a few
	// flushes before compacting, and give the base level room, so a burst
	// is not rewritten over and over while the node is busiest.
	po.L0CompactionThreshold = 8
	po.L0StopWritesThreshold = 32
	po.LBaseMaxBytes = 256 << 20
	po.EnsureDefaults()
	if opts.FreeReserve <= 0 {
		opts.FreeReserve = 64 << 20
	}
	if err := checkFreeSpace(po.FS, dir, opts.FreeReserve); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		// Pebble's file lock fails with the fcntl errno itself (EAGAIN),
		// or says "lock held by current process".
		if errors.Is(err, syscall.EAGAIN) || strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("ledger: open %s: %w (is another sos running on this home?): %v", dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("ledger: open %s: %w", dir, err)
	}
	s := &Store{db: db, codec: NewCodec(), log: opts.Logger, sync: !opts.NoSync, cacheNodes: opts.CacheNodes,
		vals: newValueCache(opts.CacheValueBytes)}
	raw, err := s.get([]byte{tMeta})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: open %s: read head: %w", dir, err)
	}
	if raw != nil {
		if err := s.codec.Unmarshal(raw, &s.head); err != nil {
			db.Close()
			return nil, fmt.Errorf("ledger: open %s: head: %w: %w", dir, ErrCorrupt, err)
		}
	}
	if err := s.loadPruned(); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: open %s: %w", dir, err)
	}
	s.tree = smt.New(nodeReader{s}, smt.Hash(s.head.StateRoot), opts.CacheNodes)
	if err := s.initMarks(); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: open %s: %w", dir, err)
	}
	return s, nil
}

// OpenDir opens the store under home/data, creating the directory.
func OpenDir(home string, opts StoreOptions) (*Store, error) {
	dir := filepath.Join(home, "data")
	if opts.FS == nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	return Open(dir, opts)
}

// Flush writes the memtables to sstables now, as Pebble does by itself
// once they fill: for tools and benchmarks that want later writes measured
// against an empty memtable (each insert's cost grows with its size).
func (s *Store) Flush() error {
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("ledger: flush: %w", err)
	}
	return nil
}

// Close flushes and closes the store. After a storage failure Pebble may
// refuse to close cleanly; that is reported as an error, not a crash.
func (s *Store) Close() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ledger: close after failure: %v", r)
		}
	}()
	s.batches.mu.Lock()
	for _, b := range s.batches.free {
		_ = b.Close()
	}
	s.batches.free = nil
	s.batches.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("ledger: close: %w", err)
	}
	return nil
}

// Codec returns the store's codec.
func (s *Store) Codec() *Codec { return s.codec }

// Head returns the last committed block's summary (zero before genesis).
func (s *Store) Head() Head {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head
}

// Initialized reports whether genesis has been committed.
func (s *Store) Initialized() bool { return s.Head().ChainID != "" }

func (s *Store) get(key []byte) ([]byte, error) {
	s.reads.Add(1)
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

type nodeReader struct{ s *Store }

func (r nodeReader) GetNode(path []byte) ([]byte, error) {
	return r.s.get(append([]byte{tSMT}, path...))
}

// GetState implements StateReader over committed state. Values a recent
// block wrote or a recent read found come from the value cache.
func (s *Store) GetState(key []byte) ([]byte, error) {
	v, ok, gen := s.vals.get(key)
	if ok {
		return v, nil
	}
	v, err := s.get(append([]byte{tState}, key...))
	if err == nil {
		s.vals.fill(key, v, gen)
	}
	return v, err
}

// IterateState implements StateReader over committed state.
func (s *Store) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	lower := append([]byte{tState}, start...)
	upper := []byte{tState + 1}
	if end != nil {
		upper = append([]byte{tState}, end...)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("ledger: iterate state: %w", err)
	}
	defer it.Close()
	valid := it.First()
	if reverse {
		valid = it.Last()
	}
	for ; valid; valid = step(it, reverse) {
		if !fn(it.Key()[1:], it.Value()) {
			break
		}
	}
	return it.Error()
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// StateKeyHash is the SMT key of a state key.
func StateKeyHash(key []byte) smt.Hash { return sha256.Sum256(key) }

// Prepared is a block's state changes with the state root they produce,
// computed before the header is sealed.
type Prepared struct {
	changes []Change
	prior   [][]byte // committed value of each changed key (nil: absent), for the undo records
	pending *smt.Pending
	// contracts are the contracts each transaction called (by index), for
	// the transaction index (IndexContracts).
	contracts map[uint32][]Address
}

// IndexContracts records the contracts transaction i of the block called,
// so the index finds it by any of them (a contract that emits no event, a
// nested callee).
func (p *Prepared) IndexContracts(i uint32, addrs []Address) {
	if len(addrs) == 0 {
		return
	}
	if p.contracts == nil {
		p.contracts = map[uint32][]Address{}
	}
	p.contracts[i] = addrs
}

// Root is the state root after the changes.
func (p *Prepared) Root() Hash { return Hash(p.pending.Root()) }

// Changes are the state writes the block makes (a nil Value deletes), in
// key order, so that what follows a commit can look at what the block
// changed without reading the state. The caller must not modify them.
func (p *Prepared) Changes() []Change { return p.changes }

// Prepare computes the new state root for st's buffered writes without
// writing anything. st must read this store's committed state (NewState(s)).
func (s *Store) Prepare(st *State) (*Prepared, error) {
	changes := st.Changes()
	sc := make([]smt.Change, len(changes))
	for i, c := range changes {
		sc[i] = smt.Change{Key: StateKeyHash(c.Key), Value: c.Value}
	}
	prior := make([][]byte, len(changes))
	for i, c := range changes {
		v, err := s.prior(st, c.Key, sc[i].Key)
		if err != nil {
			return nil, fmt.Errorf("ledger: prepare: read %x: %w", c.Key, err)
		}
		prior[i] = v
	}
	p, err := s.tree.Update(sc)
	if err != nil {
		return nil, fmt.Errorf("ledger: state root: %w", err)
	}
	return &Prepared{changes: changes, prior: prior, pending: p}, nil
}

// prior is the committed value of key (hashed: kh), which a block changes,
// for its undo record: from the block's own reads or the value cache when
// they have it; a key the state tree does not hold is absent without
// asking Pebble, which for an absent key searches every memtable and
// level. Most keys a block writes without reading are new records (a job,
// an index entry), so this is the common case. The tree's nodes on the
// way are in its cache: Update is about to walk the same paths.
func (s *Store) prior(st *State, key []byte, kh smt.Hash) ([]byte, error) {
	if v, ok := st.reads[string(key)]; ok {
		return v, nil
	}
	v, ok, gen := s.vals.get(key)
	if ok {
		return v, nil
	}
	if _, ok, err := s.tree.Get(kh); err != nil {
		return nil, err
	} else if !ok {
		s.vals.fill(key, nil, gen)
		return nil, nil
	}
	return s.GetState(key)
}

func heightKey(t byte, h uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{t}, h)
}

func receiptKey(h uint64, i uint32) []byte {
	return binary.BigEndian.AppendUint32(heightKey(tReceipt, h), i)
}

// Commit writes a block, its receipts and prepared state in one synced batch.
// aux holds extra node-local writes (keys are prefixed into the aux table).
// On error nothing is visible and the store stays at the previous block.
func (s *Store) Commit(b *Block, receipts []Receipt, p *Prepared, aux ...Change) error {
	h := b.Header.Height
	if p.Root() != b.Header.StateRoot {
		return fmt.Errorf("ledger: commit block %d: header state root %s != computed %s", h, b.Header.StateRoot, p.Root())
	}
	if len(receipts) != len(b.Txs) {
		return fmt.Errorf("ledger: commit block %d: %d receipts for %d txs", h, len(receipts), len(b.Txs))
	}
	head := s.Head()
	if head.ChainID != "" && h != head.Height+1 {
		return fmt.Errorf("ledger: commit block %d: head is at %d", h, head.Height)
	}
	size := 1024
	for _, tx := range b.Txs {
		size += len(tx) + 32
	}
	bh, err := s.codec.HeaderHash(&b.Header)
	if err != nil {
		return err
	}
	batch := s.newBatch(size + 64*len(p.changes) + 256*len(receipts))
	reusable := true
	defer func() { s.releaseBatch(batch, reusable) }()
	put := func(k, v []byte) {
		if err == nil {
			err = batch.Set(k, v, nil)
		}
	}
	if err == nil {
		err = s.codec.putBlock(func(k, v []byte) error { return batch.Set(k, v, nil) }, b)
	}
	put(append([]byte{tBlockHash}, bh[:]...), binary.BigEndian.AppendUint64(nil, h))
	for i := range b.Txs {
		th := receipts[i].TxHash // the executor hashed the tx already
		put(append([]byte{tTx}, th[:]...), binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, h), uint32(i)))
		rb, merr := s.codec.Marshal(&receipts[i])
		if merr != nil {
			return fmt.Errorf("ledger: commit block %d: receipt %d: %w", h, i, merr)
		}
		put(receiptKey(h, uint32(i)), rb)
	}
	var plog pruneLog
	if err == nil {
		err = s.putIndex(func(k, v []byte) error { plog.index(k); return batch.Set(k, v, nil) }, b, receipts, p.contracts)
	}
	if h == 0 {
		put(markHistoryBase, binary.BigEndian.AppendUint64(nil, 0))
		put(markIndexBase, binary.BigEndian.AppendUint64(nil, 0))
	}
	for i, c := range p.changes {
		if h > 0 {
			put(histKey(c.Key, h), histValue(p.prior[i]))
			plog.hist(c.Key)
		}
		k := append([]byte{tState}, c.Key...)
		if c.Value == nil {
			if err == nil {
				err = batch.Delete(k, nil)
			}
		} else {
			put(k, c.Value)
		}
	}
	for _, w := range p.pending.Writes() {
		k := append([]byte{tSMT}, w.Path...)
		if w.Node == nil {
			if err == nil {
				err = batch.Delete(k, nil)
			}
		} else {
			put(k, w.Node)
		}
	}
	for _, c := range aux {
		k := append([]byte{tAux}, c.Key...)
		if c.Value == nil {
			if err == nil {
				err = batch.Delete(k, nil)
			}
		} else {
			put(k, c.Value)
		}
	}
	if h > 0 && !plog.empty() {
		put(heightKey(tPruneLog, h), plog.encode())
	}
	newHead := Head{ChainID: b.Header.ChainID, Height: h, BlockHash: bh, StateRoot: b.Header.StateRoot, Time: b.Header.Time, Genesis: head.Genesis}
	if h == 0 {
		newHead.Genesis = bh
	}
	hb, merr := s.codec.Marshal(&newHead)
	if merr != nil {
		return fmt.Errorf("ledger: commit block %d: head: %w", h, merr)
	}
	put([]byte{tMeta}, hb)
	if err != nil {
		return fmt.Errorf("ledger: commit block %d: batch: %w", h, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("ledger: commit block %d: %w", h, *f)
	}
	s.vals.begin(p.changes)
	if err := s.commitBatch(batch); err != nil {
		reusable = false
		s.vals.abort()
		return fmt.Errorf("ledger: commit block %d: %w", h, err)
	}
	s.tree.Apply(p.pending)
	s.vals.apply(p.changes)
	s.head = newHead
	return nil
}

// ErrStorageFailed means a write to disk failed (disk full, I/O error). The
// store refuses further writes; what was committed before stays intact and
// the node must be restarted once the disk is fixed.
var ErrStorageFailed = errors.New("storage failed")

// commitBatch commits a synced batch. Pebble treats a failed WAL write as
// fatal (its Logger.Fatalf); our logger panics there and we turn that panic
// into ErrStorageFailed here, so the node stops with a clear error instead of
// dying mid-way. Nothing partial is visible: the WAL record is checksummed
// and a torn one is discarded on the next open.
func (s *Store) commitBatch(b *pebble.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e := fmt.Errorf("%w: %v", ErrStorageFailed, r)
			s.failed.Store(&e)
			err = e
		}
	}()
	wo := pebble.Sync
	if !s.sync {
		wo = pebble.NoSync
	}
	return b.Commit(wo)
}

// SetGenesisDoc stores the genesis document bytes (once, with block 0).
func (s *Store) SetGenesisDoc(doc []byte) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set([]byte{tGenesis}, doc, nil); err != nil {
		return fmt.Errorf("ledger: store genesis: %w", err)
	}
	if err := s.commitBatch(b); err != nil {
		return fmt.Errorf("ledger: store genesis: %w", err)
	}
	return nil
}

// GenesisDoc returns the stored genesis document.
func (s *Store) GenesisDoc() ([]byte, error) { return s.get([]byte{tGenesis}) }

// BlockBytes returns the canonical encoding of the block at height.
func (s *Store) BlockBytes(height uint64) ([]byte, error) {
	b, err := s.Block(height)
	if err != nil {
		return nil, err
	}
	return s.codec.EncodeBlock(b)
}

// Block returns the block at height.
func (s *Store) Block(height uint64) (*Block, error) {
	if s.pruned(height) {
		return nil, fmt.Errorf("ledger: block %d: %w (this node keeps blocks from %d)", height, ErrPruned, s.Earliest())
	}
	b, err := s.codec.readBlock(s.db, height)
	if err != nil {
		return nil, fmt.Errorf("ledger: block %d: %w", height, err)
	}
	if b == nil {
		return nil, fmt.Errorf("ledger: block %d: %w", height, ErrNotFound)
	}
	return b, nil
}

// BlockHeightByHash finds a block by its header hash.
func (s *Store) BlockHeightByHash(h Hash) (uint64, error) {
	v, err := s.get(append([]byte{tBlockHash}, h[:]...))
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("ledger: block %s: %w", h, ErrNotFound)
	}
	return binary.BigEndian.Uint64(v), nil
}

// TxLocation finds where a transaction was committed.
func (s *Store) TxLocation(h Hash) (height uint64, index uint32, err error) {
	v, err := s.get(append([]byte{tTx}, h[:]...))
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: tx %s: %w", h, err)
	}
	if len(v) != 12 {
		return 0, 0, fmt.Errorf("ledger: tx %s: %w", h, ErrNotFound)
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:]), nil
}

// Receipt returns the receipt of the tx at (height, index).
func (s *Store) Receipt(height uint64, index uint32) (*Receipt, error) {
	if s.pruned(height) {
		return nil, fmt.Errorf("ledger: receipt %d/%d: %w (this node keeps blocks from %d)", height, index, ErrPruned, s.Earliest())
	}
	raw, err := s.get(receiptKey(height, index))
	if err != nil {
		return nil, fmt.Errorf("ledger: receipt %d/%d: %w", height, index, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("ledger: receipt %d/%d: %w", height, index, ErrNotFound)
	}
	var r Receipt
	if err := s.codec.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("ledger: receipt %d/%d: %w: %w", height, index, ErrCorrupt, err)
	}
	return &r, nil
}

// Receipts returns all receipts of a block.
func (s *Store) Receipts(height uint64, n int) ([]Receipt, error) {
	out := make([]Receipt, 0, n)
	for i := 0; i < n; i++ {
		r, err := s.Receipt(height, uint32(i))
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// StateProof is a committed state value with its SMT proof at a height.
type StateProof struct {
	Height    uint64     `json:"height"`
	StateRoot Hash       `json:"state_root"`
	Key       []byte     `json:"key"`
	Value     []byte     `json:"value"` // nil: proof of absence
	Proof     *smt.Proof `json:"proof"`
}

// Prove returns key's committed value and a proof against the current head.
func (s *Store) Prove(key []byte) (*StateProof, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	val, err := s.GetState(key)
	if err != nil {
		return nil, err
	}
	p, err := s.tree.Prove(StateKeyHash(key))
	if err != nil {
		return nil, fmt.Errorf("ledger: prove: %w", err)
	}
	return &StateProof{Height: s.head.Height, StateRoot: s.head.StateRoot, Key: key, Value: val, Proof: p}, nil
}

// Verify checks a state proof against a state root (taken from a block header
// the verifier trusts).
func (sp *StateProof) Verify(root Hash) error {
	if sp.Proof == nil {
		return fmt.Errorf("ledger: proof: missing")
	}
	if err := smt.VerifyProof(smt.Hash(root), StateKeyHash(sp.Key), sp.Value, sp.Proof); err != nil {
		return fmt.Errorf("ledger: proof: %w", err)
	}
	return nil
}

// AuxGet reads a node-local (non-consensus) key.
func (s *Store) AuxGet(key []byte) ([]byte, error) { return s.get(append([]byte{tAux}, key...)) }

// AuxIterate visits node-local keys with a prefix in order until fn returns
// false. k and v alias the iterator: they are valid only during the call.
func (s *Store) AuxIterate(prefix []byte, fn func(k, v []byte) bool) error {
	lower := append([]byte{tAux}, prefix...)
	upper := append([]byte{tAux}, prefix...)
	for i := len(upper) - 1; i >= 0; i-- {
		if upper[i] < 0xff {
			upper[i]++
			upper = upper[:i+1]
			break
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("ledger: aux iterate: %w", err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		if !fn(it.Key()[1:], it.Value()) {
			break
		}
	}
	return it.Error()
}

// AuxWrite writes node-local keys in one synced batch.
func (s *Store) AuxWrite(changes []Change) error {
	size := 0
	for _, c := range changes {
		size += len(c.Key) + len(c.Value) + 16
	}
	batch := s.newBatch(size)
	reusable := true
	defer func() { s.releaseBatch(batch, reusable) }()
	for _, c := range changes {
		k := append([]byte{tAux}, c.Key...)
		var err error
		if c.Value == nil {
			err = batch.Delete(k, nil)
		} else {
			err = batch.Set(k, c.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("ledger: aux write: %w", err)
		}
	}
	if err := s.commitBatch(batch); err != nil {
		reusable = false
		return fmt.Errorf("ledger: aux write: %w", err)
	}
	return nil
}

// quietLogger routes Pebble's logs to slog at debug level and turns its
// Fatalf into an error log plus panic (Pebble's own contract).
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) { q.l.Debug(fmt.Sprintf(format, args...)) }
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...))
}
func (q quietLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	q.l.Error(msg)
	panic(msg)
}
