package vm

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// contractWasm builds testdata/contract once per test binary.
var contractWasm = sync.OnceValues(func() ([]byte, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, errNoGo
	}
	dir, err := os.MkdirTemp("", "vm-contract")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "contract.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join("testdata", "contract")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building test contract: %v\n%s", err, b)
	}
	return os.ReadFile(out)
})

var errNoGo = errors.New("go tool not found")

func loadContract(tb testing.TB) []byte {
	tb.Helper()
	b, err := contractWasm()
	if errors.Is(err, errNoGo) {
		tb.Skip("go tool not found")
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// preparedContract is the test contract prepared once per test binary.
var preparedContract = sync.OnceValues(func() ([]byte, error) {
	wasm, err := contractWasm()
	if err != nil {
		return nil, err
	}
	v, err := New(context.Background(), Config{CacheDir: testCacheDir})
	if err != nil {
		return nil, err
	}
	defer v.Close(context.Background())
	p, _, err := v.Prepare(context.Background(), testCode, wasm, MaxUploadGas)
	return p, err
})

func loadPrepared(tb testing.TB) []byte {
	tb.Helper()
	loadContract(tb)
	p, err := preparedContract()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// testCacheDir is the on-disk compilation cache the tests' VMs share
// (unless a test sets its own), as a node's VMs do across restarts: a VM
// loads what another compiled instead of compiling the contract again.
var testCacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vm-test-cache")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCacheDir = dir
	code := m.Run()
	closeJobVMs()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newVM(tb testing.TB, cfg Config) *VM {
	tb.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = testCacheDir
	}
	v, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close(context.Background()) })
	return v
}

// fakeHost is an in-memory Host that records every write.
type fakeHost struct {
	store    map[string][]byte
	writes   []string
	events   []string
	balances map[string]uint64
	calls    []string
	callFn   func(msg []byte, gas uint64, readOnly bool) ([]byte, uint64, error)
}

func newFakeHost() *fakeHost {
	return &fakeHost{store: map[string][]byte{}, balances: map[string]uint64{"uTFLP": 100}}
}

func (h *fakeHost) StorageGet(key []byte) ([]byte, bool, error) {
	v, ok := h.store[string(key)]
	return v, ok, nil
}

func (h *fakeHost) StorageSet(key, val []byte) error {
	h.writes = append(h.writes, "set "+string(key))
	h.store[string(key)] = val
	return nil
}

func (h *fakeHost) StorageDelete(key []byte) error {
	h.writes = append(h.writes, "del "+string(key))
	delete(h.store, string(key))
	return nil
}

type sliceIter struct {
	keys []string
	vals [][]byte
	i    int
}

func (it *sliceIter) Next() ([]byte, []byte, bool, error) {
	if it.i >= len(it.keys) {
		return nil, nil, false, nil
	}
	it.i++
	return []byte(it.keys[it.i-1]), it.vals[it.i-1], true, nil
}

func (it *sliceIter) Close() error { return nil }

func (h *fakeHost) StorageIterate(start, end []byte, reverse bool) (Iterator, error) {
	it := &sliceIter{}
	for k := range h.store {
		if bytes.Compare([]byte(k), start) >= 0 && (end == nil || bytes.Compare([]byte(k), end) < 0) {
			it.keys = append(it.keys, k)
		}
	}
	sort.Strings(it.keys)
	if reverse {
		slices.Reverse(it.keys)
	}
	for _, k := range it.keys {
		it.vals = append(it.vals, h.store[k])
	}
	return it, nil
}

func (h *fakeHost) Balance(addr [32]byte, denom string) (uint64, error) {
	if _, ok := h.balances[denom]; !ok {
		return 0, nil
	}
	return h.balances[denom], nil
}

func (h *fakeHost) Transfer(to [32]byte, denom string, amount uint64) error {
	bal, ok := h.balances[denom]
	switch {
	case !ok:
		return ErrUnknownDenom
	case bal < amount:
		return ErrInsufficientFunds
	}
	h.balances[denom] = bal - amount
	h.writes = append(h.writes, fmt.Sprintf("transfer %d%s", amount, denom))
	return nil
}

func (h *fakeHost) Call(ctx context.Context, addr [32]byte, msg, funds []byte, gasLimit uint64, readOnly bool) ([]byte, uint64, error) {
	h.calls = append(h.calls, fmt.Sprintf("%x %s %s %v", addr[:1], msg, funds, readOnly))
	if h.callFn != nil {
		return h.callFn(msg, gasLimit, readOnly)
	}
	return []byte("callee says hi"), 1000, nil
}

func (h *fakeHost) Emit(ev []byte) error {
	h.events = append(h.events, string(ev))
	return nil
}

func (h *fakeHost) AddrToString(a [32]byte) string { return fmt.Sprintf("sos1%x", a[:4]) }

func (h *fakeHost) AddrFromString(s string) ([32]byte, error) {
	var a [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(s, "sos1"))
	if err != nil || len(b) != 4 || !strings.HasPrefix(s, "sos1") {
		return a, errors.New("bad address")
	}
	copy(a[:], b)
	return a, nil
}

func testEnv() Env {
	env := Env{ChainID: "sos-test", Height: 42, TimeMs: 1_700_000_000_123}
	env.Self[0], env.Sender[0], env.Caller[0] = 0xaa, 0xbb, 0xcc
	env.Funds = []byte(`[{"denom":"uTFLP","amount":"5"}]`)
	env.Seed[0] = 1
	return env
}

var testCode = [32]byte{1, 2, 3}

// testGas is the gas tests give a call to run, on top of loading the
// module (callGas).
const testGas = 50_000_000

// callGas is a call's gas limit that leaves run gas after the module load
// charge of prepared.
func callGas(tb testing.TB, prepared []byte, run uint64) uint64 {
	tb.Helper()
	load, err := loadGas(prepared)
	if err != nil {
		tb.Fatal(err)
	}
	return load + run
}
