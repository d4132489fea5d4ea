package ledger

import (
	"errors"
	"fmt"
)

// ErrOutOfGas is returned when a transaction exhausts its gas limit.
var ErrOutOfGas = errors.New("out of gas")

// GasSchedule prices everything a transaction does outside the Wasm VM.
// It is consensus data: changing a number changes gas_used, so the schedule
// is versioned and every change bumps Version. Calibrated so that 1 Mgas is
// about 1 ms of work on the reference machine (2 cores, SHA-NI).
type GasSchedule struct {
	Version        uint32
	TxBase         uint64 // every transaction: decode, mempool and receipt bookkeeping
	TxPerByte      uint64 // per byte of the encoded transaction (storage in blocks, network)
	SigVerify      uint64 // one ML-DSA-65 verification (≈50 µs)
	ReadBase       uint64 // one state read
	ReadPerByte    uint64 // per byte read (key + value)
	WriteBase      uint64 // one state write or delete (SMT update, Pebble write)
	WritePerByte   uint64 // per byte written (key + value)
	EventBase      uint64 // per emitted event
	EventPerByte   uint64 // per byte of event attributes
	NewAccount     uint64 // first write of an account record (state growth)
	StorePubKeyPer uint64 // per byte of the public key stored with an account's first tx
}

// DefaultGasSchedule is the schedule of protocol version 1.
func DefaultGasSchedule() GasSchedule {
	return GasSchedule{
		Version:        1,
		TxBase:         5_000,
		TxPerByte:      2,
		SigVerify:      50_000,
		ReadBase:       1_000,
		ReadPerByte:    1,
		WriteBase:      3_000,
		WritePerByte:   10,
		EventBase:      500,
		EventPerByte:   2,
		NewAccount:     10_000,
		StorePubKeyPer: 2,
	}
}

// GasMeter counts gas against a limit. Not safe for concurrent use: each
// transaction has its own.
type GasMeter struct {
	limit, used uint64
	items       *[]GasItem // non-nil: every charge is recorded (tracing)
}

// GasItem is one charge on a recording meter: what it paid for and how much.
type GasItem struct {
	What string `json:"what"`
	Gas  uint64 `json:"gas"`
}

// Record makes the meter keep every charge from now on (for tracing a
// transaction; charges and limits are the same either way).
func (g *GasMeter) Record() {
	if g.items == nil {
		g.items = new([]GasItem)
	}
}

// Items returns the charges recorded since Record, in order; they sum to
// Used() when Record was called on the fresh meter.
func (g *GasMeter) Items() []GasItem {
	if g.items == nil {
		return nil
	}
	return *g.items
}

// NewGasMeter returns a meter with a limit.
func NewGasMeter(limit uint64) *GasMeter { return &GasMeter{limit: limit} }

// Consume charges amount; on exhaustion used is pinned to the limit and
// ErrOutOfGas (with what was being paid for) is returned.
func (g *GasMeter) Consume(amount uint64, what string) error {
	if g.items != nil {
		*g.items = append(*g.items, GasItem{What: what, Gas: min(amount, g.limit-g.used)})
	}
	if amount > g.limit-g.used {
		g.used = g.limit
		return fmt.Errorf("%w: %s needs %d gas, %d left", ErrOutOfGas, what, amount, g.limit-g.used)
	}
	g.used += amount
	return nil
}

// Used returns gas consumed so far.
func (g *GasMeter) Used() uint64 { return g.used }

// Limit returns the meter's limit.
func (g *GasMeter) Limit() uint64 { return g.limit }

// Remaining returns limit - used.
func (g *GasMeter) Remaining() uint64 { return g.limit - g.used }

// SetUsed is for the VM, which counts inside Wasm and reports back.
func (g *GasMeter) SetUsed(u uint64) {
	if u > g.limit {
		u = g.limit
	}
	if g.items != nil && u > g.used {
		*g.items = append(*g.items, GasItem{What: "vm", Gas: u - g.used})
	}
	g.used = u
}
