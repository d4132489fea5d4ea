package rome

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// PolicyEntry is the export a policy module must have.
const PolicyEntry = "allocate"

// BuiltinGreedy names the built-in fallback policy in epoch records.
const BuiltinGreedy = "builtin:greedy"

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
}

// RunPolicy runs a prepared policy on a snapshot with a gas budget and
// validates its output. It never returns allocations that fail Validate.
func RunPolicy(ctx context.Context, v *vm.VM, id ledger.Hash, prepared []byte, snap *Snapshot, env vm.Env, gas uint64) PolicyRun {
	input := snap.Encode()
	if limit := v.Limits().InputBytes; len(input) > limit {
		return PolicyRun{Err: fmt.Errorf("rome: snapshot is %d bytes, above the VM's input limit %d", len(input), limit)}
	}
	env.ReadOnly = true
	env.Self = id
	res, err := v.Call(ctx, id, prepared, PolicyEntry, input, env, policyHost{}, gas)
	run := PolicyRun{GasUsed: res.GasUsed}
	switch {
	case err != nil:
		// The reason is stored on chain, so it must not carry VM or runtime
		// wording (trap messages, function numbers) that an upgrade of the VM
		// could change: keep only the class of failure.
		run.Err = fmt.Errorf("rome: policy failed: %s", vmFailureClass(err))
		return run
	case res.Failed:
		msg := string(res.Data)
		if len(msg) > 200 {
			msg = msg[:200]
		}
		run.Err = fmt.Errorf("rome: policy returned an error: %q", msg)
		return run
	}
	as, err := DecodeAllocations(res.Data, len(snap.Kinds))
	if err != nil {
		run.Err = err
		return run
	}
	if err := Validate(snap, as); err != nil {
		run.Err = err
		return run
	}
	run.Allocations = as
	return run
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

// allocate runs the active policy, falling back to the built-in one when
// there is none or its output cannot be used.
func (m *Market) allocate(ctx context.Context, s *store, p Params, snap *Snapshot, env vm.Env) (as []Allocation, used string, gas uint64, rejected string) {
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
			env.Seed = policySeed(snap.Epoch)
			run = RunPolicy(ctx, m.vm, id, prepared, snap, env, p.PolicyGas)
		}
		if run.Err == nil {
			return run.Allocations, id.String(), run.GasUsed, ""
		}
		rejected, gas = run.Err.Error(), run.GasUsed
	}
	if p.FallbackPolicy == "none" {
		return nil, "none", gas, rejected
	}
	as = Greedy(snap)
	if err := Validate(snap, as); err != nil { // a bug in Greedy; never allocate what fails
		return nil, BuiltinGreedy, gas, rejected + "; fallback: " + err.Error()
	}
	return as, BuiltinGreedy, gas, rejected
}
