package ledger

import "fmt"

// Code is a receipt status. 0 is success; every other value names why the
// transaction failed. Codes are consensus data: never renumber.
type Code uint32

// Receipt codes.
const (
	CodeOK                Code = 0
	CodeOutOfGas          Code = 1
	CodeInsufficientFunds Code = 2
	CodeUnknownDenom      Code = 3
	CodeInvalidPayload    Code = 4
	CodeOverflow          Code = 5
	CodeUnauthorized      Code = 6
	CodeNotFound          Code = 7
	CodeContractError     Code = 8
	CodeContractTrap      Code = 9
	CodeLimitExceeded     Code = 10
	CodeInternal          Code = 99
)

func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeOutOfGas:
		return "out of gas"
	case CodeInsufficientFunds:
		return "insufficient funds"
	case CodeUnknownDenom:
		return "unknown denom"
	case CodeInvalidPayload:
		return "invalid payload"
	case CodeOverflow:
		return "amount overflow"
	case CodeUnauthorized:
		return "unauthorized"
	case CodeNotFound:
		return "not found"
	case CodeContractError:
		return "contract error"
	case CodeContractTrap:
		return "contract trap"
	case CodeLimitExceeded:
		return "limit exceeded"
	case CodeInternal:
		return "internal error"
	}
	return fmt.Sprintf("code(%d)", uint32(c))
}

// Attr is one key/value of an event.
type Attr struct {
	_     struct{} `cbor:",toarray"`
	Key   string   `json:"key"`
	Value string   `json:"value"`
}

// Event is something a transaction did that clients index or display.
type Event struct {
	_     struct{} `cbor:",toarray"`
	Type  string   `json:"type"`
	Attrs []Attr   `json:"attrs"`
}

// NewEvent builds an event from key/value pairs.
func NewEvent(typ string, kv ...string) Event {
	e := Event{Type: typ, Attrs: make([]Attr, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attrs = append(e.Attrs, Attr{Key: kv[i], Value: kv[i+1]})
	}
	return e
}

// Receipt is the result of executing one transaction.
type Receipt struct {
	_       struct{} `cbor:",toarray"`
	TxHash  Hash     `json:"tx_hash"`
	Height  uint64   `json:"height"`
	Index   uint32   `json:"index"`
	Code    Code     `json:"code"`
	GasUsed uint64   `json:"gas_used"`
	Fee     Coin     `json:"fee"`
	Events  []Event  `json:"events"`
	Error   string   `json:"error,omitempty"`
	Data    []byte   `json:"data,omitempty"` // result bytes (e.g. a contract's response)
}
