package ledger

import (
	"fmt"
)

// PayloadKind tags what a transaction does. The numbering is part of the
// consensus encoding: never reuse or renumber a kind. Ranges are reserved
// per subsystem so later kinds slot in without touching earlier ones:
// 1–15 tokens, 16–31 contracts, 32–63 ROME market, 64–79 governance,
// 80–95 cluster membership.
type PayloadKind uint16

// Payload kinds.
const (
	KindTransfer PayloadKind = 1
)

// Payload is the body of a transaction: exactly one kind of action.
type Payload interface {
	Kind() PayloadKind
	// ValidateBasic checks what can be checked without state.
	ValidateBasic() error
}

// Transfer moves tokens from the sender to another account.
type Transfer struct {
	_      struct{} `cbor:",toarray"`
	To     Address  `json:"to"`
	Amount Coins    `json:"amount"`
}

// Kind implements Payload.
func (*Transfer) Kind() PayloadKind { return KindTransfer }

// ValidateBasic implements Payload.
func (t *Transfer) ValidateBasic() error {
	if t.To.IsZero() {
		return fmt.Errorf("ledger: transfer: zero recipient")
	}
	if len(t.Amount) == 0 {
		return fmt.Errorf("ledger: transfer: no amount")
	}
	return t.Amount.Validate()
}

// newPayload returns an empty payload of a kind, or nil for unknown kinds.
// A switch, not a registry: the set of kinds is part of the protocol.
func newPayload(k PayloadKind) Payload {
	switch k {
	case KindTransfer:
		return &Transfer{}
	}
	return nil
}

// KindName is a readable name of a payload kind for receipts, logs and the TUI.
func (k PayloadKind) String() string {
	switch k {
	case KindTransfer:
		return "transfer"
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}
