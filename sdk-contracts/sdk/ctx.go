package sdk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/hostabi"
)

// Ctx is a handler's view of the chain during one call: the block, the
// addresses involved, the funds sent, storage (through Item and Map), token
// transfers, events and calls to other contracts. A Ctx is valid only during
// the handler call it was passed to.
type Ctx struct {
	host  hostabi.Host
	entry Entry
	// describe, when set, asks a handler made by Handler to store its
	// message type there instead of running (see Contract.Schema).
	describe *reflect.Type
}

// Entry returns the entry point being run.
func (c *Ctx) Entry() Entry { return c.entry }

// BlockHeight returns the height of the block being executed.
func (c *Ctx) BlockHeight() uint64 { return uint64(c.host.BlockHeight()) }

// BlockTime returns the block time (millisecond precision, UTC). It is the
// only clock a contract has; time.Now inside the VM returns it too.
func (c *Ctx) BlockTime() time.Time { return time.UnixMilli(c.host.BlockTimeMillis()).UTC() }

// ChainID returns the chain's id.
func (c *Ctx) ChainID() string { return c.host.ChainID() }

// Self returns this contract's address.
func (c *Ctx) Self() Address { return Address(c.host.Self()) }

// Sender returns the account that signed the transaction.
func (c *Ctx) Sender() Address { return Address(c.host.Sender()) }

// Caller returns the immediate caller: the sender, or the contract that
// called this one. Authorization checks almost always want Caller.
func (c *Ctx) Caller() Address { return Address(c.host.Caller()) }

// Funds returns the coins sent with this call (already credited to Self).
// It panics if the host sends malformed JSON, which is a node bug.
func (c *Ctx) Funds() Coins {
	var cs Coins
	if b := c.host.Funds(); len(b) > 0 {
		if err := json.Unmarshal(b, &cs); err != nil {
			panic(fmt.Sprintf("sdk: host sent malformed funds %q: %v", b, err))
		}
	}
	return cs
}

// Balance returns addr's balance of denom.
func (c *Ctx) Balance(addr Address, denom string) uint64 {
	return c.host.Balance(hostabi.Address(addr), denom)
}

// Transfer sends amount of denom from this contract to to. It fails with
// ErrInsufficientFunds or ErrUnknownDenom.
func (c *Ctx) Transfer(to Address, denom string, amount uint64) error {
	switch c.host.Transfer(hostabi.Address(to), denom, amount) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: transfer of %d%s to %v", ErrInsufficientFunds, amount, denom, to)
	case 2:
		return fmt.Errorf("%w: %q", ErrUnknownDenom, denom)
	default:
		return fmt.Errorf("sdk: transfer of %d%s to %v failed", amount, denom, to)
	}
}

// Event is a typed record added to the transaction's receipt.
type Event struct {
	Type  string `json:"type"`
	Attrs []Attr `json:"attrs"`
}

// Attr is one key/value attribute of an Event.
type Attr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Emit adds an event of type typ with attributes given as alternating keys
// and values: ctx.Emit("transfer", "from", a, "to", b). It panics on an odd
// number of strings, a programmer error.
func (c *Ctx) Emit(typ string, kv ...string) {
	if len(kv)%2 != 0 {
		panic("sdk: Emit needs key/value pairs, got an odd number of strings")
	}
	e := Event{Type: typ, Attrs: make([]Attr, 0, len(kv)/2)}
	for i := 0; i < len(kv); i += 2 {
		e.Attrs = append(e.Attrs, Attr{Key: kv[i], Value: kv[i+1]})
	}
	b, _ := json.Marshal(e) // cannot fail: strings only
	c.host.EmitEvent(b)
}

// Call executes contract addr with msg (JSON-encoded unless it is a []byte,
// json.RawMessage or string, which are taken as JSON text), sending funds from this contract. It returns the callee's
// result. If the callee fails, its state changes are reverted, this call
// continues, and the error wraps ErrCallFailed with the callee's error text.
// Returning that error from the handler reverts this contract's writes too.
func (c *Ctx) Call(addr Address, msg any, funds Coins) ([]byte, error) {
	m, err := encodeMessage(msg)
	if err != nil {
		return nil, err
	}
	var f []byte
	if len(funds) > 0 {
		f, _ = json.Marshal(funds) // cannot fail
	}
	res, ok := c.host.Call(hostabi.Address(addr), m, f)
	if !ok {
		return nil, fmt.Errorf("%w: %v: %s", ErrCallFailed, addr, res)
	}
	return res, nil
}

// Query queries contract addr read-only with msg and decodes its JSON result
// into out (skipped when out is nil).
func (c *Ctx) Query(addr Address, msg any, out any) error {
	m, err := encodeMessage(msg)
	if err != nil {
		return err
	}
	res, ok := c.host.QueryContract(hostabi.Address(addr), m)
	if !ok {
		return fmt.Errorf("%w: %v: %s", ErrCallFailed, addr, res)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("sdk: query %v: decode result: %w", addr, err)
	}
	return nil
}

// Sha256 returns the SHA-256 digest of data, computed by the node (about 40
// times faster than hashing inside the VM).
func (c *Ctx) Sha256(data []byte) [32]byte { return c.host.Sha256(data) }

// Blake3 returns the 32-byte BLAKE3 digest of data, computed by the node.
func (c *Ctx) Blake3(data []byte) [32]byte { return c.host.Blake3(data) }

// VerifyMLDSA reports whether sig is a valid ML-DSA-65 signature of msg by
// public key pub under the FIPS 204 context string context.
func (c *Ctx) VerifyMLDSA(pub, msg, sig, context []byte) bool {
	return c.host.MLDSAVerify(pub, msg, sig, context)
}

// Log appends msg to the debug log. The log is outside consensus, capped,
// and its tail is the reason shown when a call traps.
func (c *Ctx) Log(msg string) { c.host.DebugLog([]byte(msg)) }

// Logf is Log with fmt formatting.
func (c *Ctx) Logf(format string, args ...any) { c.Log(fmt.Sprintf(format, args...)) }
