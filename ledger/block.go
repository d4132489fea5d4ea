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

// EncodeBlock returns the canonical bytes of a block. Blocks are large (a
// block of 5,000 ML-DSA transfers is 17 MB), so the outer array is written
// by hand into one buffer of the right size instead of through the
// reflective encoder, which grows its buffer step by step; the result is
// byte-for-byte the canonical CBOR (a test checks both paths agree).
func (c *Codec) EncodeBlock(b *Block) ([]byte, error) {
	hdr, err := c.Marshal(&b.Header)
	if err != nil {
		return nil, fmt.Errorf("ledger: block %d: encode header: %w", b.Header.Height, err)
	}
	size := 1 + len(hdr) + 9 + len(b.Signature) + 9
	for _, t := range b.Txs {
		size += 9 + len(t)
	}
	out := make([]byte, 0, size)
	out = append(out, 0x83) // array(3): header, signature, txs
	out = append(out, hdr...)
	out = appendBytes(out, b.Signature)
	if b.Txs == nil {
		out = append(out, 0xf6) // null, as the reflective encoder writes a nil slice
	} else {
		out = appendHead(out, 4, uint64(len(b.Txs)))
		for _, t := range b.Txs {
			out = appendBytes(out, t)
		}
	}
	return out, nil
}

// appendHead writes a CBOR major type with its argument in shortest form.
func appendHead(out []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(out, m|byte(n))
	case n <= 0xff:
		return append(out, m|24, byte(n))
	case n <= 0xffff:
		return append(out, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(out, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendBytes writes a byte string (nil as null, like the reflective encoder).
func appendBytes(out, b []byte) []byte {
	if b == nil {
		return append(out, 0xf6)
	}
	return append(appendHead(out, 2, uint64(len(b))), b...)
}

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
