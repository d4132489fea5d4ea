package ledger

import (
	"fmt"
)

// BlockVersion is the header encoding version.
const BlockVersion = 1

// Header commits to everything a block did. Its hash (SHA-256 of the
// canonical CBOR) is what the proposer signs and what the next block links to.
type Header struct {
	_           struct{} `cbor:",toarray"`
	Version     uint8    `json:"version"`
	ChainID     string   `json:"chain_id"`
	Height      uint64   `json:"height"`
	Time        int64    `json:"time_ms"` // unix milliseconds, from the proposer's injected clock; strictly increasing
	PrevHash    Hash     `json:"prev_hash"`
	TxRoot      Hash     `json:"tx_root"`
	ReceiptRoot Hash     `json:"receipt_root"`
	StateRoot   Hash     `json:"state_root"` // sparse Merkle root after executing this block
	NumTxs      uint32   `json:"num_txs"`
	GasUsed     uint64   `json:"gas_used"`
	Proposer    Address  `json:"proposer"` // address of the proposing node's ML-DSA key
}

// Block is a header, the proposer's signature over the header hash, and the
// canonical bytes of every transaction in execution order.
type Block struct {
	_         struct{} `cbor:",toarray"`
	Header    Header
	Signature []byte
	Txs       [][]byte
}

// HeaderHash is the block id.
func (c *Codec) HeaderHash(h *Header) (Hash, error) {
	b, err := c.Marshal(h)
	if err != nil {
		return Hash{}, fmt.Errorf("ledger: header %d: encode: %w", h.Height, err)
	}
	return HashBytes(b), nil
}

// SignBlock sets the proposer and signs the header hash.
func (c *Codec) SignBlock(b *Block, key *PrivateKey) error {
	b.Header.Proposer = key.Address()
	h, err := c.HeaderHash(&b.Header)
	if err != nil {
		return err
	}
	sig, err := key.Sign(PurposeBlock, b.Header.ChainID, h[:])
	if err != nil {
		return err
	}
	b.Signature = sig
	return nil
}

// VerifyBlockSignature checks the proposer's signature with its public key.
func (c *Codec) VerifyBlockSignature(b *Block, pub PublicKey) error {
	if pub.Address() != b.Header.Proposer {
		return fmt.Errorf("ledger: block %d: proposer key does not match header: %w", b.Header.Height, ErrInvalidSignature)
	}
	h, err := c.HeaderHash(&b.Header)
	if err != nil {
		return err
	}
	if err := pub.Verify(PurposeBlock, b.Header.ChainID, h[:], b.Signature); err != nil {
		return fmt.Errorf("ledger: block %d: %w", b.Header.Height, err)
	}
	return nil
}

// EncodeBlock returns the canonical bytes of a block.
func (c *Codec) EncodeBlock(b *Block) ([]byte, error) { return c.Marshal(b) }

// MaxBlockBytes bounds a decoded block (network frames and the store).
const MaxBlockBytes = 256 << 20

// DecodeBlock parses untrusted block bytes and checks the tx root and count.
func (c *Codec) DecodeBlock(data []byte) (*Block, error) {
	if len(data) > MaxBlockBytes {
		return nil, fmt.Errorf("ledger: block: %d bytes > %d: %w", len(data), MaxBlockBytes, ErrMalformed)
	}
	var b Block
	if err := c.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("ledger: block: %w", err)
	}
	if b.Header.Version != BlockVersion {
		return nil, fmt.Errorf("ledger: block: version %d not supported: %w", b.Header.Version, ErrMalformed)
	}
	if int(b.Header.NumTxs) != len(b.Txs) {
		return nil, fmt.Errorf("ledger: block %d: header says %d txs, body has %d: %w", b.Header.Height, b.Header.NumTxs, len(b.Txs), ErrMalformed)
	}
	if MerkleRoot(b.Txs) != b.Header.TxRoot {
		return nil, fmt.Errorf("ledger: block %d: tx root mismatch: %w", b.Header.Height, ErrMalformed)
	}
	return &b, nil
}

// TxHashes returns the hash of every transaction in the block.
func (b *Block) TxHashes() []Hash {
	out := make([]Hash, len(b.Txs))
	for i, t := range b.Txs {
		out[i] = HashBytes(t)
	}
	return out
}
