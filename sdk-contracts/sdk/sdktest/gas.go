package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
)

// Gas: the harness runs contracts natively and prices nothing itself (a
// native run cannot know the Wasm instruction gas, which is most of a warm
// call). It records every top-level call a test makes; `sos contract gas
// FILE.wasm --calls calls.json` replays them on the node's own engine,
// and ReportGas / App.NodeGas run it for a test.

// CallsVersion is the version of the calls file (CallsFile) this harness
// writes; `sos contract gas --calls` refuses other versions.
const CallsVersion = 1

// Call is one top-level call a test made: an Instantiate, Execute, Migrate
// or Query, with the harness's addresses (the replay maps them, also inside
// messages, to its own accounts and instances).
type Call struct {
	Entry    string    `json:"entry"`            // instantiate, execute, migrate, query
	Handler  string    `json:"handler"`          // the message's key ({"increment":{}} → increment); the entry for instantiate and migrate
	Sender   string    `json:"sender,omitempty"` // bech32 (none for a query)
	Contract string    `json:"contract"`         // bech32 of the instance (instantiate: the one it created)
	Code     int       `json:"code"`             // instantiate, migrate: the code, numbered in order of first use (App.Codes)
	CodeName string    `json:"code_name,omitempty"`
	Msg      string    `json:"msg"` // JSON text
	Funds    sdk.Coins `json:"funds,omitempty"`
	Height   uint64    `json:"height"`
	TimeMs   int64     `json:"time_ms"`
	Force    bool      `json:"force,omitempty"`  // MigrateForce
	Failed   bool      `json:"failed,omitempty"` // the call returned an error or trapped
}

// CallsFile is what WriteCalls writes and `sos contract gas --calls`
// reads.
type CallsFile struct {
	Version int    `json:"version"`
	ChainID string `json:"chain_id"`
	Calls   []Call `json:"calls"`
}

// codeKey tells contract codes apart: an sdk.Contract holds funcs and
// maps, which Go cannot compare, so a code is its name, version and the
// identity of its handler tables.
type codeKey struct {
	name, version         string
	inst, mig, exec, quer uintptr
}

func keyOf(c *sdk.Contract) codeKey {
	ptr := func(v any) uintptr {
		r := reflect.ValueOf(v)
		if !r.IsValid() || r.IsNil() {
			return 0
		}
		return r.Pointer()
	}
	return codeKey{c.Name, c.Version, ptr(c.Instantiate), ptr(c.Migrate), ptr(c.Execute), ptr(c.Query)}
}

// record starts the record of a top-level call (c: the code of an
// instantiate or migrate).
func (a *App) record(e sdk.Entry, sender, addr sdk.Address, c *sdk.Contract, msg any, funds sdk.Coins, force bool) *Call {
	input, _ := encode(msg) // an encoding error fails the call itself
	call := &Call{Entry: e.String(), Handler: handlerName(e, input), Contract: addr.String(), Msg: string(input),
		Funds: slices.Clone(funds), Height: a.height, TimeMs: a.time.UnixMilli(), Force: force}
	if e != sdk.EntryQuery {
		call.Sender = sender.String()
	}
	if c != nil {
		k := keyOf(c)
		i := slices.Index(a.codes, k)
		if i < 0 {
			i = len(a.codes)
			a.codes = append(a.codes, k)
		}
		call.Code, call.CodeName = i, c.Name
	}
	return call
}

func handlerName(e sdk.Entry, input []byte) string {
	if e == sdk.EntryInstantiate || e == sdk.EntryMigrate {
		return e.String()
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(input), &m) == nil && len(m) == 1 {
		for k := range m {
			return k
		}
	}
	return "?"
}

// Calls returns the top-level calls made so far, in order.
func (a *App) Calls() []Call { return slices.Clone(a.calls) }

// Codes returns the number of distinct contract codes instantiated or
// migrated to so far: a replay needs one .wasm per code, in this order.
func (a *App) Codes() int { return len(a.codes) }

// WriteCalls writes the calls file for `sos contract gas --calls`.
func (a *App) WriteCalls(path string) error {
	b, err := json.MarshalIndent(CallsFile{Version: CallsVersion, ChainID: a.cfg.ChainID, Calls: a.calls}, "", "  ")
	if err != nil {
		return fmt.Errorf("sdktest: calls: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("sdktest: calls: %w", err)
	}
	return nil
}

// Environment variables of the gas report.
const (
	// GasReportEnv makes ReportGas run: SOS_GAS_REPORT=1 go test -v ./...
	GasReportEnv = "SOS_GAS_REPORT"
	// SOSBinEnv is the sos binary ReportGas runs; unset: "sos" on PATH.
	SOSBinEnv = "SOS_BIN"
)

// ErrNoSOS reports that no sos binary was found (SOS_BIN, then PATH).
var ErrNoSOS = errors.New("sdktest: no sos binary (set SOS_BIN or put sos on PATH)")

// FindSOS returns the sos binary: $SOS_BIN, else sos on PATH.
func FindSOS() (string, error) {
	if p := os.Getenv(SOSBinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v", ErrNoSOS, SOSBinEnv, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("sos")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoSOS, err)
	}
	return p, nil
}

// NodeGas is the node's gas for a test's calls, as `sos contract gas
// --calls -o json` reports it: exact figures of the binary's engine and
// cost table, not estimates.
type NodeGas struct {
	ChainID string       `json:"chain_id"`
	Uploads []NodeUpload `json:"uploads"`
	Calls   []NodeCall   `json:"calls"`
	Summary []GasRow     `json:"summary"`
	Notes   []string     `json:"notes"`
}

// NodeUpload is one module as the replay uploaded it.
type NodeUpload struct {
	CodeID  string `json:"code_id"`
	Size    int    `json:"size"`
	GasUsed uint64 `json:"gas_used"`
}

// NodeCall is one call's figures on the node, in the order of App.Calls.
type NodeCall struct {
	Entry    string `json:"entry"`
	Handler  string `json:"handler"`
	Sender   string `json:"sender"`   // the replay's account
	Contract string `json:"contract"` // the replay's instance
	Code     uint32 `json:"code"`     // the receipt's result code (0: success)
	Error    string `json:"error"`
	GasUsed  uint64 `json:"gas_used"`  // the receipt's gas (a query: the query's)
	GasLimit uint64 `json:"gas_limit"` // the transaction's limit, as the CLI would set it
	CallGas  uint64 `json:"call_gas"`  // the top-level contract call
	LoadGas  uint64 `json:"load_gas"`  // the module load the call paid (0: warm code)
	// LoadCharged says whether the call paid the module load.
	LoadCharged bool `json:"load_charged"`
}

// GasRow is one handler's receipts in a gas report (Foundry's columns).
type GasRow struct {
	Handler string `json:"handler"` // entry/handler, e.g. execute/increment
	Calls   int    `json:"calls"`
	Min     uint64 `json:"min"`
	Avg     uint64 `json:"avg"`
	Max     uint64 `json:"max"`
}

// NodeGas replays the calls made so far with `sos contract gas` (sos is
// its path, see FindSOS). wasm are the compiled modules of the codes, in
// the order of first use (App.Codes).
func (a *App) NodeGas(ctx context.Context, sos string, wasm ...string) (*NodeGas, error) {
	if len(wasm) != len(a.codes) {
		return nil, fmt.Errorf("sdktest: node gas: %d .wasm files for %d contract codes", len(wasm), len(a.codes))
	}
	dir, err := os.MkdirTemp("", "sdktest-calls")
	if err != nil {
		return nil, fmt.Errorf("sdktest: node gas: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "calls.json")
	if err := a.WriteCalls(file); err != nil {
		return nil, err
	}
	args := append(append([]string{"contract", "gas"}, wasm...), "--calls", file, "-o", "json")
	cmd := exec.CommandContext(ctx, sos, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("sdktest: node gas: %s %s: %w\n%s", sos, strings.Join(args, " "), err, stderr.Bytes())
	}
	var g NodeGas
	if err := json.Unmarshal(out, &g); err != nil {
		return nil, fmt.Errorf("sdktest: node gas: %s printed %q: %w", sos, out, err)
	}
	if len(g.Calls) != len(a.calls) {
		return nil, fmt.Errorf("sdktest: node gas: %d calls replayed of %d", len(g.Calls), len(a.calls))
	}
	return &g, nil
}

// String renders the report: one line per call, then the summary per
// handler (calls, min, avg, max of the receipts' gas_used).
func (g *NodeGas) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-4s %-28s %5s %13s %13s %12s\n", "#", "call", "code", "gas_used", "call_gas", "module load")
	for i, c := range g.Calls {
		load := "warm"
		if c.LoadCharged {
			load = fmt.Sprint(c.LoadGas)
		}
		fmt.Fprintf(&b, "%-4d %-28s %5d %13d %13d %12s\n", i, c.Entry+"/"+c.Handler, c.Code, c.GasUsed, c.CallGas, load)
	}
	fmt.Fprintf(&b, "\n%-32s %6s %13s %13s %13s\n", "handler", "calls", "min", "avg", "max")
	for _, r := range g.Summary {
		fmt.Fprintf(&b, "%-32s %6d %13d %13d %13d\n", r.Handler, r.Calls, r.Min, r.Avg, r.Max)
	}
	return b.String()
}

// ReportGas prints, when the test ends, the node's gas for every call the
// test made on app (see NodeGas), if the environment variable
// SOS_GAS_REPORT is set: SOS_GAS_REPORT=1 go test -v ./... . wasm are the
// compiled modules of the test's contract codes, in order of first use.
// With SOS_GAS_REPORT set and no sos binary it skips the test, saying why;
// a replay that fails (a call the node refuses, wrong modules) fails it,
// and so does a call whose outcome on the node differs from the
// harness's (it failed in one and not in the other).
func ReportGas(t testing.TB, app *App, wasm ...string) {
	t.Helper()
	if os.Getenv(GasReportEnv) == "" {
		return
	}
	sos, err := FindSOS()
	if err != nil {
		t.Skipf("%s is set but there is no sos to replay the calls: %v", GasReportEnv, err)
	}
	for _, w := range wasm {
		if _, err := os.Stat(w); err != nil {
			t.Skipf("%s is set but the module is missing (build it first, e.g. make contracts): %v", GasReportEnv, err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		g, err := app.NodeGas(ctx, sos, wasm...)
		if err != nil {
			t.Errorf("gas report: %v", err)
			return
		}
		for i, c := range g.Calls {
			if want := app.calls[i]; want.Failed != (c.Code != 0) {
				t.Errorf("gas report: call %d (%s %s): the harness says failed=%v, the node's code is %d (%s)", i, want.Entry, want.Msg, want.Failed, c.Code, c.Error)
			}
		}
		t.Logf("gas report (%s), the node's figures from %s:\n%s", t.Name(), sos, g)
	})
}
