package sdk

import (
	"fmt"

	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/hostabi"
)

// AddressPrefix is the human-readable part of every address ("sos1...").
const AddressPrefix = "sos"

// Address identifies an account or a contract: 32 raw bytes, shown in bech32.
// It marshals to and from JSON as its bech32 string, so messages can carry
// addresses as typed fields.
type Address hostabi.Address

// String renders a in bech32 ("sos1..."). Inside the VM it asks the node
// (addr_to_string); natively it encodes with the SDK's own BIP-173 codec.
func (a Address) String() string { return addrToString(a) }

// IsZero reports whether a is the zero address (never a valid account).
func (a Address) IsZero() bool { return a == Address{} }

// ParseAddress parses a bech32 address with the "sos" prefix.
func ParseAddress(s string) (Address, error) {
	a, ok := addrFromString(s)
	if !ok {
		return Address{}, fmt.Errorf("%w: %q", ErrInvalidAddress, s)
	}
	return a, nil
}

// MarshalText implements encoding.TextMarshaler.
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
