package kernel

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/sos-kernel/sos/ledger"
)

// BuiltBlock is a sealed block with everything needed to commit it.
type BuiltBlock struct {
	Block    *ledger.Block
	Raw      []byte // the encoding the leader proposed (cluster only): its commit is recognised without decoding
	Hash     ledger.Hash
	Receipts []ledger.Receipt
	Prepared *ledger.Prepared
	Included []*PendingTx
	Rejected []Rejected
	// EndEvents happened at the end of the block, outside any transaction
	// (jobs timing out, challenges lapsing, bonds returned).
	EndEvents []ledger.Event
}

// Rejected is a transaction left out of a block, and why.
type Rejected struct {
	Tx  *PendingTx
	Err error
}

// BuildBlock executes candidate transactions in order on the latest state,
// leaves out those that cannot be included, stops at the block's gas and tx
// limits, and seals and signs the header. Nothing is written.
func (c *Chain) BuildBlock(ctx context.Context, cands []*PendingTx, timeMs int64, key *ledger.PrivateKey) (*BuiltBlock, error) {
	c.execMu.Lock()
	defer c.execMu.Unlock()
	head := c.store.Head()
	if timeMs <= head.Time {
		timeMs = head.Time + 1 // block time strictly increases even if the clock stepped back
	}
	env := BlockEnv{ChainID: c.genesis.ChainID, Height: head.Height + 1, TimeMs: timeMs, PrevHash: head.BlockHash}
	st := ledger.NewState(c.store)
	ex := c.NewExecutor(ctx, st, env)
	bb := &BuiltBlock{}
	var gasUsed, size uint64
	for _, ptx := range cands {
		if len(bb.Included) >= int(c.params.MaxBlockTxs) || gasUsed+ptx.Tx.GasLimit > c.params.MaxBlockGas ||
			size+uint64(len(ptx.Raw)) > c.params.MaxBlockBytes {
			break
		}
		r, err := ex.Apply(ptx, uint32(len(bb.Included)))
		if errors.Is(err, ErrTxRejected) {
			bb.Rejected = append(bb.Rejected, Rejected{Tx: ptx, Err: err})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kernel: build block %d: %w", env.Height, err)
		}
		gasUsed += r.GasUsed
		size += uint64(len(ptx.Raw))
		bb.Included = append(bb.Included, ptx)
		bb.Receipts = append(bb.Receipts, r)
	}
	if err := c.EndBlock(ex); err != nil {
		return nil, err
	}
	bb.EndEvents = ex.endEvents
	return bb, c.seal(bb, ex, head, gasUsed, key)
}

// EndBlock runs the chain's per-block logic after the last transaction
// (market epochs, governance tallies as they are added).
func (c *Chain) EndBlock(ex *Executor) error { return c.endMarket(ex) }

func (c *Chain) seal(bb *BuiltBlock, ex *Executor, head ledger.Head, gasUsed uint64, key *ledger.PrivateKey) error {
	prep, err := c.store.Prepare(ex.st)
	if err != nil {
		return err
	}
	ex.indexContracts(prep)
	txs := make([][]byte, len(bb.Included))
	for i, p := range bb.Included {
		txs[i] = p.Raw
	}
	rroot, err := c.receiptRoot(bb.Receipts)
	if err != nil {
		return err
	}
	b := &ledger.Block{
		Header: ledger.Header{
			Version: ledger.BlockVersion, ChainID: ex.env.ChainID, Height: ex.env.Height, Time: ex.env.TimeMs,
			PrevHash: head.BlockHash, TxRoot: ledger.MerkleRoot(txs), ReceiptRoot: rroot,
			StateRoot: prep.Root(), NumTxs: uint32(len(txs)), GasUsed: gasUsed,
		},
		Txs: txs,
	}
	if err := c.codec.SignBlock(b, key); err != nil {
		return err
	}
	h, err := c.codec.HeaderHash(&b.Header)
	if err != nil {
		return err
	}
	bb.Block, bb.Hash, bb.Prepared = b, h, prep
	return nil
}

// receiptRoot commits to everything in the receipts except the error text:
// codes, gas, fees, events and result data are consensus, but error strings
// come from the VM and Go runtime (trap messages, panic output) and must
// not make two correct nodes disagree after an upgrade of those.
func (c *Chain) receiptRoot(rs []ledger.Receipt) (ledger.Hash, error) {
	leaves := make([][]byte, len(rs))
	for i := range rs {
		r := rs[i]
		r.Error = ""
		b, err := c.codec.Marshal(&r)
		if err != nil {
			return ledger.Hash{}, fmt.Errorf("kernel: receipt root: %w", err)
		}
		leaves[i] = b
	}
	return ledger.MerkleRoot(leaves), nil
}

// Commit writes a built block; aux adds node-local records to the same
// batch (the raft applied index). It then pins the committed warm code set
// in the contracts VM (an error there means the store cannot be read).
func (c *Chain) Commit(bb *BuiltBlock, aux ...ledger.Change) error {
	c.execMu.Lock()
	defer c.execMu.Unlock()
	if err := c.store.Commit(bb.Block, bb.Receipts, bb.Prepared, aux...); err != nil {
		return err
	}
	return c.syncWarm()
}

// ErrStateMismatch means re-executing a block gave a different result than
// its proposer signed: this node and the proposer disagree, and the node must
// stop rather than diverge silently.
var ErrStateMismatch = errors.New("state mismatch")

// ExecuteBlock re-executes a block proposed by someone else on the latest
// state: it checks the proposer's signature (with proposerKey), links,
// every transaction's signature (in parallel), and that the receipts and
// state root match the header. It returns a BuiltBlock ready to commit.
func (c *Chain) ExecuteBlock(ctx context.Context, b *ledger.Block, proposerKey ledger.PublicKey) (*BuiltBlock, error) {
	c.execMu.Lock()
	defer c.execMu.Unlock()
	head := c.store.Head()
	h := b.Header.Height
	switch {
	case b.Header.ChainID != c.genesis.ChainID:
		return nil, fmt.Errorf("kernel: block %d: chain %q: %w", h, b.Header.ChainID, ledger.ErrWrongChain)
	case h != head.Height+1:
		return nil, fmt.Errorf("kernel: block %d: head is at %d", h, head.Height)
	case b.Header.PrevHash != head.BlockHash:
		return nil, fmt.Errorf("kernel: block %d: previous hash does not link to %s", h, head.BlockHash)
	case b.Header.Time <= head.Time:
		return nil, fmt.Errorf("kernel: block %d: time %d not after %d", h, b.Header.Time, head.Time)
	case !b.TxRootVerified() && ledger.MerkleRoot(b.Txs) != b.Header.TxRoot || int(b.Header.NumTxs) != len(b.Txs):
		return nil, fmt.Errorf("kernel: block %d: tx root or count mismatch: %w", h, ledger.ErrMalformed)
	case len(b.Txs) > int(c.params.MaxBlockTxs) || b.Header.GasUsed > c.params.MaxBlockGas:
		return nil, fmt.Errorf("kernel: block %d: over the block tx or gas limit: %w", h, ledger.ErrMalformed)
	}
	var size uint64
	for _, t := range b.Txs {
		size += uint64(len(t))
	}
	if size > c.params.MaxBlockBytes {
		return nil, fmt.Errorf("kernel: block %d: %d bytes of transactions > %d: %w", h, size, c.params.MaxBlockBytes, ledger.ErrMalformed)
	}
	if err := c.codec.VerifyBlockSignature(b, proposerKey); err != nil {
		return nil, err
	}
	st := ledger.NewState(c.store)
	ptxs, err := c.DecodeAndVerify(st, b.Txs)
	if err != nil {
		return nil, fmt.Errorf("kernel: block %d: %w", h, err)
	}
	ex := c.NewExecutor(ctx, st, BlockEnv{ChainID: b.Header.ChainID, Height: h, TimeMs: b.Header.Time, PrevHash: b.Header.PrevHash})
	bb := &BuiltBlock{Block: b, Included: ptxs}
	var gasUsed uint64
	for i, ptx := range ptxs {
		r, err := ex.Apply(ptx, uint32(i))
		if err != nil {
			return nil, fmt.Errorf("kernel: block %d: tx %d: %w", h, i, err)
		}
		gasUsed += r.GasUsed
		bb.Receipts = append(bb.Receipts, r)
	}
	if err := c.EndBlock(ex); err != nil {
		return nil, err
	}
	bb.EndEvents = ex.endEvents
	prep, err := c.store.Prepare(st)
	if err != nil {
		return nil, err
	}
	ex.indexContracts(prep)
	rroot, err := c.receiptRoot(bb.Receipts)
	if err != nil {
		return nil, err
	}
	if rroot != b.Header.ReceiptRoot || gasUsed != b.Header.GasUsed {
		return nil, fmt.Errorf("kernel: block %d: receipts differ from the proposer's (gas %d vs %d): %w", h, gasUsed, b.Header.GasUsed, ErrStateMismatch)
	}
	if prep.Root() != b.Header.StateRoot {
		return nil, fmt.Errorf("kernel: block %d: state root %s, proposer signed %s: %w", h, prep.Root(), b.Header.StateRoot, ErrStateMismatch)
	}
	bb.Prepared = prep
	bb.Hash, err = c.codec.HeaderHash(&b.Header)
	return bb, err
}

// DecodeAndVerify decodes raw transactions and checks their signatures on
// all cores. Keys of senders whose first tx is in the same batch come from
// the tx itself, so st (the pre-block state) is enough. A transaction this
// node already admitted to its mempool (decoded, signature checked against
// the sender's only possible key) is taken from there, not checked twice.
func (c *Chain) DecodeAndVerify(st *ledger.State, raws [][]byte) ([]*PendingTx, error) {
	out := make([]*PendingTx, len(raws))
	for i, raw := range raws {
		h := ledger.HashBytes(raw)
		if c.verified != nil {
			if p := c.verified(h); p != nil && !p.PubKey.IsZero() {
				out[i] = p
				continue
			}
		}
		tx, err := c.codec.DecodeTx(raw)
		if err != nil {
			return nil, fmt.Errorf("tx %d: %w", i, err)
		}
		out[i] = &PendingTx{Tx: tx, Raw: raw, Hash: h}
	}
	// Key lookups read state, which is not safe for concurrent use: resolve
	// them first, then verify in parallel.
	batch := c.batchKeys(st, out)
	keys := make([]ledger.PublicKey, len(out))
	for i, p := range out {
		if !p.PubKey.IsZero() {
			continue
		}
		pk, err := c.keyFor(st, p.Tx, batch)
		if err != nil {
			return nil, fmt.Errorf("tx %d: %w", i, err)
		}
		keys[i] = pk
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range out {
		if keys[i].IsZero() {
			continue // verified on admission
		}
		g.Go(func() error {
			if err := c.verifyWith(out[i], keys[i]); err != nil {
				return fmt.Errorf("tx %d: %w", i, err)
			}
			return nil
		})
	}
	return out, g.Wait()
}
