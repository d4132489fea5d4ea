package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

var (
	wasmOnce  sync.Once
	wasmDir   string
	wasmErr   error
	wasmFiles = map[string]string{
		"counter": "../sdk-contracts/examples/counter",
		"chaos":   "./testdata/chaos",
	}
)

// buildWasm compiles the test contracts once per test binary.
func buildWasm(t testing.TB, name string) []byte {
	t.Helper()
	wasmOnce.Do(func() {
		wasmDir, wasmErr = os.MkdirTemp("", "sos-kernel-wasm")
		if wasmErr != nil {
			return
		}
		for n, dir := range wasmFiles {
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", filepath.Join(wasmDir, n+".wasm"), dir)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				wasmErr = fmt.Errorf("build %s: %v\n%s", n, err, out)
				return
			}
		}
	})
	if wasmErr != nil {
		t.Fatalf("building test contracts: %v", wasmErr)
	}
	b, err := os.ReadFile(filepath.Join(wasmDir, name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withContracts gives a test chain a VM and contract engine.
func withContracts(t testing.TB, tn *testNet) *testNet {
	t.Helper()
	machine, err := vm.New(context.Background(), vm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { machine.Close(context.Background()) })
	tn.chain.engine = contracts.New(machine, tn.codec, tn.chain.denoms)
	return tn
}

// contractGas is the gas limit of contract calls in these tests (a call
// pays ≈170 Mgas to load a Go contract); uploadGas that of uploads, which
// pay for compiling (≈4 Ggas for a Go contract).
const (
	contractGas = 600_000_000
	uploadGas   = 8_000_000_000
)

// exec1 commits one tx in its own block and returns its receipt.
func (tn *testNet) exec1(t testing.TB, from *ledger.PrivateKey, p ledger.Payload) ledger.Receipt {
	t.Helper()
	gas := uint64(contractGas)
	if _, ok := p.(*ledger.ContractUpload); ok {
		gas = uploadGas
	}
	bb := tn.block(t, tn.tx(t, from, p, gas))
	if len(bb.Receipts) != 1 {
		t.Fatalf("tx rejected: %v", bb.Rejected)
	}
	return bb.Receipts[0]
}

func (tn *testNet) upload(t testing.TB, from *ledger.PrivateKey, wasm []byte) ledger.Hash {
	t.Helper()
	r := tn.exec1(t, from, &ledger.ContractUpload{Wasm: wasm})
	if r.Code != ledger.CodeOK {
		t.Fatalf("upload: %v %s", r.Code, r.Error)
	}
	return ledger.HashBytes(wasm)
}

func (tn *testNet) instantiate(t testing.TB, from *ledger.PrivateKey, id ledger.Hash, msg string, admin ledger.Address) ledger.Address {
	t.Helper()
	r := tn.exec1(t, from, &ledger.ContractInstantiate{CodeID: id, Msg: []byte(msg), Label: "test", Admin: admin})
	if r.Code != ledger.CodeOK {
		t.Fatalf("instantiate: %v %s", r.Code, r.Error)
	}
	var d struct {
		Address ledger.Address `json:"address"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Address
}

func (tn *testNet) query(t testing.TB, a ledger.Address, msg string) (string, error) {
	t.Helper()
	head := tn.store.Head()
	out, _, err := tn.chain.engine.Query(context.Background(), ledger.NewState(tn.store), contracts.Env{ChainID: head.ChainID, Height: head.Height, TimeMs: head.Time}, a, []byte(msg), vm.DefaultQueryGas)
	return string(out), err
}

func execMsg(a ledger.Address, msg string) *ledger.ContractExecute {
	return &ledger.ContractExecute{Contract: a, Msg: []byte(msg)}
}

func TestCounterLifecycle(t *testing.T) {
	tn := withContracts(t, newTestChain(t, 2))
	alice := tn.users[0]
	wasm := buildWasm(t, "counter")
	id := tn.upload(t, alice, wasm)
	if r := tn.exec1(t, alice, &ledger.ContractUpload{Wasm: wasm}); r.Code != ledger.CodeOK || !strings.Contains(fmt.Sprint(r.Events), "deduplicated") {
		t.Fatalf("second upload of the same code: %+v", r)
	}
	addr := tn.instantiate(t, alice, id, `{"count":1}`, alice.Address())
	r := tn.exec1(t, alice, execMsg(addr, `{"increment":{}}`))
	if r.Code != ledger.CodeOK || string(r.Data) != `{"count":2}` {
		t.Fatalf("increment: %+v", r)
	}
	if got, err := tn.query(t, addr, `{"get":{}}`); err != nil || got != `{"count":2}` {
		t.Fatalf("query: %s %v", got, err)
	}
	// The bob account is not the owner: reset fails, the count stays.
	bob := tn.users[1]
	if r := tn.exec1(t, bob, execMsg(addr, `{"reset":{"count":0}}`)); r.Code != ledger.CodeContractError {
		t.Fatalf("reset by non-owner: %+v", r)
	}
	if got, _ := tn.query(t, addr, `{"get":{}}`); got != `{"count":2}` {
		t.Fatalf("count changed by a failed reset: %s", got)
	}
	supplyInvariant(t, tn)
}

func TestMisbehavingContracts(t *testing.T) {
	tn := withContracts(t, newTestChain(t, 2))
	alice, bob := tn.users[0], tn.users[1]
	id := tn.upload(t, alice, buildWasm(t, "chaos"))
	a := tn.instantiate(t, alice, id, `{}`, alice.Address())
	b := tn.instantiate(t, alice, id, `{}`, ledger.Address{})
	value := func(c ledger.Address) string {
		v, err := tn.query(t, c, `{"get":{}}`)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name     string
		from     *ledger.PrivateKey
		payload  ledger.Payload
		code     ledger.Code
		errHas   string
		wantA    string
		wantB    string
		wantData string
	}{
		{name: "infinite loop runs out of gas", payload: execMsg(a, `{"loop":{}}`), code: ledger.CodeOutOfGas, wantA: "0", wantB: "0"},
		{name: "panic traps", payload: execMsg(a, `{"panic":{}}`), code: ledger.CodeContractTrap, errHas: "boom (in main.", wantA: "0", wantB: "0"},
		{name: "handled error reverts", payload: execMsg(a, `{"set_then_fail":{"value":5}}`), code: ledger.CodeContractError, errHas: "failing on purpose", wantA: "0", wantB: "0"},
		{name: "re-entrancy refused", payload: execMsg(a, fmt.Sprintf(`{"call":{"contract":%q,"msg":{"set":{"value":5}}}}`, a)), code: ledger.CodeContractError, errHas: "re-entrant", wantA: "0", wantB: "0"},
		{name: "failing callee reverts only itself", payload: execMsg(a, fmt.Sprintf(`{"call_ignore_error":{"contract":%q,"msg":{"set_then_fail":{"value":5}}}}`, b)), code: ledger.CodeOK, wantA: "8", wantB: "0", wantData: "callee failed"},
		{name: "successful nested call", payload: execMsg(a, fmt.Sprintf(`{"call":{"contract":%q,"msg":{"set":{"value":6}}}}`, b)), code: ledger.CodeOK, wantA: "7", wantB: "6"},
		{name: "huge event", payload: execMsg(b, `{"event":{"bytes":100000}}`), code: ledger.CodeLimitExceeded, wantA: "7", wantB: "6"},
		{name: "migrate by non-admin", from: bob, payload: &ledger.ContractMigrate{Contract: a, CodeID: id, Msg: []byte(`{}`)}, code: ledger.CodeUnauthorized, wantA: "7", wantB: "6"},
		{name: "migrate without admin", payload: &ledger.ContractMigrate{Contract: b, CodeID: id, Msg: []byte(`{}`)}, code: ledger.CodeUnauthorized, wantA: "7", wantB: "6"},
		{name: "migrate by admin", payload: &ledger.ContractMigrate{Contract: a, CodeID: id, Msg: []byte(`{}`)}, code: ledger.CodeOK, wantA: "1000", wantB: "6"},
		{name: "unknown contract", payload: execMsg(seededKey(t, 777).Address(), `{}`), code: ledger.CodeNotFound, wantA: "1000", wantB: "6"},
		{name: "not wasm", payload: &ledger.ContractUpload{Wasm: []byte("\x00asm\x01\x00\x00\x00garbage")}, code: ledger.CodeInvalidPayload, wantA: "1000", wantB: "6"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := alice
			if tc.from != nil {
				from = tc.from
			}
			r := tn.exec1(t, from, tc.payload)
			if r.Code != tc.code {
				t.Fatalf("code %v (%s), want %v", r.Code, r.Error, tc.code)
			}
			if tc.errHas != "" && !strings.Contains(r.Error, tc.errHas) {
				t.Fatalf("error %q lacks %q", r.Error, tc.errHas)
			}
			if tc.wantData != "" && !strings.Contains(string(r.Data), tc.wantData) {
				t.Fatalf("data %q lacks %q", r.Data, tc.wantData)
			}
			if r.Code != ledger.CodeOK && r.Fee.Amount == 0 {
				t.Fatal("a failed contract call paid no fee")
			}
			if va, vb := value(a), value(b); va != tc.wantA || vb != tc.wantB {
				t.Fatalf("values a=%s b=%s, want %s %s", va, vb, tc.wantA, tc.wantB)
			}
		})
	}
	if _, err := tn.query(t, a, `{"write":{}}`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("query that writes: %v", err)
	}
	supplyInvariant(t, tn)
}

// TestContractBlocksReexecute checks that a second node re-executing blocks
// with contract transactions (its own VM, its own caches) gets the same
// receipts and state roots.
func TestContractBlocksReexecute(t *testing.T) {
	leader := withContracts(t, newTestChain(t, 1))
	follower := withContracts(t, openTestChain(t, t.TempDir(), leader.doc, leader.users))
	alice := leader.users[0]
	wasm := buildWasm(t, "counter")
	var blocks []*BuiltBlock
	blocks = append(blocks, leader.block(t, leader.tx(t, alice, &ledger.ContractUpload{Wasm: wasm}, uploadGas)))
	blocks = append(blocks, leader.block(t, leader.tx(t, alice, &ledger.ContractInstantiate{CodeID: ledger.HashBytes(wasm), Msg: []byte(`{"count":5}`), Label: "c"}, contractGas)))
	addr := contracts.AddressFor(ledger.HashBytes(wasm), 0)
	var incs []*PendingTx
	for i := 0; i < 5; i++ {
		incs = append(incs, leader.tx(t, alice, execMsg(addr, `{"increment":{}}`), contractGas))
	}
	blocks = append(blocks, leader.block(t, incs...))
	for _, bb := range blocks {
		fb, err := follower.chain.ExecuteBlock(context.Background(), bb.Block, leader.nodeKey.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := follower.chain.Commit(fb); err != nil {
			t.Fatal(err)
		}
	}
	if follower.store.Head() != leader.store.Head() {
		t.Fatal("heads differ")
	}
	if got, _ := follower.query(t, addr, `{"get":{}}`); got != `{"count":10}` {
		t.Fatalf("follower count %s", got)
	}
}
