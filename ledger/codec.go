package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ErrMalformed classifies bytes that do not decode to a canonical value:
// truncated, trailing data, duplicate map keys, indefinite lengths, or any
// encoding other than the one canonical form (CBOR core deterministic).
var ErrMalformed = errors.New("malformed encoding")

// Codec holds the CBOR modes used for everything that is hashed or signed.
// It is immutable after NewCodec and safe for concurrent use.
type Codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// NewCodec builds the canonical codec. It panics only if the option set
// itself is invalid, which is a programmer error caught by every test.
func NewCodec() *Codec {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	dec, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   32,
		MaxArrayElements:  1 << 20,
		MaxMapPairs:       1 << 16,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return &Codec{enc: enc, dec: dec}
}

// Marshal encodes v canonically.
func (c *Codec) Marshal(v any) ([]byte, error) { return c.enc.Marshal(v) }

// Unmarshal decodes data into v and rejects anything that is not the exact
// canonical encoding of the decoded value (so one value has one byte string,
// and one hash).
func (c *Codec) Unmarshal(data []byte, v any) error {
	if err := c.dec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	again, err := c.enc.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: re-encode: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	return nil
}

// UnmarshalStored decodes a record read back from the node's own state,
// with Unmarshal's decoding options but without its canonical re-encoding
// (about a third of a small record's decode): state bytes were written by
// Marshal and are fixed by the state root, so only untrusted input needs
// the check.
func (c *Codec) UnmarshalStored(data []byte, v any) error {
	if err := c.dec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// Hash is a SHA-256 digest; JSON shows it in hex.
type Hash [32]byte

// HashBytes hashes b with SHA-256.
func HashBytes(b []byte) Hash { return sha256.Sum256(b) }

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("ledger: hash %q: want 64 hex digits", s)
	}
	copy(h[:], b)
	return h, nil
}

// MerkleRoot is the RFC 6962 binary Merkle tree root over leaves (leaf hash
// = SHA-256(0x00 || leaf), node = SHA-256(0x01 || left || right)); the root
// of no leaves is SHA-256 of the empty string. Used for tx and receipt roots.
func MerkleRoot(leaves [][]byte) Hash {
	if len(leaves) == 0 {
		return sha256.Sum256(nil)
	}
	level := make([]Hash, len(leaves))
	buf := make([]byte, 0, 65)
	for i, l := range leaves {
		h := sha256.New()
		h.Write([]byte{0})
		h.Write(l)
		h.Sum(level[i][:0])
	}
	for len(level) > 1 {
		next := level[:0:0]
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				continue
			}
			buf = append(buf[:0], 1)
			buf = append(buf, level[i][:]...)
			buf = append(buf, level[i+1][:]...)
			next = append(next, sha256.Sum256(buf))
		}
		level = next
	}
	return level[0]
}
