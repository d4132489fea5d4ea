package policies_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/auction"
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/optimal"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
	"github.com/sos-kernel/sos/vm"
)

var policyNames = []string{"greedy", "auction", "optimal"}

// benchGas is the gas limit of policy calls in tests: the default policy
// budget of an epoch (genesis policy_gas).
var benchGas = rome.DefaultParams().PolicyGas

// refusingHost is the Host of a policy call: a policy has no storage and
// may not call contracts or move funds, so everything fails.
type refusingHost struct{}

var errRefused = errors.New("policy: host call refused")

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

// compiled is a policy prepared for the VM.
type compiled struct {
	name     string
	code     [32]byte
	prepared []byte
	size     int
}

var (
	buildOnce sync.Once
	sharedVM  *vm.VM
	policies  map[string]*compiled
	buildErr  error
)

// load builds every policy for wasip1 (as build.sh does) and prepares it
// in one policy VM (vm.Policies limits) shared by the tests of this package.
func load(tb testing.TB) (*vm.VM, map[string]*compiled) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds and runs Wasm policies; skipped with -short")
	}
	buildOnce.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "policies")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		sharedVM, buildErr = vm.New(ctx, vm.Config{Purpose: vm.Policies})
		if buildErr != nil {
			return
		}
		policies = map[string]*compiled{}
		for _, name := range policyNames {
			out := filepath.Join(dir, name+".wasm")
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", out, "./"+name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if msg, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", name, err, msg)
				return
			}
			wasm, err := os.ReadFile(out)
			if err != nil {
				buildErr = err
				return
			}
			p, info, err := sharedVM.Prepare(ctx, sha256.Sum256(wasm), wasm, vm.MaxUploadGas)
			if err != nil {
				buildErr = fmt.Errorf("prepare %s: %w", name, err)
				return
			}
			if !slices.Contains(info.Exports, "allocate") {
				buildErr = fmt.Errorf("%s: no allocate export (exports %v)", name, info.Exports)
				return
			}
			policies[name] = &compiled{name: name, code: sha256.Sum256(wasm), prepared: p, size: info.Size}
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return sharedVM, policies
}

// outcome is one policy call.
type outcome struct {
	allocs  []policy.Allocation
	gas     uint64
	elapsed time.Duration
}

// call runs a policy in the VM; errors (a VM limit, a trap) are returned.
func call(v *vm.VM, c *compiled, snap []byte, nk int) (outcome, error) {
	start := time.Now()
	res, err := v.Call(context.Background(), c.code, c.prepared, "allocate", snap, vm.Env{ChainID: "test"}, refusingHost{}, benchGas)
	elapsed := time.Since(start)
	if err != nil {
		return outcome{gas: res.GasUsed}, fmt.Errorf("%s: %w (gas %d)", c.name, err, res.GasUsed)
	}
	if res.Failed {
		return outcome{gas: res.GasUsed}, fmt.Errorf("%s: policy error: %s", c.name, res.Data)
	}
	allocs, err := policy.DecodeAllocations(res.Data, nk)
	if err != nil {
		return outcome{}, fmt.Errorf("%s: %w", c.name, err)
	}
	return outcome{allocs, res.GasUsed, elapsed}, nil
}

// native are the policies' Go implementations, for runs outside the VM,
// with replicated requests served as the .wasm builds serve them: greedy
// and auction through policy.Handle (the replicas placed after the other
// requests), optimal through policy.HandleAll (it places them itself,
// with the bundles).
var native = map[string]func(*policy.Snapshot) ([]policy.Allocation, error){
	"greedy": func(s *policy.Snapshot) ([]policy.Allocation, error) {
		return policy.WithReplicas(s, func(s *policy.Snapshot) ([]policy.Allocation, error) { return fill.Greedy(s), nil })
	},
	"auction": func(s *policy.Snapshot) ([]policy.Allocation, error) { return policy.WithReplicas(s, auction.Allocate) },
	"optimal": func(s *policy.Snapshot) ([]policy.Allocation, error) { return optimal.Allocate(s, nil) },
}

// applyNative is native[name] on an encoded snapshot: decode, allocate,
// encode, as the policy does in the VM.
func applyNative(name string, snap []byte) ([]byte, error) {
	return policy.ApplyAll(snap, policy.Anytime(native[name]), nil)
}
