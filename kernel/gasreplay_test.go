package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// harnessAddr is an address as the SDK harness makes one (any 32 bytes
// the node has no key for).
func harnessAddr(name string) string {
	return ledger.Address(sha256.Sum256([]byte("sdktest/account\x00" + name))).String()
}

// TestGasReplayMatchesNode replays the counter's calls with ReplayGas and
// runs the same transactions (same payloads, sizes and gas limits, keys on
// chain, code uploaded) on a test node: every receipt's gas_used, every
// call's gas and load must be equal, with no tolerance. The node's figures
// come from its own execution, so a replay on any other cost table,
// schedule, warm set rule or transaction shape fails here.
func TestGasReplayMatchesNode(t *testing.T) {
	wasm := buildWasm(t, "counter")
	alice, bob, inst := harnessAddr("alice"), harnessAddr("bob"), harnessAddr("contract-0")
	calls := GasCalls{Version: GasCallsVersion, ChainID: "test-chain", Calls: []GasCall{
		{Entry: "instantiate", Sender: alice, Contract: inst, Msg: `{"count":1}`},
		{Entry: "execute", Sender: alice, Contract: inst, Msg: `{"increment":{}}`},
		{Entry: "execute", Sender: bob, Contract: inst, Msg: `{"increment":{}}`},
		{Entry: "execute", Sender: alice, Contract: inst, Msg: `{"reset":{"count":5}}`},
		{Entry: "execute", Sender: bob, Contract: inst, Msg: `{"reset":{"count":0}}`, Failed: true}, // bob is not the owner
		{Entry: "query", Contract: inst, Msg: `{"get":{}}`},
	}}
	rep, err := ReplayGas(context.Background(), t.TempDir(), [][]byte{wasm}, calls)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Calls) != len(calls.Calls) || len(rep.Uploads) != 1 {
		t.Fatalf("replay: %d calls, %d uploads", len(rep.Calls), len(rep.Uploads))
	}

	// The node: the replay's keys, a setup transfer each, the upload, then
	// the calls with the limits the replay signed.
	tn := withContracts(t, newTestChain(t, 1))
	keys := map[string]*ledger.PrivateKey{}
	for _, s := range []string{"deployer", alice, bob} {
		k, err := replayKey(s)
		if err != nil {
			t.Fatal(err)
		}
		keys[s] = k
		tn.exec1(t, tn.users[0], &ledger.Transfer{To: k.Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 100_000_000_000}}})
	}
	for _, s := range []string{alice, bob} {
		tn.exec1(t, keys[s], &ledger.Transfer{To: keys["deployer"].Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1}}})
	}
	if tn.exec1(t, keys["deployer"], &ledger.ContractUpload{Wasm: wasm}).Code != ledger.CodeOK {
		t.Fatal("upload failed")
	}
	id := ledger.HashBytes(wasm)
	var addr ledger.Address
	for i, c := range calls.Calls {
		got := rep.Calls[i]
		if c.Entry == "query" {
			head := tn.store.Head()
			_, gas, err := tn.chain.engine.Query(context.Background(), ledger.NewState(tn.store), contracts.Env{ChainID: head.ChainID, Height: head.Height, TimeMs: head.Time}, addr, []byte(c.Msg), vm.DefaultQueryGas)
			if err != nil {
				t.Fatal(err)
			}
			if got.GasUsed != gas || got.CallGas != gas {
				t.Errorf("query %s: replay %d gas, node %d", c.Msg, got.GasUsed, gas)
			}
			continue
		}
		k := keys[c.Sender]
		var p ledger.Payload
		switch c.Entry {
		case "instantiate":
			p = &ledger.ContractInstantiate{CodeID: id, Msg: []byte(c.Msg), Label: "sdktest", Admin: k.Address()}
		case "execute":
			p = execMsg(addr, c.Msg)
		}
		bb := tn.block(t, tn.tx(t, k, p, got.GasLimit))
		if len(bb.Receipts) != 1 {
			t.Fatalf("call %d rejected: %v", i, bb.Rejected)
		}
		rc := bb.Receipts[0]
		if c.Entry == "instantiate" {
			var d struct {
				Address ledger.Address `json:"address"`
			}
			if err := json.Unmarshal(rc.Data, &d); err != nil {
				t.Fatal(err)
			}
			addr = d.Address
			if got.Contract != addr.String() {
				t.Errorf("instantiate: replay's instance %s, node's %s", got.Contract, addr)
			}
		}
		tr, err := tn.chain.Trace(context.Background(), rc.TxHash)
		if err != nil {
			t.Fatal(err)
		}
		name := c.Entry + " " + c.Msg
		if got.GasUsed != rc.GasUsed || got.Code != rc.Code {
			t.Errorf("%s: replay %d gas (code %s), node %d (code %s)", name, got.GasUsed, got.Code, rc.GasUsed, rc.Code)
		}
		if got.CallGas != tr.Calls[0].GasUsed || got.LoadGas != tr.Calls[0].LoadGas {
			t.Errorf("%s: replay call %d gas (load %d), node %d (load %d)", name, got.CallGas, got.LoadGas, tr.Calls[0].GasUsed, tr.Calls[0].LoadGas)
		}
		if got.LoadCharged {
			t.Errorf("%s: paid the module load, but an uploaded code is warm", name)
		}
		if (rc.Code != ledger.CodeOK) != c.Failed {
			t.Errorf("%s: node code %s, the harness said failed=%v", name, rc.Code, c.Failed)
		}
		t.Logf("%-30s gas_used %9d  call %9d", name, got.GasUsed, got.CallGas)
	}
}

// TestGasReplayRewritesAddresses: the harness's account and contract
// addresses in a message become the replay's, at the same length.
func TestGasReplayRewritesAddresses(t *testing.T) {
	alice := harnessAddr("alice")
	k, err := replayKey(alice)
	if err != nil {
		t.Fatal(err)
	}
	inst := ledger.Address{7}
	r := &replayer{senders: map[string]*ledger.PrivateKey{alice: k}, contracts: map[string]ledger.Address{harnessAddr("c"): inst}}
	in := `{"transfer":{"to":"` + alice + `","via":"` + harnessAddr("c") + `"}}`
	out := r.rewrite(in)
	want := `{"transfer":{"to":"` + k.Address().String() + `","via":"` + inst.String() + `"}}`
	if out != want || len(out) != len(in) {
		t.Fatalf("rewrite:\n got %s\nwant %s", out, want)
	}
}

// TestGasReplayRejectsBadCalls: a calls file the replay cannot run is
// refused before anything runs, with ErrBadCalls.
func TestGasReplayRejectsBadCalls(t *testing.T) {
	for name, c := range map[string]GasCalls{
		"version":      {Version: 99},
		"entry":        {Version: GasCallsVersion, Calls: []GasCall{{Entry: "sudo", Sender: harnessAddr("a")}}},
		"module index": {Version: GasCallsVersion, Calls: []GasCall{{Entry: "instantiate", Sender: harnessAddr("a"), Code: 3}}},
		"sender":       {Version: GasCallsVersion, Calls: []GasCall{{Entry: "execute", Sender: "alice"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReplayGas(context.Background(), t.TempDir(), [][]byte{{0}}, c)
			if !errors.Is(err, ErrBadCalls) {
				t.Fatalf("err %v, want ErrBadCalls", err)
			}
		})
	}
	if _, err := ReplayGas(context.Background(), t.TempDir(), [][]byte{buildWasm(t, "counter")}, GasCalls{Version: GasCallsVersion, Calls: []GasCall{
		{Entry: "execute", Sender: harnessAddr("a"), Contract: harnessAddr("nowhere"), Msg: `{}`},
	}}); !errors.Is(err, ErrBadCalls) || !strings.Contains(err.Error(), "not instantiated") {
		t.Fatalf("execute before instantiate: %v", err)
	}
}
