package adversarial

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/meter"
)

// env is a chain as an attacker sees it: a contracts.Engine over a
// contracts VM and a Pebble-backed ledger.Store, plus a policy VM.
type env struct {
	ctx    context.Context
	store  *ledger.Store
	vm     *vm.VM
	policy *vm.VM
	eng    *contracts.Engine
	height uint64
	sender ledger.Address
	txs    uint64
	gas    uint64 // the gas limit of a hostile transaction, on top of module loads
	// loads is the module-load charge (vm.LoadGas) a call of a deployed
	// contract pays: 0 while its code is warm (as every code the harness
	// deploys is), else the load, which the benchmark's calls never do
	// (the module stays in memory), so it is reported apart
	// (BenchmarkAdversarialUpload times loads).
	loads map[ledger.Address]uint64
}

func newEnv(tb testing.TB) *env { return newEnvCosts(tb, meter.CostTable{}) }

// newEnvCosts is newEnv with a cost table (zero: the protocol's).
func newEnvCosts(tb testing.TB, costs meter.CostTable) *env {
	tb.Helper()
	ctx := context.Background()
	store, err := ledger.Open(filepath.Join(tb.TempDir(), "data"), ledger.StoreOptions{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	v, err := vm.New(ctx, vm.Config{Costs: costs})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close(ctx) })
	pv, err := vm.New(ctx, vm.Config{Purpose: vm.Policies, Costs: costs})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pv.Close(ctx) })
	denoms, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		tb.Fatal(err)
	}
	eng, err := contracts.New(v, store.Codec(), denoms, min(ledger.DefaultWarmCodes, max(1, v.PinCapacity())))
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{ctx: ctx, store: store, vm: v, policy: pv, eng: eng, gas: callGas,
		loads: map[ledger.Address]uint64{}}
	e.sender[0] = 0xad
	return e
}

func (e *env) tx(st *ledger.State, gas uint64) *contracts.Tx {
	e.txs++
	t := &contracts.Tx{St: st, Gas: ledger.NewGasMeter(gas), ChainID: "adversarial", Height: e.height + 1,
		TimeMs: 1_700_000_000_000 + int64(e.height)*1000, Sender: e.sender}
	t.TxHash[0], t.TxHash[1] = byte(e.txs), byte(e.txs>>8)
	return t
}

// commit writes st's buffered writes to the store as the next block.
func (e *env) commit(tb testing.TB, st *ledger.State) {
	tb.Helper()
	p, err := e.store.Prepare(st)
	if err != nil {
		tb.Fatal(err)
	}
	e.height++
	b := &ledger.Block{Header: ledger.Header{ChainID: "adversarial", Height: e.height, Time: 1_700_000_000_000 + int64(e.height)*1000, StateRoot: p.Root()}}
	if err := e.store.Commit(b, nil, p); err != nil {
		tb.Fatal(err)
	}
}

// deploy uploads wasm, instantiates it n times and commits; it returns the
// instances' addresses.
func (e *env) deploy(tb testing.TB, wasm []byte, n int) []ledger.Address {
	tb.Helper()
	st := ledger.NewState(e.store)
	tx := e.tx(st, vm.MaxUploadGas)
	id, err := e.eng.Upload(e.ctx, tx, wasm, nil)
	if err != nil {
		tb.Fatalf("upload: %v", err)
	}
	prepared, _, err := e.vm.Prepare(e.ctx, id, wasm, vm.MaxUploadGas) // the engine's bytes, compiled already
	if err != nil {
		tb.Fatal(err)
	}
	load, err := vm.LoadGas(prepared)
	if err != nil {
		tb.Fatal(err)
	}
	// An upload makes its code warm (contracts/warm.go): while it stays in
	// the warm set its calls pay no load, and the harness's set has room
	// for every code a benchmark deploys.
	warm, err := e.eng.WarmCodes(st)
	if err != nil {
		tb.Fatal(err)
	}
	for _, w := range warm {
		if w.ID == id {
			load = 0
		}
	}
	var addrs []ledger.Address
	for range n {
		a, _, err := e.eng.Instantiate(e.ctx, e.tx(st, vm.MaxTxGas), id, []byte("{}"), "adversarial", ledger.Address{}, nil)
		if err != nil {
			tb.Fatalf("instantiate: %v", err)
		}
		addrs = append(addrs, a)
		e.loads[a] = load
	}
	e.commit(tb, st)
	return addrs
}

// sample is the cost of one hostile call: the wall time, the CPU time of
// the thread that ran it (page faults included), the gas charged, and
// how much of that gas paid for module loads (included in gas).
type sample struct {
	wall, cpu time.Duration
	gas       uint64
	load      uint64
}

// measure times f. The caller must have locked its goroutine to its
// thread (runtime.LockOSThread), so that the thread's CPU clock counts
// exactly the call: on a machine shared with other jobs, wall time also
// counts the time the thread waited for a core. Work f hands to other
// goroutines (blake3 hashes large inputs in parallel) is counted with
// measureProcess.
func measure(f func() (uint64, error)) (sample, error) {
	return measureClock(unix.CLOCK_THREAD_CPUTIME_ID, f)
}

// measureProcess counts the CPU time of the whole process (garbage
// collection and background goroutines included).
func measureProcess(f func() (uint64, error)) (sample, error) {
	return measureClock(unix.CLOCK_PROCESS_CPUTIME_ID, f)
}

func measureClock(clock int32, f func() (uint64, error)) (sample, error) {
	c0, t0 := cpuClock(clock), time.Now()
	gas, err := f()
	return sample{wall: time.Since(t0), cpu: cpuClock(clock) - c0, gas: gas}, err
}

func cpuClock(clock int32) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// execute runs one transaction calling addr with msg in a fresh block
// state over st's writes (nil: committed state only) and returns its cost.
// The writes are reverted. gas is the limit on top of the load of addr's
// module (capped at vm.MaxTxGas).
func (e *env) execute(st *ledger.State, addr ledger.Address, msg []byte, gas uint64) (sample, error) {
	return e.executeClock(measure, st, addr, msg, gas, 0)
}

// executeClock is execute timed by clock; nested is the load charge of
// the nested calls the transaction makes (added to the limit too).
func (e *env) executeClock(clock func(func() (uint64, error)) (sample, error), st *ledger.State, addr ledger.Address, msg []byte, gas, nested uint64) (sample, error) {
	if st == nil {
		st = ledger.NewState(e.store)
	}
	snap := st.Snapshot()
	defer st.RevertTo(snap)
	load := e.loads[addr] + nested
	tx := e.tx(st, min(gas+load, vm.MaxTxGas))
	x, err := clock(func() (uint64, error) {
		_, err := e.eng.Execute(e.ctx, tx, addr, msg, nil)
		return tx.Gas.Used(), err
	})
	x.load = min(load, x.gas)
	return x, err
}

// refusingHost is a policy's Host: every state access fails.
type refusingHost struct{}

var errRefused = errors.New("adversarial: policy host call refused")

func (refusingHost) StorageGet([]byte) ([]byte, bool, error) { return nil, false, errRefused }
func (refusingHost) StorageSet(_, _ []byte) error            { return errRefused }
func (refusingHost) StorageDelete([]byte) error              { return errRefused }
func (refusingHost) StorageIterate(_, _ []byte, _ bool) (vm.Iterator, error) {
	return nil, errRefused
}
func (refusingHost) Balance([32]byte, string) (uint64, error) { return 0, errRefused }
func (refusingHost) Transfer([32]byte, string, uint64) error  { return errRefused }
func (refusingHost) Call(context.Context, [32]byte, []byte, []byte, uint64, bool) ([]byte, uint64, error) {
	return nil, 0, errRefused
}
func (refusingHost) Emit([]byte) error                       { return errRefused }
func (refusingHost) AddrToString([32]byte) string            { return "" }
func (refusingHost) AddrFromString(string) ([32]byte, error) { return [32]byte{}, errRefused }

// goBuild builds the Go package in dir (relative to this package) for
// wasip1 (c-shared) once per test binary; it skips when no go tool is
// available.
func goBuild(tb testing.TB, dir string) []byte {
	tb.Helper()
	b, err := goBuilds(dir)
	if errors.Is(err, exec.ErrNotFound) {
		tb.Skip("go tool not found")
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var goBuilds = func() func(string) ([]byte, error) {
	var mu sync.Mutex
	type built struct {
		b   []byte
		err error
	}
	done := map[string]built{}
	return func(dir string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if r, ok := done[dir]; ok {
			return r.b, r.err
		}
		b, err := build(dir)
		done[dir] = built{b, err}
		return b, err
	}
}()

func build(dir string) ([]byte, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "adversarial")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "m.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s: %v\n%s", dir, err, b)
	}
	return os.ReadFile(out)
}
