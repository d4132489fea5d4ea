package rome

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// PolicyEntry is the export a policy module must have.
const PolicyEntry = "allocate"

// Names of the built-in policies in epoch records. The built-in fallback
// (Builtin, fallback_policy "greedy") runs both and uses the one whose
// allocation has the larger total surplus (FirstCome on a tie); the record
// names the one used.
const (
	Builtin          = "builtin"
	BuiltinFirstCome = "builtin:fcfs"   // FirstCome: first come first served, best fit
	BuiltinGreedy    = "builtin:greedy" // Greedy: greedy.wasm's algorithm, natively
)

func (m *Market) uploadPolicy(ctx context.Context, tx *Tx, p *ledger.RomePolicyUpload) (any, error) {
	if m.vm == nil {
		return nil, ErrNoVM
	}
	if err := tx.Gas.Consume(GasPolicyPerByte*uint64(len(p.Wasm)), "policy upload"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	id := ledger.HashBytes(p.Wasm)
	var existing Policy
	if ok, err := s.get(rkey(tagPolicy, id[:]), &existing); err != nil {
		return nil, err
	} else if ok {
		tx.emit("rome_policy_upload", "policy_id", id.String(), "deduplicated", "true")
		return map[string]any{"policy_id": id.String(), "name": existing.Name}, nil
	}
	// Everything Prepare does is charged, also when it fails.
	prepared, info, err := m.vm.Prepare(ctx, id, p.Wasm, min(tx.Gas.Remaining(), vm.MaxUploadGas))
	if cerr := tx.Gas.Consume(info.GasUsed, "preparing the policy"); cerr != nil && err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, vm.ErrOutOfGas), errors.Is(err, ledger.ErrOutOfGas):
		return nil, fmt.Errorf("rome: policy upload: %w: %w", ledger.ErrOutOfGas, err)
	case err != nil:
		return nil, fmt.Errorf("rome: policy upload: %w: %w", err, ErrInvalid)
	}
	if err := tx.Gas.Consume(GasPolicyStorePerByte*uint64(len(prepared)), "storing the prepared policy"); err != nil {
		return nil, err
	}
	if !slices.Contains(info.Exports, PolicyEntry) {
		return nil, fmt.Errorf("rome: policy upload: module does not export %q: %w", PolicyEntry, ErrInvalid)
	}
	pol := Policy{ID: id, Name: p.Name, Uploader: tx.Sender, Size: uint32(len(p.Wasm)), Height: tx.Height}
	if err := s.put(rkey(tagPolicy, id[:]), &pol); err != nil {
		return nil, err
	}
	if err := s.setRaw(rkey(tagPolicyBin, id[:]), prepared); err != nil {
		return nil, err
	}
	tx.emit("rome_policy_upload", "policy_id", id.String(), "name", p.Name, "size", strconv.Itoa(len(p.Wasm)))
	return map[string]any{"policy_id": id.String(), "name": p.Name, "size": len(p.Wasm)}, nil
}

// errPolicyHost is what a policy's storage, transfer and call host calls
// get: a policy computes, it does not act.
var errPolicyHost = errors.New("rome: policies have no storage, funds or calls")

// policyHost is the VM host of a policy run: it refuses everything that
// touches the chain.
type policyHost struct{}

var _ vm.Host = policyHost{}

func (policyHost) StorageGet([]byte) ([]byte, bool, error) { return nil, false, errPolicyHost }
func (policyHost) StorageSet([]byte, []byte) error         { return errPolicyHost }
func (policyHost) StorageDelete([]byte) error              { return errPolicyHost }
func (policyHost) StorageIterate([]byte, []byte, bool) (vm.Iterator, error) {
	return nil, errPolicyHost
}
func (policyHost) Balance([32]byte, string) (uint64, error)  { return 0, errPolicyHost }
func (policyHost) Transfer([32]byte, string, uint64) error   { return errPolicyHost }
func (policyHost) Emit([]byte) error                         { return errPolicyHost }
func (policyHost) AddrToString(a [32]byte) string            { return ledger.Address(a).String() }
func (policyHost) AddrFromString(s string) ([32]byte, error) { return ledger.ParseAddress(s) }
func (policyHost) Call(context.Context, [32]byte, []byte, []byte, uint64, bool) ([]byte, uint64, error) {
	return nil, 0, errPolicyHost
}

// PolicyRun is the outcome of running a policy on a snapshot.
type PolicyRun struct {
	Allocations []Allocation
	GasUsed     uint64
	Err         error // why the output cannot be used (nil: valid)
	// Interrupted is set when the policy trapped or ran out of gas after it
	// had handed in an allocation list, and that list (the last one it
	// handed in) is valid and is Allocations: the class of failure
	// ("out of gas", "trap", ...).
	Interrupted string
}

// RunPolicy runs a prepared policy on a snapshot with a gas budget and
// validates its output. It never returns allocations that fail Validate.
//
// A policy run pays no load charge (vm.Warm): the epoch's budget is for
// the policy's work, and loading the active policy is not something a
// transaction can make a node repeat. allocate pins the active policy in
// the Policies VM, so a node loads it once when it becomes active (a
// governance decision) and once after a restart, at its own cost; only
// policy uploads, which pay gigagas each, pass through the same cache.
//
// A policy may hand in allocation lists as it goes (each set_result call
// replaces the previous one; docs/rome-policy-abi.md, "Anytime policies"):
// when the call ends with a VM failure (a trap, out of gas, a limit), the
// last list it handed in is decoded and validated like a returned one, and
// used if valid. Metering makes the point where a call stops, and so that
// list, the same on every node. Only the last list is kept (the VM holds
// one result, at most the result limit): a policy that hands in an invalid
// list after a valid one has lost the valid one.
func RunPolicy(ctx context.Context, v *vm.VM, id ledger.Hash, prepared []byte, snap *Snapshot, env vm.Env, gas uint64) PolicyRun {
	input := snap.Encode()
	if limit := v.Limits().InputBytes; len(input) > limit {
		return PolicyRun{Err: fmt.Errorf("rome: snapshot is %d bytes, above the VM's input limit %d", len(input), limit)}
	}
	env.ReadOnly = true
	env.Self = id
	res, err := v.Call(ctx, id, prepared, PolicyEntry, input, env, policyHost{}, gas, vm.Warm(nil))
	run := PolicyRun{GasUsed: res.GasUsed}
	switch {
	case err != nil && ctx.Err() != nil:
		run.Err = fmt.Errorf("rome: policy run cancelled: %w", ctx.Err())
		return run
	case err != nil:
		// The reason is stored on chain, so it must not carry VM or runtime
		// wording (trap messages, function numbers) that an upgrade of the VM
		// could change: keep only the class of failure.
		class := vmFailureClass(err)
		if len(res.Data) == 0 {
			run.Err = fmt.Errorf("rome: policy failed: %s", class)
			return run
		}
		as, err := decodeValid(snap, res.Data)
		if err != nil {
			run.Err = fmt.Errorf("rome: policy failed: %s; the allocation it handed in before: %w", class, err)
			return run
		}
		run.Allocations, run.Interrupted = as, class
		return run
	case res.Failed:
		msg := string(res.Data)
		if len(msg) > 200 {
			msg = msg[:200]
		}
		run.Err = fmt.Errorf("rome: policy returned an error: %q", msg)
		return run
	}
	run.Allocations, run.Err = decodeValid(snap, res.Data)
	return run
}

// decodeValid decodes an allocation list and validates it against snap.
func decodeValid(snap *Snapshot, b []byte) ([]Allocation, error) {
	as, err := DecodeAllocations(b, len(snap.Kinds))
	if err != nil {
		return nil, err
	}
	if err := Validate(snap, as); err != nil {
		return nil, err
	}
	return as, nil
}

// vmFailureClass names a VM failure in stable words.
func vmFailureClass(err error) string {
	switch {
	case errors.Is(err, vm.ErrOutOfGas):
		return "out of gas"
	case errors.Is(err, vm.ErrLimit):
		return "VM limit exceeded"
	case errors.Is(err, vm.ErrInvalidModule):
		return "invalid module"
	case errors.Is(err, vm.ErrReadOnly):
		return "state change attempted"
	case errors.Is(err, vm.ErrCallDepth):
		return "call depth exceeded"
	case errors.Is(err, vm.ErrTrap):
		return "trap"
	}
	return "VM error"
}

// policySeed seeds random_get for an epoch's policy run.
func policySeed(epoch uint64) [32]byte {
	return sha256.Sum256(binary.BigEndian.AppendUint64([]byte("sos/rome/policy/seed"), epoch))
}

// allocation is the outcome of an epoch's allocation step.
type allocation struct {
	as          []Allocation
	used        string // policy id, BuiltinFirstCome, BuiltinGreedy or "none"
	gas         uint64
	rejected    string // why the active policy's output was not used
	interrupted string // the active policy stopped (class) after handing in what is used
}

// allocate runs the active policy, falling back to the built-in one when
// there is none or its output cannot be used.
func (m *Market) allocate(ctx context.Context, s *store, p Params, snap *Snapshot, env vm.Env) allocation {
	var out allocation
	if p.ActivePolicy != "" {
		id, _ := ledger.ParseHash(p.ActivePolicy) // validated when set
		prepared, err := s.st.Get(rkey(tagPolicyBin, id[:]))
		var run PolicyRun
		switch {
		case err != nil:
			run.Err = err
		case prepared == nil:
			run.Err = fmt.Errorf("rome: active policy %s is not stored", id)
		case m.vm == nil:
			run.Err = ErrNoVM
		default:
			// Node-local, never part of the outcome: keep the active policy
			// in memory (the Policies VM pins only it; see RunPolicy). With
			// room for one pin SetPinned cannot fail.
			if m.vm.PinCapacity() > 0 {
				_ = m.vm.SetPinned([][32]byte{id})
			}
			env.Seed = policySeed(snap.Epoch)
			run = RunPolicy(ctx, m.vm, id, prepared, snap, env, p.PolicyGas)
		}
		if run.Err == nil {
			return allocation{as: run.Allocations, used: id.String(), gas: run.GasUsed, interrupted: run.Interrupted}
		}
		out.rejected, out.gas = run.Err.Error(), run.GasUsed
	}
	if p.FallbackPolicy == "none" {
		out.used = "none"
		return out
	}
	out.as, out.used = BuiltinAllocate(snap)
	if err := Validate(snap, out.as); err != nil { // a bug in a built-in policy; never allocate what fails
		out.rejected += "; fallback " + out.used + ": " + err.Error()
		out.as = nil
	}
	return out
}

// BuiltinAllocate is the built-in fallback: it runs FirstCome and Greedy
// and returns the allocation with the larger total surplus
// (Σ amount × (max price − price), exactly), FirstCome's on a tie, with
// the name of the policy that made it (BuiltinFirstCome or BuiltinGreedy).
// Both are native Go, deterministic, and need no policy in state.
func BuiltinAllocate(s *Snapshot) ([]Allocation, string) {
	fc, gr := FirstCome(s), Greedy(s)
	if Surplus(s, gr).Cmp(Surplus(s, fc)) > 0 {
		return gr, BuiltinGreedy
	}
	return fc, BuiltinFirstCome
}

// Surplus is an allocation list's total surplus, Σ amount × (request max
// price − price) over its kinds, exactly (a price above the maximum counts
// negative). as must index into s.
func Surplus(s *Snapshot, as []Allocation) *big.Int {
	var sum, t, d big.Int
	for _, a := range as {
		r := &s.Requests[a.Request]
		for k, amt := range a.Amount {
			if amt == 0 {
				continue
			}
			d.SetUint64(r.MaxPrice[k])
			d.Sub(&d, t.SetUint64(a.Price[k]))
			sum.Add(&sum, d.Mul(&d, t.SetUint64(amt)))
		}
	}
	return &sum
}
