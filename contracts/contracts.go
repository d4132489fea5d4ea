package contracts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// Errors (matched with errors.Is).
var (
	ErrNoCode       = errors.New("contracts: no such code")
	ErrNoContract   = errors.New("contracts: no such contract")
	ErrUnauthorized = errors.New("contracts: unauthorized")
	ErrReentrancy   = errors.New("contracts: re-entrant call")
	ErrContract     = errors.New("contracts: contract returned an error")
	ErrNoMigrate    = errors.New("contracts: code has no migrate entry point")
	// ErrNoSchema reports code uploaded without a message schema.
	ErrNoSchema = errors.New("contracts: code has no schema")
	// ErrSchema reports a schema an upload cannot store: not a contract
	// schema document, or code that already has one.
	ErrSchema = errors.New("contracts: schema")
	// ErrContractNameChanged reports a migration after which the contract
	// name the instance records (ContractInfoKey) differs from the one it
	// recorded before; the migrate transaction's Force flag allows it.
	ErrContractNameChanged = errors.New("contracts: migration changes the contract name")
)

// ContractInfoKey is the key, in a contract's own storage, of its name and
// version: {"contract":"NAME","version":"V"} (the cw2 convention, written by
// the SDK's Contract.Name/Version). Migrate compares the name before and
// after the new code's migrate entry point ran.
const ContractInfoKey = "contract_info"

// SchemaFormat is the schema_format an uploaded schema must declare (the
// SDK's sdk.SchemaFormat).
const SchemaFormat = "sos-contract-schema/v1"

// Gas charged outside the VM. The VM charges the work of an upload
// (vm.VM.Prepare: validation, instrumentation, compilation, initialization,
// snapshot, all metered against the transaction's gas), and per call the
// module load (cold calls only: see the warm code set, warm.go), the
// instructions and the host calls.
const (
	// GasUploadPerByte is charged per uploaded byte before anything else:
	// hashing the upload into its code id and the deduplication lookup
	// (SHA-256 of a 3.5 MB module takes ≈2 ms).
	GasUploadPerByte = 2
	// GasCodeStorePerByte is charged per byte of the prepared module
	// written to state: state growth, priced like a storage write
	// (ledger's WritePerByte).
	GasCodeStorePerByte = 10
	GasInstantiate      = 20_000 // instance record, address derivation
	// GasCallBase is charged by every call (instantiate, execute, query,
	// migrate, and each nested call): reading the instance record and the
	// code's warm record, writing the instance record back, and the VM's
	// side of a call (acquiring and resetting an instance): ≈14–20 µs for
	// a call of an empty contract from a transaction, ≈9.5 µs for a nested
	// one, whose records the transaction has read already
	// (vm/adversarial: call/empty, nested/wide-1000).
	GasCallBase = 15_000
)

// Key layout.
const (
	tagCode     byte = 0x01
	tagCodeWasm byte = 0x02
	tagInstance byte = 0x03
	tagStore    byte = 0x04
	tagSeq      byte = 0x05
	tagSchema   byte = 0x06
	tagWarmUse  byte = 0x07 // code id → last use (height) of a warm code
	tagWarmSet  byte = 0x08 // → the warm code ids, in the order they became warm
)

func key(tag byte, parts ...[]byte) []byte {
	k := []byte{ledger.PrefixContract, tag}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// CodeInfo describes uploaded code.
type CodeInfo struct {
	_         struct{}       `cbor:",toarray"`
	Creator   ledger.Address `json:"creator"`
	Size      uint32         `json:"size"`
	Prepared  uint32         `json:"prepared_size"`
	Height    uint64         `json:"height"`
	Instances uint64         `json:"instances"`
	Exports   []string       `json:"exports"`
}

// Instance describes a contract instance.
type Instance struct {
	_       struct{}       `cbor:",toarray"`
	CodeID  ledger.Hash    `json:"code_id"`
	Creator ledger.Address `json:"creator"`
	Admin   ledger.Address `json:"admin"`
	Label   string         `json:"label"`
	Height  uint64         `json:"height"`
	Calls   uint64         `json:"calls"`
	GasUsed uint64         `json:"gas_used"`
}

// Engine runs contracts on a VM. It is safe for concurrent use; each call
// works on the State it is given.
type Engine struct {
	vm       *vm.VM
	codec    *ledger.Codec
	denoms   *ledger.Denoms
	warmSize int // the chain's warm set size (ledger.Params.WarmSetSize)

	// prepared caches stored modules by code id: they are content-addressed
	// and immutable, and reading 3 MB from the store per call would dominate.
	mu       sync.Mutex
	prepared map[ledger.Hash][]byte
	order    []ledger.Hash
}

// New returns an engine whose warm code set holds warmCodes codes (the
// chain's ledger.Params.WarmSetSize: consensus). The VM must be able to
// pin that many modules (vm.VM.PinCapacity: its ModuleCacheSize less
// vm.MinUnpinnedModules).
func New(v *vm.VM, codec *ledger.Codec, denoms *ledger.Denoms, warmCodes int) (*Engine, error) {
	if warmCodes < 1 || warmCodes > v.PinCapacity() {
		return nil, fmt.Errorf("contracts: a warm set of %d codes needs a VM that pins 1 to %d modules: %w (raise vm.Config.ModuleCacheSize to at least %d)",
			warmCodes, v.PinCapacity(), vm.ErrLimit, warmCodes+vm.MinUnpinnedModules)
	}
	return &Engine{vm: v, codec: codec, denoms: denoms, warmSize: warmCodes, prepared: make(map[ledger.Hash][]byte)}, nil
}

// Tx is the context of one transaction's contract work.
type Tx struct {
	St      *ledger.State
	Gas     *ledger.GasMeter
	ChainID string
	Height  uint64
	TimeMs  int64
	Sender  ledger.Address
	TxHash  ledger.Hash
	Events  []ledger.Event // appended by successful calls
	// Trace, when set, receives the tree of contract calls with their gas
	// by part and debug logs (`sos tx trace`, simulate). It changes
	// nothing else.
	Trace *TxTrace
	// Touched, when set, collects every contract the transaction called
	// (nested calls included, failed ones too), once each, for the
	// transaction index.
	Touched *[]ledger.Address

	calls int  // counts calls, for distinct random seeds
	query bool // a Query: St is never written (the warm records neither)
}

// TxTrace is the contract calls of one transaction, as a tree.
type TxTrace struct {
	Calls []*CallTrace `json:"calls"`
}

// CallTrace is one contract call: its gas in total (GasUsed, nested calls
// included) and by part. CallBase + WarmGas + LoadGas + InstructionGas +
// the Host gas + the nested calls' GasUsed = GasUsed.
type CallTrace struct {
	Contract       string       `json:"contract"`
	Entry          string       `json:"entry"`
	Depth          int          `json:"depth"`
	GasLimit       uint64       `json:"gas_limit"`
	GasUsed        uint64       `json:"gas_used"`
	CallBase       uint64       `json:"call_base_gas"`
	WarmGas        uint64       `json:"warm_gas"` // the warm code set's bookkeeping: recording a warm code's use, or making a cold one warm
	LoadGas        uint64       `json:"load_gas"`
	InstructionGas uint64       `json:"instruction_gas"`
	Host           []vm.HostGas `json:"host"`
	Calls          []*CallTrace `json:"calls,omitempty"`
	Log            string       `json:"log,omitempty"` // debug_log (ctx.Logf) and stdout/stderr
	Error          string       `json:"error,omitempty"`
}

func (e *Engine) accounts(st *ledger.State) *ledger.Accounts {
	return &ledger.Accounts{St: st, Codec: e.codec}
}

// Upload stores wasm (after validation, metering, compilation and
// pre-initialization, all paid from tx.Gas: see vm.VM.Prepare), makes it
// warm, and returns its code id. Uploading the same bytes again returns the same id and
// costs only GasUploadPerByte.
//
// schema, when not empty, is the JSON Schema document of the code's
// messages (see SchemaFormat), stored with the code at GasCodeStorePerByte.
// A deduplicated upload may add the schema to code that has none, when its
// sender uploaded the code; any other schema on a deduplicated upload fails
// with ErrSchema (a code's schema never changes once stored).
func (e *Engine) Upload(ctx context.Context, tx *Tx, wasm, schema []byte) (ledger.Hash, error) {
	if err := tx.Gas.Consume(GasUploadPerByte*uint64(len(wasm)+len(schema)), "contract upload"); err != nil {
		return ledger.Hash{}, err
	}
	id := ledger.HashBytes(wasm)
	if len(schema) > 0 {
		if err := checkSchema(schema); err != nil {
			return id, err
		}
	}
	if ci, err := e.code0(tx.St, id); err != nil {
		return id, err
	} else if ci != nil {
		attrs := []string{"code_id", id.String(), "deduplicated", "true"}
		if len(schema) > 0 {
			if err := e.attachSchema(tx, id, ci, schema); err != nil {
				return id, err
			}
			attrs = append(attrs, "schema_size", strconv.Itoa(len(schema)))
		}
		tx.Events = append(tx.Events, ledger.NewEvent("upload", attrs...))
		return id, nil
	}
	prepared, info, err := prepare(ctx, e.vm, tx.Gas, id, wasm)
	if err != nil {
		return id, fmt.Errorf("contracts: upload: %w", err)
	}
	if err := tx.Gas.Consume(GasCodeStorePerByte*uint64(len(prepared)), "storing the prepared code"); err != nil {
		return id, err
	}
	for _, need := range []string{"instantiate", "execute", "query"} {
		if !slices.Contains(info.Exports, need) {
			return id, fmt.Errorf("contracts: upload: module does not export %q: %w", need, vm.ErrInvalidModule)
		}
	}
	ci := CodeInfo{Creator: tx.Sender, Size: uint32(len(wasm)), Prepared: uint32(len(prepared)), Height: tx.Height, Exports: info.Exports}
	if err := e.put(tx.St, key(tagCode, id[:]), &ci); err != nil {
		return id, err
	}
	tx.St.Set(key(tagCodeWasm, id[:]), prepared)
	attrs := []string{"code_id", id.String(), "size", strconv.Itoa(len(wasm)), "prepared_size", strconv.Itoa(len(prepared))}
	if len(schema) > 0 {
		if err := tx.Gas.Consume(GasCodeStorePerByte*uint64(len(schema)), "storing the schema"); err != nil {
			return id, err
		}
		tx.St.Set(key(tagSchema, id[:]), schema)
		attrs = append(attrs, "schema_size", strconv.Itoa(len(schema)))
	}
	if err := tx.Gas.Consume(e.warmGas(), "making the code warm"); err != nil {
		return id, err
	}
	if err := e.makeWarm(tx.St, id, tx.Height); err != nil {
		return id, err
	}
	e.remember(id, prepared)
	tx.Events = append(tx.Events, ledger.NewEvent("upload", attrs...))
	return id, nil
}

// checkSchema accepts a schema document: a JSON object declaring
// SchemaFormat whose entry-point members, when present, are JSON objects.
// Whether those are valid JSON Schema is the uploading client's check (the
// CLI compiles them); the chain stores the document as it is.
func checkSchema(schema []byte) error {
	var doc struct {
		Format      string          `json:"schema_format"`
		Instantiate json.RawMessage `json:"instantiate"`
		Execute     json.RawMessage `json:"execute"`
		Query       json.RawMessage `json:"query"`
		Migrate     json.RawMessage `json:"migrate"`
	}
	if err := json.Unmarshal(schema, &doc); err != nil {
		return fmt.Errorf("%w: not a JSON object: %w", ErrSchema, err)
	}
	if doc.Format != SchemaFormat {
		return fmt.Errorf("%w: schema_format is %q, want %q (print the schema with `sos contract schema`)", ErrSchema, doc.Format, SchemaFormat)
	}
	for i, part := range []json.RawMessage{doc.Instantiate, doc.Execute, doc.Query, doc.Migrate} {
		if p := bytes.TrimSpace(part); len(p) > 0 && p[0] != '{' {
			return fmt.Errorf("%w: %s is not a JSON object", ErrSchema, [...]string{"instantiate", "execute", "query", "migrate"}[i])
		}
	}
	return nil
}

// attachSchema stores schema for existing code that has none, when the
// sender is the code's creator.
func (e *Engine) attachSchema(tx *Tx, id ledger.Hash, ci *CodeInfo, schema []byte) error {
	old, err := tx.St.Get(key(tagSchema, id[:]))
	if err != nil {
		return err
	}
	if old != nil {
		if bytes.Equal(old, schema) {
			return nil
		}
		return fmt.Errorf("%w: code %s already has a different schema, and a code's schema never changes (new messages mean new code, hence a new code id)", ErrSchema, id)
	}
	if tx.Sender != ci.Creator {
		return fmt.Errorf("%w: only the uploader %s may add a schema to code %s", ErrSchema, ci.Creator, id)
	}
	if err := tx.Gas.Consume(GasCodeStorePerByte*uint64(len(schema)), "storing the schema"); err != nil {
		return err
	}
	tx.St.Set(key(tagSchema, id[:]), schema)
	return nil
}

// Schema returns the message schema stored with code id (ErrNoSchema if
// it was uploaded without one, ErrNoCode if there is no such code).
func (e *Engine) Schema(st *ledger.State, id ledger.Hash) ([]byte, error) {
	if _, err := e.Code(st, id); err != nil {
		return nil, err
	}
	b, err := st.Get(key(tagSchema, id[:]))
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSchema, id)
	}
	return b, nil
}

// code0 returns code info, or nil when there is no such code.
func (e *Engine) code0(st *ledger.State, id ledger.Hash) (*CodeInfo, error) {
	var ci CodeInfo
	ok, err := e.get(st, key(tagCode, id[:]), &ci)
	if err != nil || !ok {
		return nil, err
	}
	return &ci, nil
}

// prepare runs v.Prepare on wasm with what is left of gas (at most
// vm.MaxUploadGas) and charges what it used, also when it fails; running
// out of gas wraps ledger.ErrOutOfGas.
func prepare(ctx context.Context, v *vm.VM, gas *ledger.GasMeter, id ledger.Hash, wasm []byte) ([]byte, vm.ModuleInfo, error) {
	prepared, info, err := v.Prepare(ctx, id, wasm, min(gas.Remaining(), vm.MaxUploadGas))
	if cerr := gas.Consume(info.GasUsed, "preparing the upload"); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, vm.ErrOutOfGas) {
		err = fmt.Errorf("%w: %w", ledger.ErrOutOfGas, err)
	}
	return prepared, info, err
}

func (e *Engine) put(st *ledger.State, k []byte, v any) error {
	b, err := e.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("contracts: encode: %w", err)
	}
	st.Set(k, b)
	return nil
}

func (e *Engine) get(st *ledger.State, k []byte, v any) (bool, error) {
	raw, err := st.Get(k)
	if err != nil || raw == nil {
		return false, err
	}
	if err := e.codec.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("contracts: stored record %x: %w: %w", k, ledger.ErrCorrupt, err)
	}
	return true, nil
}

// Code returns code info.
func (e *Engine) Code(st *ledger.State, id ledger.Hash) (*CodeInfo, error) {
	var ci CodeInfo
	ok, err := e.get(st, key(tagCode, id[:]), &ci)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoCode, id)
	}
	return &ci, nil
}

// Instance returns an instance record.
func (e *Engine) Instance(st *ledger.State, addr ledger.Address) (*Instance, error) {
	var in Instance
	ok, err := e.get(st, key(tagInstance, addr[:]), &in)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoContract, addr)
	}
	return &in, nil
}

func (e *Engine) remember(id ledger.Hash, prepared []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.prepared[id]; ok {
		return
	}
	if len(e.order) >= 16 {
		delete(e.prepared, e.order[0])
		e.order = e.order[1:]
	}
	e.prepared[id] = prepared
	e.order = append(e.order, id)
}

func (e *Engine) code(st *ledger.State, id ledger.Hash) ([]byte, error) {
	e.mu.Lock()
	p, ok := e.prepared[id]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := st.Get(key(tagCodeWasm, id[:]))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoCode, id)
	}
	e.remember(id, p)
	return p, nil
}

// AddressFor derives the address of the seq-th instance of code id.
func AddressFor(id ledger.Hash, seq uint64) ledger.Address {
	return ledger.DeriveAddress("sos/contract/v1", id[:], binary.BigEndian.AppendUint64(nil, seq))
}

// Instantiate creates an instance and runs its instantiate entry point.
func (e *Engine) Instantiate(ctx context.Context, tx *Tx, id ledger.Hash, msg []byte, label string, admin ledger.Address, funds ledger.Coins) (ledger.Address, []byte, error) {
	if err := tx.Gas.Consume(GasInstantiate, "instantiate"); err != nil {
		return ledger.Address{}, nil, err
	}
	ci, err := e.Code(tx.St, id)
	if err != nil {
		return ledger.Address{}, nil, err
	}
	seqRaw, err := tx.St.Get(key(tagSeq))
	if err != nil {
		return ledger.Address{}, nil, err
	}
	var seq uint64
	if len(seqRaw) == 8 {
		seq = binary.BigEndian.Uint64(seqRaw)
	}
	tx.St.Set(key(tagSeq), binary.BigEndian.AppendUint64(nil, seq+1))
	addr := AddressFor(id, seq)
	in := Instance{CodeID: id, Creator: tx.Sender, Admin: admin, Label: label, Height: tx.Height}
	if err := e.put(tx.St, key(tagInstance, addr[:]), &in); err != nil {
		return addr, nil, err
	}
	ci.Instances++
	if err := e.put(tx.St, key(tagCode, id[:]), ci); err != nil {
		return addr, nil, err
	}
	data, err := e.run(ctx, tx, nil, addr, "instantiate", msg, funds, tx.Gas.Remaining(), false)
	if err != nil {
		return addr, nil, err
	}
	tx.Events = append(tx.Events, ledger.NewEvent("instantiate", "contract", addr.String(), "code_id", id.String(), "label", label))
	return addr, data, nil
}

// Execute runs a contract's execute entry point for the transaction's sender.
func (e *Engine) Execute(ctx context.Context, tx *Tx, addr ledger.Address, msg []byte, funds ledger.Coins) ([]byte, error) {
	return e.run(ctx, tx, nil, addr, "execute", msg, funds, tx.Gas.Remaining(), false)
}

// Migrate moves an instance to new code and runs the new code's migrate
// entry point; only the admin may. When the instance recorded a contract
// name (ContractInfoKey) before and records another one after, the
// migration fails with ErrContractNameChanged unless force is set: code of
// another contract would misread the state.
func (e *Engine) Migrate(ctx context.Context, tx *Tx, addr ledger.Address, id ledger.Hash, msg []byte, force bool) ([]byte, error) {
	if err := tx.Gas.Consume(GasCallBase, "migrate"); err != nil {
		return nil, err
	}
	in, err := e.Instance(tx.St, addr)
	if err != nil {
		return nil, err
	}
	if in.Admin.IsZero() || in.Admin != tx.Sender {
		return nil, fmt.Errorf("%w: only the admin of %s may migrate it", ErrUnauthorized, addr)
	}
	ci, err := e.Code(tx.St, id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(ci.Exports, "migrate") {
		return nil, fmt.Errorf("%w: %s", ErrNoMigrate, id)
	}
	before, err := e.recordedName(tx.St, addr)
	if err != nil {
		return nil, err
	}
	snap, events := tx.St.Snapshot(), len(tx.Events)
	undo := func(err error) ([]byte, error) {
		tx.St.RevertTo(snap)
		tx.Events = tx.Events[:events]
		return nil, err
	}
	old := in.CodeID
	in.CodeID = id
	if err := e.put(tx.St, key(tagInstance, addr[:]), in); err != nil {
		return nil, err
	}
	data, err := e.run(ctx, tx, nil, addr, "migrate", msg, nil, tx.Gas.Remaining(), false)
	if err != nil {
		return undo(err)
	}
	after, err := e.recordedName(tx.St, addr)
	if err != nil {
		return undo(err)
	}
	attrs := []string{"contract", addr.String(), "from_code", old.String(), "to_code", id.String()}
	if before != "" && after != before {
		if !force {
			return undo(fmt.Errorf("%w: %s records contract %q, the new code %s records %q; migrate with --force if that is intended", ErrContractNameChanged, addr, before, id, orNone(after)))
		}
		attrs = append(attrs, "forced", "true")
	}
	if after != "" {
		attrs = append(attrs, "contract_name", after)
	}
	tx.Events = append(tx.Events, ledger.NewEvent("migrate", attrs...))
	return data, nil
}

// recordedName returns the contract name the instance at addr records under
// ContractInfoKey: "" when there is none or it is not the expected JSON (the
// contract owns that key; a value that does not parse is no name).
func (e *Engine) recordedName(st *ledger.State, addr ledger.Address) (string, error) {
	info, err := e.ContractInfo(st, addr)
	return info.Contract, err
}

// ContractInfo is what a contract records under ContractInfoKey.
type ContractInfo struct {
	Contract string `json:"contract"`
	Version  string `json:"version"`
}

// ContractInfo returns the name and version the contract at addr records
// under ContractInfoKey; zero when it records none (or nothing readable).
func (e *Engine) ContractInfo(st *ledger.State, addr ledger.Address) (ContractInfo, error) {
	raw, err := st.Get(key(tagStore, addr[:], []byte(ContractInfoKey)))
	if err != nil || raw == nil {
		return ContractInfo{}, err
	}
	var info ContractInfo
	if json.Unmarshal(raw, &info) != nil {
		return ContractInfo{}, nil
	}
	return info, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Query runs a read-only query on st (which is never written) with a gas cap.
func (e *Engine) Query(ctx context.Context, st *ledger.State, env Env, addr ledger.Address, msg []byte, gasLimit uint64) ([]byte, uint64, error) {
	tx := &Tx{St: st, Gas: ledger.NewGasMeter(gasLimit), ChainID: env.ChainID, Height: env.Height, TimeMs: env.TimeMs, query: true}
	data, err := e.run(ctx, tx, nil, addr, "query", msg, nil, gasLimit, true)
	return data, tx.Gas.Used(), err
}

// Env is the block context of a query.
type Env struct {
	ChainID string
	Height  uint64
	TimeMs  int64
}

// frame is one contract call on the stack.
type frame struct {
	parent *frame
	self   ledger.Address
	trace  *CallTrace // nil unless tracing
}

func (ct *CallTrace) fail(err error) {
	if ct != nil && ct.Error == "" {
		ct.Error = err.Error()
	}
}

// finish fills in the VM's part of a call: the module load, the host
// functions and, as the rest, the Wasm instructions.
func (ct *CallTrace) finish(t *vm.Trace, res vm.Result) {
	ct.LoadGas = t.LoadGas
	ct.Host = append(ct.Host, t.Host...)
	var nested uint64
	for _, c := range ct.Calls {
		nested += c.GasUsed
	}
	if parts := t.LoadGas + t.HostGas() + nested; res.GasUsed > parts {
		ct.InstructionGas = res.GasUsed - parts
	}
	ct.Log = string(res.DebugLog)
}

func (f *frame) onStack(a ledger.Address) bool {
	for ; f != nil; f = f.parent {
		if f.self == a {
			return true
		}
	}
	return false
}

func (f *frame) depth() int {
	d := 0
	for ; f != nil; f = f.parent {
		d++
	}
	return d
}

// run calls entry on the contract at addr with gasLimit, inside a State
// snapshot: on any failure the call's writes and events are undone and the
// error returned; the gas it used is charged either way.
func (e *Engine) run(ctx context.Context, tx *Tx, parent *frame, addr ledger.Address, entry string, msg []byte, funds ledger.Coins, gasLimit uint64, readOnly bool) ([]byte, error) {
	if parent.onStack(addr) {
		return nil, fmt.Errorf("%w: %s is already executing", ErrReentrancy, addr)
	}
	if tx.Touched != nil && !slices.Contains(*tx.Touched, addr) {
		*tx.Touched = append(*tx.Touched, addr)
	}
	var ct *CallTrace
	if tx.Trace != nil {
		ct = &CallTrace{Contract: addr.String(), Entry: entry, Depth: parent.depth(), GasLimit: gasLimit, Host: []vm.HostGas{}}
		if parent != nil && parent.trace != nil {
			parent.trace.Calls = append(parent.trace.Calls, ct)
		} else {
			tx.Trace.Calls = append(tx.Trace.Calls, ct)
		}
		before := tx.Gas.Used()
		defer func() { ct.GasUsed = tx.Gas.Used() - before }()
	}
	if err := tx.Gas.Consume(GasCallBase, "contract call"); err != nil {
		ct.fail(err)
		return nil, err
	}
	if ct != nil {
		ct.CallBase = GasCallBase
	}
	in, err := e.Instance(tx.St, addr)
	if err != nil {
		return nil, err
	}
	use, warm, err := lastUse(tx.St, in.CodeID)
	if err != nil {
		return nil, err
	}
	var prepared []byte
	var opts []vm.CallOption
	switch {
	case warm:
		if use < tx.Height {
			if err := tx.Gas.Consume(GasWarmTouch, "recording the warm code's use"); err != nil {
				ct.fail(err)
				return nil, err
			}
			if ct != nil {
				ct.WarmGas = GasWarmTouch
			}
			if !tx.query {
				setLastUse(tx.St, in.CodeID, tx.Height)
			}
		}
		opts = append(opts, vm.Warm(func() ([]byte, error) { return e.code(tx.St, in.CodeID) }))
	default:
		if err := tx.Gas.Consume(e.warmGas(), "making the code warm"); err != nil {
			ct.fail(err)
			return nil, err
		}
		if ct != nil {
			ct.WarmGas = e.warmGas()
		}
		if prepared, err = e.code(tx.St, in.CodeID); err != nil {
			return nil, err
		}
	}
	caller := tx.Sender
	if parent != nil {
		caller = parent.self
	}
	snap := tx.St.Snapshot()
	events := len(tx.Events)
	fail := func(err error) ([]byte, error) {
		tx.St.RevertTo(snap)
		tx.Events = tx.Events[:events]
		ct.fail(err)
		return nil, err
	}
	if len(funds) > 0 {
		if readOnly {
			return fail(fmt.Errorf("contracts: funds sent with a read-only call: %w", vm.ErrReadOnly))
		}
		if err := e.accounts(tx.St).Transfer(caller, addr, funds); err != nil {
			return fail(fmt.Errorf("contracts: sending funds to %s: %w", addr, err))
		}
	}
	fundsJSON, err := coinsJSON(funds)
	if err != nil {
		return fail(err)
	}
	tx.calls++
	seed := sha256.Sum256(binary.BigEndian.AppendUint64(append(tx.TxHash[:0:0], tx.TxHash[:]...), uint64(tx.calls)))
	f := &frame{parent: parent, self: addr, trace: ct}
	h := &host{e: e, tx: tx, frame: f, readOnly: readOnly, ctx: ctx}
	env := vm.Env{
		ChainID: tx.ChainID, Height: tx.Height, TimeMs: tx.TimeMs,
		Self: addr, Sender: tx.Sender, Caller: caller, Funds: fundsJSON, Seed: seed,
		ReadOnly: readOnly, Depth: f.depth() - 1,
	}
	if ct != nil {
		env.Trace = &vm.Trace{}
	}
	if gasLimit > tx.Gas.Remaining() {
		gasLimit = tx.Gas.Remaining()
	}
	res, err := e.vm.Call(ctx, in.CodeID, prepared, entry, msg, env, h, gasLimit, opts...)
	if ct != nil {
		ct.finish(env.Trace, res)
	}
	if cerr := tx.Gas.Consume(res.GasUsed, "contract "+entry); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil && res.Failed {
		err = fmt.Errorf("%w: %s", ErrContract, res.Data)
	}
	if err != nil {
		if errors.Is(err, vm.ErrOutOfGas) {
			err = fmt.Errorf("%w: %w", ledger.ErrOutOfGas, err)
		}
		fail(err)
	}
	// A cold call that paid the load makes its code warm, whether or not
	// the call itself succeeded (outside the call's revert).
	if !warm && res.LoadGas > 0 && !tx.query {
		if werr := e.makeWarm(tx.St, in.CodeID, tx.Height); werr != nil {
			return nil, werr
		}
	}
	if err != nil {
		return nil, err
	}
	if !readOnly {
		in.Calls++
		in.GasUsed += res.GasUsed
		if err := e.put(tx.St, key(tagInstance, addr[:]), in); err != nil {
			return fail(err)
		}
	}
	return res.Data, nil
}

func coinsJSON(cs ledger.Coins) ([]byte, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	type coin struct {
		Denom  string `json:"denom"`
		Amount string `json:"amount"`
	}
	out := make([]coin, len(cs))
	for i, c := range cs {
		out[i] = coin{Denom: c.Denom, Amount: strconv.FormatUint(c.Amount, 10)}
	}
	return json.Marshal(out)
}

func parseCoinsJSON(b []byte) (ledger.Coins, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	var in []struct {
		Denom  string `json:"denom"`
		Amount string `json:"amount"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("contracts: funds: %w", err)
	}
	list := make([]ledger.Coin, 0, len(in))
	for _, c := range in {
		a, err := strconv.ParseUint(c.Amount, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("contracts: funds amount %q: %w", c.Amount, ledger.ErrOverflow)
		}
		list = append(list, ledger.Coin{Denom: c.Denom, Amount: a})
	}
	return ledger.NormalizeCoins(list)
}
