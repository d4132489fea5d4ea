package sdktest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/hostabi"
)

// GasTable is the chain's price list for what a contract call pays outside
// its Wasm instructions: the call itself, and every host function the SDK
// calls (vm/limits.go, contracts and ledger's GasSchedule; a test of the
// node checks that ChainGasTable matches them). Fields are gas units.
type GasTable struct {
	CallBase          uint64 `json:"call_base"`   // every contract call
	Instantiate       uint64 `json:"instantiate"` // an instantiate transaction, on top of its call
	HostBase          uint64 `json:"host_base"`   // every host function call
	PerByte           uint64 `json:"per_byte"`    // bytes copied between contract and node
	StorageGet        uint64 `json:"storage_get"`
	StorageSet        uint64 `json:"storage_set"`
	StorageSetPerByte uint64 `json:"storage_set_per_byte"`
	StorageDelete     uint64 `json:"storage_delete"`
	IterOpen          uint64 `json:"iter_open"`
	IterNext          uint64 `json:"iter_next"`
	Balance           uint64 `json:"balance"`
	Transfer          uint64 `json:"transfer"`
	EmitEvent         uint64 `json:"emit_event"`
	EmitPerByte       uint64 `json:"emit_per_byte"`
	Call              uint64 `json:"call"` // a nested call, on top of the callee's own gas
	HashPerByte       uint64 `json:"hash_per_byte"`
	MLDSAVerify       uint64 `json:"mldsa_verify"`
	AddrConvert       uint64 `json:"addr_convert"`
	// Intrinsic transaction gas: TxBase + SigVerify + TxPerByte × the
	// signed transaction's size, estimated as TxOverhead + the message
	// (an execute without memo, funds or public key; ±20 gas).
	TxBase     uint64 `json:"tx_base"`
	TxPerByte  uint64 `json:"tx_per_byte"`
	SigVerify  uint64 `json:"sig_verify"`
	TxOverhead uint64 `json:"tx_overhead"`
}

// ChainGasTable is the node's table (protocol version 1).
func ChainGasTable() GasTable {
	return GasTable{
		CallBase: 10_000, Instantiate: 20_000, HostBase: 40, PerByte: 1,
		StorageGet: 200, StorageSet: 300, StorageSetPerByte: 10, StorageDelete: 300,
		IterOpen: 2_000, IterNext: 500, Balance: 1_000, Transfer: 5_000,
		EmitEvent: 1_000, EmitPerByte: 5, Call: 20_000, HashPerByte: 2,
		MLDSAVerify: 200_000, AddrConvert: 500,
		TxBase: 5_000, TxPerByte: 2, SigVerify: 50_000, TxOverhead: 3_415,
	}
}

// GasConfig turns on gas metering in an App (Config.Gas).
//
// The harness runs contracts natively, so it prices what the node prices
// per call except the Wasm instructions: the call base, loading the
// module (LoadGas: the node charges it on every call, and for a Go
// contract it is almost all of a call's gas) and each host function the
// SDK calls, with the chain's table. For the example contracts this is
// within 1% of a node's receipt (TestHarnessGasMatchesNode in the
// examples and kernel's TestHarnessGasGolden keep it so); a contract that
// computes a lot (long loops, heavy JSON) pays more instruction gas than
// the harness sees: `sos tx simulate` and `sos tx trace` give the node's
// exact figures, split the same way.
type GasConfig struct {
	Table GasTable // zero value: ChainGasTable()
	// LoadGas is the gas the node charges to load the contract's module
	// on each call: `sos contract gas FILE.wasm` prints it. SetLoadGas
	// overrides it per instance.
	LoadGas uint64
}

// LoadGasFile reads the JSON `sos contract gas FILE.wasm -o json` prints
// (or a gas golden file with a load_gas field) into a GasConfig.
func LoadGasFile(path string) (*GasConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sdktest: gas file: %w", err)
	}
	var f struct {
		LoadGas uint64 `json:"load_gas"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.LoadGas == 0 {
		return nil, fmt.Errorf("sdktest: gas file %s: no load_gas (%v)", path, err)
	}
	return &GasConfig{Table: ChainGasTable(), LoadGas: f.LoadGas}, nil
}

// Gas is the gas of one transaction (or query) as the harness measures it.
type Gas struct {
	// Tx estimates the receipt's gas_used: intrinsic gas + Calls[0].Total
	// (+ the instantiate charge).
	Tx    uint64    `json:"tx"`
	Calls []CallGas `json:"calls"` // the top-level call, then nested ones in order
}

// CallGas is one contract call: Total includes its nested calls.
type CallGas struct {
	Contract sdk.Address       `json:"contract"`
	Entry    string            `json:"entry"`
	Handler  string            `json:"handler"` // the message's key ({"increment":{}} → increment)
	Depth    int               `json:"depth"`
	Total    uint64            `json:"total"`
	CallBase uint64            `json:"call_base"`
	Load     uint64            `json:"load"`
	Host     map[string]uint64 `json:"host"` // gas per host function
}

// SetLoadGas sets the module load gas of the contract instance at addr
// (contracts of different sizes in one App).
func (a *App) SetLoadGas(addr sdk.Address, gas uint64) {
	if a.loadGas == nil {
		a.loadGas = map[sdk.Address]uint64{}
	}
	a.loadGas[addr] = gas
}

// LastGas is the gas of the last transaction or query (nil without
// Config.Gas).
func (a *App) LastGas() *Gas { return a.lastGas }

// gasMeter measures one call: meteredHost charges it as the node's VM
// would, for the same host calls the SDK makes under GOOS=wasip1.
type gasMeter struct {
	app   *App
	hosts map[string]uint64
	total uint64 // host gas + nested calls
	vbuf  int    // sizes of the SDK's reusable buffers (host_wasip1.go)
	kbuf  int
}

func (m *gasMeter) host(name string, gas uint64) {
	gas += m.app.gasTable.HostBase
	m.hosts[name] += gas
	m.total += gas
}

// startCall opens the gas record of a call (nil when gas is off).
func (a *App) startCall(e sdk.Entry, addr sdk.Address, input []byte, depth int) *gasMeter {
	if a.cfg.Gas == nil {
		return nil
	}
	load := a.cfg.Gas.LoadGas
	if g, ok := a.loadGas[addr]; ok {
		load = g
	}
	a.gasCalls = append(a.gasCalls, CallGas{Contract: addr, Entry: e.String(), Handler: handlerName(e, input), Depth: depth,
		CallBase: a.gasTable.CallBase, Load: load})
	return &gasMeter{app: a, hosts: map[string]uint64{}, vbuf: 1024, kbuf: 256}
}

// finishCall closes the record of the call at index; its Total is what
// the caller is charged for it (lastCallGas).
func (a *App) finishCall(m *gasMeter, index int) {
	if m == nil {
		return
	}
	c := &a.gasCalls[index]
	c.Host = m.hosts
	c.Total = c.CallBase + c.Load + m.total
	a.lastCallGas = c.Total
}

func handlerName(e sdk.Entry, input []byte) string {
	if e == sdk.EntryInstantiate || e == sdk.EntryMigrate {
		return e.String()
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(input, &m) == nil && len(m) == 1 {
		for k := range m {
			return k
		}
	}
	return "?"
}

// meteredHost is a frame that charges each host call like the node does.
type meteredHost struct {
	*frame
	m *gasMeter
}

func (h meteredHost) Input() []byte {
	in := h.frame.Input()
	h.m.host("input_len", 0)
	if len(in) > 0 {
		h.m.host("input_read", uint64(len(in))*h.m.app.gasTable.PerByte)
	}
	return in
}

func (h meteredHost) SetResult(b []byte) {
	h.m.host("set_result", uint64(len(b))*h.m.app.gasTable.PerByte)
	h.frame.SetResult(b)
}

func (h meteredHost) Fail(err error) {
	h.m.host("set_result", uint64(len(err.Error()))*h.m.app.gasTable.PerByte)
	h.frame.Fail(err)
}

// sized charges the SDK's "(dst, cap) → len" reads: a value longer than
// the buffer is asked for twice, the second time with a buffer that fits.
func (h meteredHost) sized(name string, base uint64, in uint64, n int, buf *int) {
	t := h.m.app.gasTable
	if n > *buf {
		h.m.host(name, base+in*t.PerByte)
		*buf = n
	}
	h.m.host(name, base+(in+uint64(n))*t.PerByte)
}

func (h meteredHost) StorageGet(key []byte) ([]byte, bool) {
	v, ok := h.frame.StorageGet(key)
	t := h.m.app.gasTable
	if !ok {
		h.m.host("storage_get", t.StorageGet+uint64(len(key))*t.PerByte)
		return v, ok
	}
	h.sized("storage_get", t.StorageGet, uint64(len(key)), len(v), &h.m.vbuf)
	return v, ok
}

func (h meteredHost) StorageSet(key, value []byte) {
	t := h.m.app.gasTable
	n := uint64(len(key) + len(value))
	h.m.host("storage_set", n*t.PerByte+t.StorageSet+t.StorageSetPerByte*n)
	h.frame.StorageSet(key, value)
}

func (h meteredHost) StorageDelete(key []byte) {
	t := h.m.app.gasTable
	h.m.host("storage_delete", t.StorageDelete+uint64(len(key))*t.PerByte)
	h.frame.StorageDelete(key)
}

func (h meteredHost) IterOpen(start, end []byte, reverse bool) int32 {
	t := h.m.app.gasTable
	h.m.host("storage_iter_open", t.IterOpen+uint64(len(start)+len(end))*t.PerByte)
	return h.frame.IterOpen(start, end, reverse)
}

func (h meteredHost) IterNext(id int32) ([]byte, []byte, bool) {
	k, v, ok := h.frame.IterNext(id)
	t := h.m.app.gasTable
	if ok && (len(k) > h.m.kbuf || len(v) > h.m.vbuf) {
		h.m.host("storage_iter_next", t.IterNext)
		h.m.kbuf, h.m.vbuf = max(h.m.kbuf, len(k)), max(h.m.vbuf, len(v))
	}
	h.m.host("storage_iter_next", t.IterNext+uint64(len(k)+len(v))*t.PerByte)
	return k, v, ok
}

func (h meteredHost) IterClose(id int32) {
	h.m.host("storage_iter_close", 0)
	h.frame.IterClose(id)
}

func (h meteredHost) BlockHeight() int64 {
	h.m.host("block_height", 0)
	return h.frame.BlockHeight()
}

func (h meteredHost) BlockTimeMillis() int64 {
	h.m.host("block_time", 0)
	return h.frame.BlockTimeMillis()
}

func (h meteredHost) ChainID() string {
	id := h.frame.ChainID()
	buf := 64
	h.sized("chain_id", 0, 0, len(id), &buf)
	return id
}

func (h meteredHost) Self() hostabi.Address {
	h.m.host("self_address", 32*h.m.app.gasTable.PerByte)
	return h.frame.Self()
}

func (h meteredHost) Sender() hostabi.Address {
	h.m.host("sender", 32*h.m.app.gasTable.PerByte)
	return h.frame.Sender()
}

func (h meteredHost) Caller() hostabi.Address {
	h.m.host("caller", 32*h.m.app.gasTable.PerByte)
	return h.frame.Caller()
}

func (h meteredHost) Funds() []byte {
	f := h.frame.Funds()
	buf := 128
	h.sized("funds", 0, 0, len(f), &buf)
	return f
}

func (h meteredHost) Balance(addr hostabi.Address, denom string) uint64 {
	t := h.m.app.gasTable
	h.m.host("balance", t.Balance+uint64(len(denom))*t.PerByte)
	return h.frame.Balance(addr, denom)
}

func (h meteredHost) Transfer(to hostabi.Address, denom string, amount uint64) int32 {
	t := h.m.app.gasTable
	h.m.host("transfer", t.Transfer+uint64(len(denom))*t.PerByte)
	return h.frame.Transfer(to, denom, amount)
}

func (h meteredHost) EmitEvent(event []byte) {
	t := h.m.app.gasTable
	n := uint64(len(event))
	h.m.host("emit_event", n*t.PerByte+t.EmitEvent+t.EmitPerByte*n)
	h.frame.EmitEvent(event)
}

// nestedCharge charges a call or query of another contract: the message
// and funds copied, the call charge, the callee's gas, then the SDK
// reading the result (call_result_len, call_result_read).
func (h meteredHost) nestedCharge(name string, in int, res []byte) {
	t := h.m.app.gasTable
	h.m.host(name, t.Call+uint64(in)*t.PerByte)
	h.m.hosts[name] += h.m.app.lastCallGas
	h.m.total += h.m.app.lastCallGas
	h.m.host("call_result_len", 0)
	if len(res) > 0 {
		h.m.host("call_result_read", uint64(len(res))*t.PerByte)
	}
}

func (h meteredHost) Call(addr hostabi.Address, msg, funds []byte) ([]byte, bool) {
	h.m.app.lastCallGas = 0
	res, ok := h.frame.Call(addr, msg, funds)
	h.nestedCharge("call", len(msg)+len(funds), res)
	return res, ok
}

func (h meteredHost) QueryContract(addr hostabi.Address, msg []byte) ([]byte, bool) {
	h.m.app.lastCallGas = 0
	res, ok := h.frame.QueryContract(addr, msg)
	h.nestedCharge("query_contract", len(msg), res)
	return res, ok
}

func (h meteredHost) Sha256(data []byte) [32]byte {
	t := h.m.app.gasTable
	h.m.host("sha256", uint64(len(data))*t.HashPerByte+32*t.PerByte)
	return h.frame.Sha256(data)
}

func (h meteredHost) Blake3(data []byte) [32]byte {
	t := h.m.app.gasTable
	h.m.host("blake3", uint64(len(data))*t.HashPerByte+32*t.PerByte)
	return h.frame.Blake3(data)
}

func (h meteredHost) MLDSAVerify(pub, msg, sig, ctx []byte) bool {
	t := h.m.app.gasTable
	h.m.host("mldsa_verify", t.MLDSAVerify+uint64(len(pub)+len(msg)+len(sig)+len(ctx))*t.HashPerByte)
	return h.frame.MLDSAVerify(pub, msg, sig, ctx)
}

func (h meteredHost) AddrToString(a hostabi.Address) string {
	s := h.frame.AddrToString(a)
	buf := 64
	h.sized("addr_to_string", h.m.app.gasTable.AddrConvert, 0, len(s), &buf)
	return s
}

func (h meteredHost) AddrFromString(s string) (hostabi.Address, bool) {
	a, ok := h.frame.AddrFromString(s)
	t := h.m.app.gasTable
	n := uint64(len(s))
	if ok {
		n += 32
	}
	h.m.host("addr_from_string", t.AddrConvert+n*t.PerByte)
	return a, ok
}

func (h meteredHost) DebugLog(msg []byte) {
	h.m.host("debug_log", uint64(len(msg))*h.m.app.gasTable.PerByte)
	h.frame.DebugLog(msg)
}

// GasReport summarizes the gas of every call an App ran, per contract
// entry point and handler: calls, min, mean, max (Foundry's gas report).
type GasReport struct {
	Rows []GasReportRow
}

// GasReportRow is one handler's figures.
type GasReportRow struct {
	Handler             string // entry/handler, e.g. execute/increment
	Calls               int
	Min, Mean, Max, Sum uint64
}

// GasReport returns the report of every transaction and query so far
// (empty without Config.Gas).
func (a *App) GasReport() GasReport {
	by := map[string]*GasReportRow{}
	for _, c := range a.gasHistory {
		k := c.Entry + "/" + c.Handler
		r := by[k]
		if r == nil {
			r = &GasReportRow{Handler: k, Min: c.Total}
			by[k] = r
		}
		r.Calls++
		r.Sum += c.Total
		r.Min, r.Max = min(r.Min, c.Total), max(r.Max, c.Total)
	}
	var rep GasReport
	for _, r := range by {
		r.Mean = r.Sum / uint64(r.Calls)
		rep.Rows = append(rep.Rows, *r)
	}
	slices.SortFunc(rep.Rows, func(x, y GasReportRow) int { return strings.Compare(x.Handler, y.Handler) })
	return rep
}

// String renders the report as a table.
func (r GasReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-32s %6s %14s %14s %14s\n", "handler", "calls", "min", "mean", "max")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "%-32s %6d %14d %14d %14d\n", row.Handler, row.Calls, row.Min, row.Mean, row.Max)
	}
	return b.String()
}

// GasReportEnv is the environment variable that makes ReportGas print:
// SOS_GAS_REPORT=1 go test -v ./...
const GasReportEnv = "SOS_GAS_REPORT"

// ReportGas logs app's gas report when the test ends, if the environment
// variable SOS_GAS_REPORT is set (run go test with -v to see it).
func ReportGas(t testing.TB, app *App) {
	if os.Getenv(GasReportEnv) == "" {
		return
	}
	t.Cleanup(func() { t.Logf("gas report (%s):\n%s", t.Name(), app.GasReport()) })
}

// txGas fills LastGas after a transaction or query (nil after a trap:
// the calls it cut short have no totals).
func (a *App) txGas(msg any, e sdk.Entry, trapped bool) {
	if a.cfg.Gas == nil {
		return
	}
	calls := a.gasCalls
	a.gasCalls = nil
	a.lastGas = nil
	if trapped {
		return
	}
	a.gasHistory = append(a.gasHistory, calls...)
	input, _ := encode(msg)
	instantiate, query := e == sdk.EntryInstantiate, e == sdk.EntryQuery
	g := &Gas{Calls: calls}
	if len(calls) > 0 && !query {
		t := a.gasTable
		g.Tx = t.TxBase + t.SigVerify + t.TxPerByte*(t.TxOverhead+uint64(len(input))) + calls[0].Total
		if instantiate {
			g.Tx += t.Instantiate
		}
	} else if len(calls) > 0 {
		g.Tx = calls[0].Total
	}
	a.lastGas = g
}

// OnChain is the event as the chain records it in a receipt: type
// "wasm-<type>", with the attribute contract=<address> before the
// contract's own. (Contract addresses differ: the harness derives its own.)
func (e Event) OnChain() sdk.Event {
	attrs := append([]sdk.Attr{{Key: "contract", Value: e.Contract.String()}}, e.Attrs...)
	return sdk.Event{Type: "wasm-" + e.Type, Attrs: attrs}
}
