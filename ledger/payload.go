package ledger

import (
	"encoding/json"
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

	KindContractUpload      PayloadKind = 16
	KindContractInstantiate PayloadKind = 17
	KindContractExecute     PayloadKind = 18
	KindContractMigrate     PayloadKind = 19
)

// MaxContractMsgBytes bounds a contract message in a transaction.
const MaxContractMsgBytes = 256 << 10

// MaxContractSchemaBytes bounds the JSON Schema an upload may carry.
const MaxContractSchemaBytes = 256 << 10

// MaxLabelBytes bounds a contract label.
const MaxLabelBytes = 128

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

// ContractUpload stores Wasm code; its id is the SHA-256 of Wasm. Schema,
// optional, is the JSON Schema of the code's messages (the document that
// `sos contract schema` prints), stored with the code and served by the API
// so clients can check a message before sending it; it is not part of the
// code id.
type ContractUpload struct {
	_      struct{} `cbor:",toarray"`
	Wasm   []byte   `json:"-" cbor:"wasm"` // cbor tag: fxamacker would honour json:"-" and drop the field
	Schema []byte   `json:"-" cbor:"schema"`
}

// Kind implements Payload.
func (*ContractUpload) Kind() PayloadKind { return KindContractUpload }

// ValidateBasic implements Payload.
func (u *ContractUpload) ValidateBasic() error {
	if len(u.Wasm) < 8 || string(u.Wasm[:4]) != "\x00asm" {
		return fmt.Errorf("ledger: upload: not a WebAssembly module (missing \\0asm header): %w", ErrMalformed)
	}
	if len(u.Schema) > 0 {
		if len(u.Schema) > MaxContractSchemaBytes {
			return fmt.Errorf("ledger: upload: schema is %d bytes, limit %d", len(u.Schema), MaxContractSchemaBytes)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(u.Schema, &obj); err != nil {
			return fmt.Errorf("ledger: upload: schema is not a JSON object: %w", ErrMalformed)
		}
	}
	return nil
}

// MarshalJSON shows the code's size and id, not its bytes.
func (u *ContractUpload) MarshalJSON() ([]byte, error) {
	if len(u.Schema) > 0 {
		return []byte(fmt.Sprintf(`{"code_id":%q,"size":%d,"schema_size":%d}`, HashBytes(u.Wasm), len(u.Wasm), len(u.Schema))), nil
	}
	return []byte(fmt.Sprintf(`{"code_id":%q,"size":%d}`, HashBytes(u.Wasm), len(u.Wasm))), nil
}

// ContractInstantiate creates an instance of uploaded code.
type ContractInstantiate struct {
	_      struct{} `cbor:",toarray"`
	CodeID Hash     `json:"code_id"`
	Msg    []byte   `json:"msg"`
	Label  string   `json:"label"`
	Admin  Address  `json:"admin"` // zero: no admin (the instance can never migrate)
	Funds  Coins    `json:"funds"`
}

// Kind implements Payload.
func (*ContractInstantiate) Kind() PayloadKind { return KindContractInstantiate }

// ValidateBasic implements Payload.
func (p *ContractInstantiate) ValidateBasic() error {
	if len(p.Label) == 0 || len(p.Label) > MaxLabelBytes {
		return fmt.Errorf("ledger: instantiate: label must be 1-%d bytes", MaxLabelBytes)
	}
	if err := validMsg(p.Msg); err != nil {
		return fmt.Errorf("ledger: instantiate: %w", err)
	}
	return p.Funds.Validate()
}

// ContractExecute calls a contract's execute entry point.
type ContractExecute struct {
	_        struct{} `cbor:",toarray"`
	Contract Address  `json:"contract"`
	Msg      []byte   `json:"msg"`
	Funds    Coins    `json:"funds"`
}

// Kind implements Payload.
func (*ContractExecute) Kind() PayloadKind { return KindContractExecute }

// ValidateBasic implements Payload.
func (p *ContractExecute) ValidateBasic() error {
	if p.Contract.IsZero() {
		return fmt.Errorf("ledger: execute: zero contract address")
	}
	if err := validMsg(p.Msg); err != nil {
		return fmt.Errorf("ledger: execute: %w", err)
	}
	return p.Funds.Validate()
}

// ContractMigrate moves an instance to new code (admin only). Force allows a
// migration after which the contract name the instance records (the SDK's
// contract_info key, cw2-style) differs from the one it recorded before;
// without it such a migration fails.
type ContractMigrate struct {
	_        struct{} `cbor:",toarray"`
	Contract Address  `json:"contract"`
	CodeID   Hash     `json:"code_id"`
	Msg      []byte   `json:"msg"`
	Force    bool     `json:"force,omitempty"`
}

// Kind implements Payload.
func (*ContractMigrate) Kind() PayloadKind { return KindContractMigrate }

// ValidateBasic implements Payload.
func (p *ContractMigrate) ValidateBasic() error {
	if p.Contract.IsZero() {
		return fmt.Errorf("ledger: migrate: zero contract address")
	}
	if err := validMsg(p.Msg); err != nil {
		return fmt.Errorf("ledger: migrate: %w", err)
	}
	return nil
}

// validMsg: contract messages are JSON objects, bounded in size.
func validMsg(m []byte) error {
	if len(m) > MaxContractMsgBytes {
		return fmt.Errorf("message is %d bytes, limit %d", len(m), MaxContractMsgBytes)
	}
	if !json.Valid(m) {
		return fmt.Errorf("message is not valid JSON: %w", ErrMalformed)
	}
	return nil
}

// newPayload returns an empty payload of a kind, or nil for unknown kinds.
// A switch, not a registry: the set of kinds is part of the protocol.
func newPayload(k PayloadKind) Payload {
	switch k {
	case KindTransfer:
		return &Transfer{}
	case KindContractUpload:
		return &ContractUpload{}
	case KindContractInstantiate:
		return &ContractInstantiate{}
	case KindContractExecute:
		return &ContractExecute{}
	case KindContractMigrate:
		return &ContractMigrate{}
	}
	if p := newClusterPayload(k); p != nil {
		return p
	}
	return newMarketPayload(k)
}

// String is a readable name of a payload kind for receipts, logs and the TUI.
func (k PayloadKind) String() string {
	switch k {
	case KindTransfer:
		return "transfer"
	case KindContractUpload:
		return "contract_upload"
	case KindContractInstantiate:
		return "contract_instantiate"
	case KindContractExecute:
		return "contract_execute"
	case KindContractMigrate:
		return "contract_migrate"
	}
	if n := marketKindName(k); n != "" {
		return n
	}
	if n := clusterKindName(k); n != "" {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}
