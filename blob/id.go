package blob

import (
	"encoding/hex"
	"fmt"

	"lukechampine.com/blake3"
)

// ID names a blob: the BLAKE3-256 hash of its content, so `b3sum FILE`
// prints the id of FILE. It is shown as 64 lowercase hex characters.
type ID [32]byte

// Sum returns the id of content p.
func Sum(p []byte) ID { return ID(blake3.Sum256(p)) }

// String is the id in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value (no blob has it in practice).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses 64 hex characters.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("blob: id %q: want %d hex characters, got %d", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("blob: id %q: %w", s, err)
	}
	return id, nil
}

// MarshalText encodes the id as hex (JSON strings, TOML, flags).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses hex.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
