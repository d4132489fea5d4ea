package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// AddressPrefix is the human-readable part of every account address.
const AddressPrefix = "sos"

// AddressSize is the length of an address in bytes. 32 bytes keep collision
// resistance at 128 bits even against a quantum adversary (Grover/BHT), which
// is the point of moving accounts to ML-DSA in the first place.
const AddressSize = 32

// Address identifies an account or a contract. For a key-controlled account
// it is SHA-256("sos/address/v1" || 0x00 || ML-DSA-65 public key); contract
// addresses are derived the same way from a different domain (see package
// contracts).
type Address [AddressSize]byte

// AddressFromPublicKey derives the account address of an ML-DSA-65 public key.
func AddressFromPublicKey(pub []byte) Address {
	return DeriveAddress("sos/address/v1", pub)
}

// DeriveAddress hashes parts under a domain into an address. Each domain must
// be unique so that addresses of different kinds can never collide.
func DeriveAddress(domain string, parts ...[]byte) Address {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	for _, p := range parts {
		h.Write(p)
	}
	var a Address
	h.Sum(a[:0])
	return a
}

// String renders the address as bech32 ("sos1...").
func (a Address) String() string { return bech32Encode(AddressPrefix, a[:]) }

// IsZero reports whether a is the zero address (never a valid account).
func (a Address) IsZero() bool { return a == Address{} }

// Compare orders addresses bytewise.
func (a Address) Compare(b Address) int { return bytes.Compare(a[:], b[:]) }

// Hex renders the raw bytes in hex (for logs and state keys in debugging).
func (a Address) Hex() string { return hex.EncodeToString(a[:]) }

// ParseAddress parses a bech32 address with the "sos" prefix.
func ParseAddress(s string) (Address, error) {
	hrp, data, err := bech32Decode(s)
	if err != nil {
		return Address{}, fmt.Errorf("ledger: address %q: %w", s, err)
	}
	if hrp != AddressPrefix {
		return Address{}, fmt.Errorf("ledger: address %q: prefix %q, want %q", s, hrp, AddressPrefix)
	}
	if len(data) != AddressSize {
		return Address{}, fmt.Errorf("ledger: address %q: %d bytes, want %d", s, len(data), AddressSize)
	}
	var a Address
	copy(a[:], data)
	return a, nil
}

// MarshalText implements encoding.TextMarshaler (JSON shows bech32).
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Address) UnmarshalText(b []byte) error {
	p, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}
