package sdktest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/bech32"
)

// Limits the harness enforces like the VM does (vm/limits.go, copied because
// the SDK imports nothing of the kernel); exceeding one traps.
const (
	MaxKeySize   = 256
	MaxValueSize = 128 << 10
	MaxEventSize = 8 << 10
	MaxCallDepth = 8
	MaxEvents    = 256 // per call
	MaxIterators = 16  // open at once, per call
)

// Errors of the harness, matched with errors.Is.
var (
	// ErrContract marks an error a contract returned; the error is a
	// *ContractError.
	ErrContract = errors.New("sdktest: contract error")
	// ErrTrap marks a call that trapped: a panic in the contract or a
	// broken ABI rule (a write inside a query, a key over the limit, call
	// depth exceeded). The whole transaction is reverted.
	ErrTrap = errors.New("sdktest: trap")
	// ErrNoContract reports an address with no contract instance.
	ErrNoContract = errors.New("sdktest: no contract")
	// ErrUnauthorized reports a migrate by an account that is not the admin.
	ErrUnauthorized = errors.New("sdktest: unauthorized")
	// ErrContractNameChanged reports a migration to code that records a
	// different contract name under sdk.ContractInfoKey, refused unless
	// forced (MigrateForce), as the node refuses it.
	ErrContractNameChanged = errors.New("sdktest: migrate changes the contract name")
)

// ContractError is an error returned by a contract handler. Msg is the text
// the chain would put in the receipt; Err is the handler's original error,
// kept so tests can match it with errors.Is (contracts calling contracts only
// ever see the text, as on the chain).
type ContractError struct {
	Entry    sdk.Entry
	Contract sdk.Address
	Msg      string
	Err      error
}

func (e *ContractError) Error() string {
	return fmt.Sprintf("sdktest: %v %v: %s", e.Entry, e.Contract, e.Msg)
}

// Unwrap returns ErrContract and the handler's error.
func (e *ContractError) Unwrap() []error { return []error{ErrContract, e.Err} }

// Config sets up an App. Zero fields take the defaults shown.
type Config struct {
	ChainID       string        // "sos-test"
	Height        uint64        // 1
	Time          time.Time     // 2025-01-01T00:00:00Z
	BlockInterval time.Duration // 5s, used by NextBlock
	// VerifyMLDSA answers the mldsa_verify host call. The standard library
	// has no ML-DSA, so there is no default: a contract that verifies
	// signatures traps unless a verifier (e.g. circl's mldsa65) is set.
	VerifyMLDSA func(pub, msg, sig, context []byte) bool
}

// App is an in-memory chain: accounts with balances per denom, a block
// height and time that tests advance, and contract instances registered by
// their Go value. Each Instantiate, Execute and Migrate is one transaction:
// if it fails, every state change it made (storage, balances, new
// instances, events) is reverted. An App is not safe for concurrent use.
type App struct {
	cfg       Config
	height    uint64
	time      time.Time
	balances  map[sdk.Address]map[string]uint64
	denoms    map[string]bool
	instances map[sdk.Address]*instance
	seq       uint64

	journal []func() // undo actions of the running transaction
	events  []Event
	log     []string

	// the calls the test made, for a gas replay on the node's engine (gas.go)
	calls []Call
	codes []codeKey // distinct contract codes, in order of first use
}

type instance struct {
	contract sdk.Contract
	admin    sdk.Address
	store    map[string][]byte
}

// Event is an event emitted by a contract during a transaction.
type Event struct {
	Contract sdk.Address
	sdk.Event
}

// Result is what a successful transaction returns.
type Result struct {
	Data   []byte   // the handler's result (JSON)
	Events []Event  // events of every contract the transaction ran, in order
	Log    []string // debug log lines (ctx.Log)
}

// New returns an empty chain.
func New(cfg Config) *App {
	if cfg.ChainID == "" {
		cfg.ChainID = "sos-test"
	}
	if cfg.Height == 0 {
		cfg.Height = 1
	}
	if cfg.Time.IsZero() {
		cfg.Time = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.BlockInterval == 0 {
		cfg.BlockInterval = 5 * time.Second
	}
	return &App{
		cfg:       cfg,
		height:    cfg.Height,
		time:      cfg.Time,
		balances:  map[sdk.Address]map[string]uint64{},
		denoms:    map[string]bool{},
		instances: map[sdk.Address]*instance{},
	}
}

func derive(domain string, parts ...[]byte) sdk.Address {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	for _, p := range parts {
		h.Write(p)
	}
	return sdk.Address(h.Sum(nil))
}

// Account returns the deterministic address of a named test account.
func (a *App) Account(name string) sdk.Address { return derive("sdktest/account", []byte(name)) }

// Mint credits coins to addr out of thin air (genesis balances, faucets).
func (a *App) Mint(addr sdk.Address, coins ...sdk.Coin) {
	for _, c := range coins {
		a.denoms[c.Denom] = true
		if a.balances[addr] == nil {
			a.balances[addr] = map[string]uint64{}
		}
		a.balances[addr][c.Denom] += c.Amount
	}
}

// Balance returns addr's balance of denom.
func (a *App) Balance(addr sdk.Address, denom string) uint64 { return a.balances[addr][denom] }

// Height returns the current block height.
func (a *App) Height() uint64 { return a.height }

// Time returns the current block time.
func (a *App) Time() time.Time { return a.time }

// NextBlock advances the chain by one block (height + 1, time + BlockInterval).
func (a *App) NextBlock() { a.AdvanceBlocks(1) }

// AdvanceBlocks advances the chain by n blocks.
func (a *App) AdvanceBlocks(n int) {
	a.height += uint64(n)
	a.time = a.time.Add(time.Duration(n) * a.cfg.BlockInterval)
}

// Events returns the events of the last transaction.
func (a *App) Events() []Event { return a.events }

// Log returns the debug log of the last call (transaction or query).
func (a *App) Log() []string { return a.log }

// Admin returns the admin of the contract at addr (the instantiating
// account; the zero address if none).
func (a *App) Admin(addr sdk.Address) sdk.Address {
	if in := a.instances[addr]; in != nil {
		return in.admin
	}
	return sdk.Address{}
}

// SetAdmin changes the admin of the contract at addr; the zero address
// leaves the contract without one, so it can no longer be migrated.
func (a *App) SetAdmin(addr, admin sdk.Address) error {
	in := a.instances[addr]
	if in == nil {
		return fmt.Errorf("%w at %v", ErrNoContract, addr)
	}
	in.admin = admin
	return nil
}

// Instantiate creates an instance of c, sending funds from sender, and runs
// its instantiate entry point with msg (JSON-encoded unless it is a []byte,
// json.RawMessage or string, which are taken as JSON text). The address is derived from the sender and a sequence
// number, so a test's addresses are the same on every run. sender becomes the
// instance's admin.
func (a *App) Instantiate(c sdk.Contract, sender sdk.Address, msg any, funds sdk.Coins) (sdk.Address, error) {
	addr := derive("sdktest/contract", sender[:], binary.BigEndian.AppendUint64(nil, a.seq))
	a.seq++
	_, err := a.tx(a.record(sdk.EntryInstantiate, sender, addr, &c, msg, funds, false), func() ([]byte, error) {
		a.setInstance(addr, &instance{contract: c, admin: sender, store: map[string][]byte{}})
		return a.send(c, sdk.EntryInstantiate, addr, sender, sender, msg, funds, false, 1)
	})
	if err != nil {
		return sdk.Address{}, err
	}
	return addr, nil
}

// Execute runs the execute entry point of the contract at addr as a
// transaction signed by sender, sending funds.
func (a *App) Execute(addr, sender sdk.Address, msg any, funds sdk.Coins) (Result, error) {
	return a.tx(a.record(sdk.EntryExecute, sender, addr, nil, msg, funds, false), func() ([]byte, error) {
		in := a.instances[addr]
		if in == nil {
			return nil, fmt.Errorf("%w at %v", ErrNoContract, addr)
		}
		return a.send(in.contract, sdk.EntryExecute, addr, sender, sender, msg, funds, false, 1)
	})
}

// Migrate moves the contract at addr to the code c and runs c's migrate
// entry point with msg. Only the admin may migrate; the instance keeps its
// address, storage and balances. Like the node, it refuses (and reverts) a
// migration after which the contract name recorded under
// sdk.ContractInfoKey differs from the one recorded before; MigrateForce
// allows it.
func (a *App) Migrate(addr, sender sdk.Address, c sdk.Contract, msg any) (Result, error) {
	return a.migrate(addr, sender, c, msg, false)
}

// MigrateForce is Migrate without the contract name check (the node's
// `sos contract migrate --force`).
func (a *App) MigrateForce(addr, sender sdk.Address, c sdk.Contract, msg any) (Result, error) {
	return a.migrate(addr, sender, c, msg, true)
}

// recordedName returns the contract name stored under sdk.ContractInfoKey
// ("" when none or unreadable), as the node reads it.
func recordedName(in *instance) string {
	var info sdk.ContractInfo
	if raw, ok := in.store[sdk.ContractInfoKey]; ok && json.Unmarshal(raw, &info) == nil {
		return info.Contract
	}
	return ""
}

func (a *App) migrate(addr, sender sdk.Address, c sdk.Contract, msg any, force bool) (Result, error) {
	return a.tx(a.record(sdk.EntryMigrate, sender, addr, &c, msg, nil, force), func() ([]byte, error) {
		in := a.instances[addr]
		if in == nil {
			return nil, fmt.Errorf("%w at %v", ErrNoContract, addr)
		}
		if in.admin.IsZero() || in.admin != sender {
			return nil, fmt.Errorf("%w: migrate %v by %v (admin %v)", ErrUnauthorized, addr, sender, in.admin)
		}
		old := in.contract
		in.contract = c
		a.journal = append(a.journal, func() { in.contract = old })
		before := recordedName(in)
		data, err := a.send(c, sdk.EntryMigrate, addr, sender, sender, msg, nil, false, 1)
		if err == nil && !force && before != "" {
			if after := recordedName(in); after != before {
				return nil, fmt.Errorf("%w: %v records %q, the new code %q (force to migrate anyway)", ErrContractNameChanged, addr, before, after)
			}
		}
		return data, err
	})
}

// Query runs the query entry point of the contract at addr and decodes its
// JSON result into out (skipped when out is nil).
func (a *App) Query(addr sdk.Address, msg any, out any) error {
	res, err := a.QueryRaw(addr, msg)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("sdktest: query %v: decode result: %w", addr, err)
	}
	return nil
}

// QueryRaw runs the query entry point of the contract at addr and returns
// its result as it is.
func (a *App) QueryRaw(addr sdk.Address, msg any) ([]byte, error) {
	events := a.events // a query is not a transaction: keep the last one's events
	defer func() { a.events = events }()
	res, err := a.tx(a.record(sdk.EntryQuery, sdk.Address{}, addr, nil, msg, nil, false), func() ([]byte, error) {
		in := a.instances[addr]
		if in == nil {
			return nil, fmt.Errorf("%w at %v", ErrNoContract, addr)
		}
		return a.send(in.contract, sdk.EntryQuery, addr, sdk.Address{}, sdk.Address{}, msg, nil, true, 1)
	})
	return res.Data, err
}

// tx runs fn as one transaction (the call c records, if any): on error or
// trap every change is undone.
func (a *App) tx(c *Call, fn func() ([]byte, error)) (res Result, err error) {
	a.journal, a.events, a.log = nil, nil, nil
	defer func() {
		if r := recover(); r != nil {
			err = trapError(r)
		}
		if c != nil {
			c.Failed = err != nil
			a.calls = append(a.calls, *c)
		}
		if err != nil {
			a.revert(0)
			a.events = nil
			res = Result{Log: a.log}
		}
		a.journal = nil
	}()
	data, err := fn()
	return Result{Data: data, Events: a.events, Log: a.log}, err
}

type trap string

func trapError(r any) error {
	if t, ok := r.(trap); ok {
		return fmt.Errorf("%w: %s", ErrTrap, string(t))
	}
	return fmt.Errorf("%w: panic: %v", ErrTrap, r)
}

func (a *App) revert(mark int) {
	for i := len(a.journal) - 1; i >= mark; i-- {
		a.journal[i]()
	}
	a.journal = a.journal[:mark]
}

func (a *App) setInstance(addr sdk.Address, in *instance) {
	a.instances[addr] = in
	a.journal = append(a.journal, func() { delete(a.instances, addr) })
}

func (a *App) setBalance(addr sdk.Address, denom string, n uint64) {
	if a.balances[addr] == nil {
		a.balances[addr] = map[string]uint64{}
	}
	old, had := a.balances[addr][denom]
	a.balances[addr][denom] = n
	a.journal = append(a.journal, func() {
		if had {
			a.balances[addr][denom] = old
		} else {
			delete(a.balances[addr], denom)
		}
	})
}

// move sends coins; it changes nothing when a balance is short.
func (a *App) move(from, to sdk.Address, coins sdk.Coins) error {
	need := map[string]uint64{}
	for _, c := range coins {
		need[c.Denom] += c.Amount
	}
	for _, c := range coins {
		if have := a.balances[from][c.Denom]; have < need[c.Denom] {
			return fmt.Errorf("%w: %v has %d%s, needs %d%s", sdk.ErrInsufficientFunds, from, have, c.Denom, need[c.Denom], c.Denom)
		}
	}
	for _, c := range coins {
		if c.Amount == 0 || from == to {
			continue
		}
		a.setBalance(from, c.Denom, a.balances[from][c.Denom]-c.Amount)
		a.setBalance(to, c.Denom, a.balances[to][c.Denom]+c.Amount)
	}
	return nil
}

// send moves funds and runs entry e of c at addr. A handler error reverts
// the call's own changes and comes back as a *ContractError; a trap panics
// through to tx.
func (a *App) send(c sdk.Contract, e sdk.Entry, addr, sender, caller sdk.Address, msg any, funds sdk.Coins, readonly bool, depth int) ([]byte, error) {
	input, err := encode(msg)
	if err != nil {
		return nil, err
	}
	mark := len(a.journal)
	if err := a.move(caller, addr, funds); err != nil {
		return nil, err
	}
	var fundsJSON []byte
	if len(funds) > 0 {
		fundsJSON, _ = json.Marshal(funds) // cannot fail
	}
	f := &frame{
		app: a, self: addr, sender: sender, caller: caller, entry: e,
		input: input, funds: fundsJSON, readonly: readonly, depth: depth,
	}
	if c.Serve(e, f) != 0 {
		a.revert(mark)
		return nil, &ContractError{Entry: e, Contract: addr, Msg: string(f.result), Err: f.err}
	}
	return f.result, nil
}

func encode(msg any) ([]byte, error) {
	switch m := msg.(type) {
	case []byte:
		return m, nil
	case json.RawMessage:
		return m, nil
	case string:
		return []byte(m), nil
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("sdktest: encode message: %w", err)
	}
	return b, nil
}

// ParseAddress parses a bech32 "sos1..." address (the same as
// sdk.ParseAddress natively).
func ParseAddress(s string) (sdk.Address, error) { return sdk.ParseAddress(s) }

func addrString(a [32]byte) string { return bech32.Encode(sdk.AddressPrefix, a[:]) }

func storeKeyLess(x, y string) int { return bytes.Compare([]byte(x), []byte(y)) }

// OnChain is the event as the chain records it in a receipt: type
// "wasm-<type>", with the attribute contract=<address> before the
// contract's own. (Contract addresses differ: the harness derives its own.)
func (e Event) OnChain() sdk.Event {
	attrs := append([]sdk.Attr{{Key: "contract", Value: e.Contract.String()}}, e.Attrs...)
	return sdk.Event{Type: "wasm-" + e.Type, Attrs: attrs}
}
