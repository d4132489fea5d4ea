package ledger

import (
	"bytes"
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

	// A block from DecodeBlock remembers its bytes (decoding is canonical,
	// so they are its encoding) and that its tx root was checked: a
	// follower neither re-encodes nor re-hashes what it received. Do not
	// modify a decoded block.
	raw    []byte
	rootOK bool
}

// TxRootVerified reports whether DecodeBlock already checked the tx root
// and count against the header.
func (b *Block) TxRootVerified() bool { return b.rootOK }

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
	b.raw, b.rootOK = nil, false
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
	if b.raw != nil {
		return b.raw, nil
	}
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
		out = AppendCBORHead(out, 4, uint64(len(b.Txs)))
		for _, t := range b.Txs {
			out = appendBytes(out, t)
		}
	}
	return out, nil
}

// AppendCBORHead appends a CBOR head of major type major with its argument
// n in its shortest form, as the codec's canonical encoder writes it (for
// hand-written encoders of hot records that must match the codec byte for
// byte).
func AppendCBORHead(out []byte, major byte, n uint64) []byte {
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
	return append(AppendCBORHead(out, 2, uint64(len(b))), b...)
}

// MaxBlockBytes bounds a decoded block (network frames and the store).
const MaxBlockBytes = 256 << 20

// DecodeBlock parses untrusted block bytes and checks the tx root and count.
// Only the canonical encoding (EncodeBlock's) is accepted. The header goes
// through the canonical CBOR decoder; the signature and transactions are
// parsed here and alias data, so a block of thousands of transactions is
// not copied or re-encoded to check its form. data must not be modified
// afterwards.
func (c *Codec) DecodeBlock(data []byte) (*Block, error) {
	b, err := c.parseBlock(data)
	if err != nil {
		return nil, err
	}
	if int(b.Header.NumTxs) != len(b.Txs) {
		return nil, fmt.Errorf("ledger: block %d: header says %d txs, body has %d: %w", b.Header.Height, b.Header.NumTxs, len(b.Txs), ErrMalformed)
	}
	if MerkleRoot(b.Txs) != b.Header.TxRoot {
		return nil, fmt.Errorf("ledger: block %d: tx root mismatch: %w", b.Header.Height, ErrMalformed)
	}
	b.raw, b.rootOK = data, true
	return b, nil
}

// parseBlock checks the canonical form and version of a block encoding and
// splits it into header, signature and transactions (aliasing data), with
// no check of the transactions against the header.
func (c *Codec) parseBlock(data []byte) (*Block, error) {
	if len(data) > MaxBlockBytes {
		return nil, fmt.Errorf("ledger: block: %d bytes > %d: %w", len(data), MaxBlockBytes, ErrMalformed)
	}
	if len(data) == 0 || data[0] != 0x83 {
		return nil, fmt.Errorf("ledger: block: not an array of 3: %w", ErrMalformed)
	}
	var b Block
	rest, err := c.dec.UnmarshalFirst(data[1:], &b.Header)
	if err != nil {
		return nil, fmt.Errorf("ledger: block: header: %w: %v", ErrMalformed, err)
	}
	hdr := data[1 : len(data)-len(rest)]
	if again, err := c.enc.Marshal(&b.Header); err != nil || !bytes.Equal(again, hdr) {
		return nil, fmt.Errorf("ledger: block: header not in canonical form: %w", ErrMalformed)
	}
	if b.Signature, rest, err = cborBytesOrNull(rest); err != nil {
		return nil, fmt.Errorf("ledger: block: signature: %w", err)
	}
	if len(rest) > 0 && rest[0] == 0xf6 {
		rest = rest[1:]
	} else {
		n, r, err := cborHead(rest, 4)
		if err != nil {
			return nil, fmt.Errorf("ledger: block: txs: %w", err)
		}
		if n > uint64(len(r)) { // every tx takes at least one byte
			return nil, fmt.Errorf("ledger: block: %d txs in %d bytes: %w", n, len(r), ErrMalformed)
		}
		b.Txs, rest = make([][]byte, n), r
		for i := range b.Txs {
			if b.Txs[i], rest, err = cborBytesOrNull(rest); err != nil {
				return nil, fmt.Errorf("ledger: block: tx %d: %w", i, err)
			}
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("ledger: block: %d trailing bytes: %w", len(rest), ErrMalformed)
	}
	if b.Header.Version != BlockVersion {
		return nil, fmt.Errorf("ledger: block: version %d not supported: %w", b.Header.Version, ErrMalformed)
	}
	return &b, nil
}

// cborHead reads a CBOR head of the given major type in shortest form (the
// only form canonical CBOR allows) and returns its argument.
func cborHead(b []byte, major byte) (uint64, []byte, error) {
	if len(b) == 0 {
		return 0, nil, fmt.Errorf("truncated: %w", ErrMalformed)
	}
	if b[0]>>5 != major {
		return 0, nil, fmt.Errorf("major type %d, want %d: %w", b[0]>>5, major, ErrMalformed)
	}
	ai := b[0] & 0x1f
	var n uint64
	var w int
	switch {
	case ai < 24:
		return uint64(ai), b[1:], nil
	case ai == 24:
		w = 1
	case ai == 25:
		w = 2
	case ai == 26:
		w = 4
	case ai == 27:
		w = 8
	default:
		return 0, nil, fmt.Errorf("indefinite or reserved length: %w", ErrMalformed)
	}
	if len(b) < 1+w {
		return 0, nil, fmt.Errorf("truncated: %w", ErrMalformed)
	}
	for _, c := range b[1 : 1+w] {
		n = n<<8 | uint64(c)
	}
	if min := [...]uint64{1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000}[w]; n < min {
		return 0, nil, fmt.Errorf("length not in shortest form: %w", ErrMalformed)
	}
	return n, b[1+w:], nil
}

// cborBytesOrNull reads a byte string (aliasing b) or null (nil).
func cborBytesOrNull(b []byte) ([]byte, []byte, error) {
	if len(b) > 0 && b[0] == 0xf6 {
		return nil, b[1:], nil
	}
	n, rest, err := cborHead(b, 2)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("byte string of %d bytes, %d left: %w", n, len(rest), ErrMalformed)
	}
	return rest[:n:n], rest[n:], nil
}

// TxHashes returns the hash of every transaction in the block.
func (b *Block) TxHashes() []Hash {
	out := make([]Hash, len(b.Txs))
	for i, t := range b.Txs {
		out[i] = HashBytes(t)
	}
	return out
}
