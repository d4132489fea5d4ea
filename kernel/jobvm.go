package kernel

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// JobVMConfig configures a JobVM: the caps are the node's (or the CLI's)
// choice, not consensus — a job beyond them is refused, never run
// differently.
type JobVMConfig struct {
	// CacheDir holds wazero's compilation cache ("" none): a Go job module
	// compiles in seconds, and a cached one loads in milliseconds.
	CacheDir string
	// MaxModuleBytes and MaxMemoryBytes cap the module run and the memory
	// one job may ask for (0: the VM's defaults, 64 MiB and 1 GiB).
	MaxModuleBytes uint64
	MaxMemoryBytes uint64
	Logger         *slog.Logger
}

// JobVM runs jobs in the VM's Jobs purpose: it is the jobrun.Executor of
// a node's executor, verifier and committee duty, and of `sos job verify`.
// It is the one place that knows both jobrun's and the VM's types. Safe
// for concurrent use.
type JobVM struct{ v *vm.VM }

var _ jobrun.Executor = (*JobVM)(nil)

// NewJobVM creates a Jobs VM. Close it when done.
func NewJobVM(ctx context.Context, cfg JobVMConfig) (*JobVM, error) {
	if cfg.MaxModuleBytes > 1<<62 || cfg.MaxMemoryBytes > 1<<62 {
		return nil, fmt.Errorf("kernel: job VM: caps out of range")
	}
	v, err := vm.New(ctx, vm.Config{Purpose: vm.Jobs, CacheDir: cfg.CacheDir, Logger: cfg.Logger,
		MaxJobModuleBytes: int64(cfg.MaxModuleBytes), MaxJobMemoryBytes: int64(cfg.MaxMemoryBytes)})
	if err != nil {
		return nil, err
	}
	return &JobVM{v: v}, nil
}

// Run implements jobrun.Executor.
func (x *JobVM) Run(ctx context.Context, s *jobrun.Spec) (*jobrun.Run, error) {
	spec := vm.JobSpec{Args: s.Args, Env: s.Env, GasLimit: s.GasLimit, MemoryLimit: s.MemoryLimit, OutputLimit: s.OutputLimit,
		TimeMs: s.TimeMs, Seed: s.Seed}
	if len(s.Stdin) > 0 {
		spec.Stdin = vm.JobBytes("", s.Stdin)
	}
	for _, in := range s.Inputs {
		spec.Inputs = append(spec.Inputs, vm.JobBytes(in.Name, in.Data))
	}
	id := s.ModuleID
	if id == (ledger.BlobID{}) {
		id = ledger.BlobID(blob.Sum(s.Module))
	}
	res, err := x.v.RunJob(ctx, id, vm.JobBytes("", s.Module), spec)
	if err != nil {
		return nil, err
	}
	run := &jobrun.Run{Class: ledger.JobClass(res.Status), ExitCode: res.ExitCode, GasUsed: res.GasUsed, Stdout: res.Stdout, Stderr: res.Stderr,
		Outputs: make([]jobrun.File, len(res.Outputs))}
	for i, o := range res.Outputs {
		run.Outputs[i] = jobrun.File{Name: o.Path, Data: o.Data}
	}
	return run, nil
}

// Close releases the VM.
func (x *JobVM) Close(ctx context.Context) error { return x.v.Close(ctx) }
