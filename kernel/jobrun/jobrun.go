// Package jobrun runs a job from its ledger record and turns the run into
// the outcome a result carries, so that the provider node's executor, the
// consumer node's verifier and `sos job verify` compute the same thing the
// same way.
//
// Using it:
//
//  1. Make a Job from the record: FromRome (a node reading its state) or
//     FromAPI (a client reading GET /v1/jobs/{id}).
//  2. Load fetches the module, inputs and stdin from a Blobs source (the
//     node's store, StoreBlobs; a node's API, ClientBlobs) and checks each
//     against its (id, size): a source cannot feed the run other bytes.
//  3. An Executor runs the Spec (the VM's Jobs purpose; the package does
//     not import the VM, the caller wires one in).
//  4. Summarize turns the Run into a Result: outputs sorted by path with
//     their blob ids, stdout and stderr as blobs (capped at
//     ledger.MaxJobLogBytes), and the output root (rome.OutputRoot). The
//     executor stores Result.Blobs and sends Result.Payload as job_result.
//  5. Verify does 2–4 and compares the outcome (exit code, gas, output
//     root, stdout) with the one the result claims; a mismatch is what a
//     challenge (job_challenge) disputes.
//
// Re-execution proves a result right or wrong only because execution is
// deterministic: the same module, inputs, args, env, limits, seed and
// clock give the same exit code, gas, stdout and outputs on every machine.
package jobrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// Errors, matched with errors.Is.
var (
	// ErrNoExecutor: this program has no job executor to run jobs with.
	ErrNoExecutor = errors.New("jobrun: no job executor in this program")
	// ErrCorrupt: a blob's content does not match its reference.
	ErrCorrupt = errors.New("blob does not match its reference")
	// ErrTooLarge: the job's data is more than the caller allows to load.
	ErrTooLarge = errors.New("job data too large")
	// ErrOutput: the executor's run cannot be a result (a bad output path,
	// outputs over the job's output limit).
	ErrOutput = errors.New("invalid job output")
)

// Job is what running a job needs from its record.
type Job struct {
	ID          uint64
	Module      ledger.BlobRef
	Inputs      []ledger.JobFile // sorted by name
	Stdin       ledger.BlobRef   // zero: none
	Args        []string         // argv[1:]
	Env         []string         // "K=V"
	GasLimit    uint64
	MemoryLimit uint64
	OutputLimit uint64
	Seed        ledger.Hash // random_get's seed
	TimeMs      int64       // the job's clock: its submit block's time
}

// FromRome takes a job from the ledger's record.
func FromRome(j *rome.Job) Job {
	return Job{ID: j.ID, Module: j.Module, Inputs: j.Inputs, Stdin: j.Stdin, Args: j.Args, Env: j.Env, GasLimit: j.GasLimit,
		MemoryLimit: j.MemoryLimit, OutputLimit: j.OutputLimit, Seed: j.Seed, TimeMs: j.TimeMs}
}

func parseRef(what string, r client.BlobRef) (ledger.BlobRef, error) {
	id, err := ledger.ParseBlobID(r.ID)
	if err != nil {
		return ledger.BlobRef{}, fmt.Errorf("jobrun: %s: %w", what, err)
	}
	return ledger.BlobRef{ID: id, Size: r.Size}, nil
}

// FromAPI takes a job from the API's answer (GET /v1/jobs/{id}).
func FromAPI(j *client.Job) (Job, error) {
	out := Job{ID: j.JobID, Args: j.Args, Env: j.Env, GasLimit: j.GasLimit, MemoryLimit: j.MemoryLimit,
		OutputLimit: j.OutputLimit, TimeMs: j.SubmitTimeMs}
	var err error
	if out.Module, err = parseRef("module", j.Module); err != nil {
		return Job{}, err
	}
	if j.Stdin != nil {
		if out.Stdin, err = parseRef("stdin", *j.Stdin); err != nil {
			return Job{}, err
		}
	}
	for _, f := range j.Inputs {
		r, err := parseRef("input "+f.Name, f.Ref())
		if err != nil {
			return Job{}, err
		}
		out.Inputs = append(out.Inputs, ledger.JobFile{Name: f.Name, ID: r.ID, Size: r.Size})
	}
	if out.Seed, err = ledger.ParseHash(j.Seed); err != nil {
		return Job{}, fmt.Errorf("jobrun: seed: %w", err)
	}
	return out, nil
}

// DataBytes is the size of everything the job reads: module, inputs, stdin.
func (j *Job) DataBytes() uint64 {
	n := j.Module.Size + j.Stdin.Size
	for _, f := range j.Inputs {
		n += f.Size
	}
	return n
}

// File is a named file of a run: an input at /in/<Name>, or an output
// written at /out/<Name> (a relative path).
type File struct {
	Name string
	Data []byte
}

// Spec is what an Executor runs.
type Spec struct {
	JobID       uint64
	ModuleID    ledger.BlobID // the module's blob id (Load checked it): a VM's compilation cache key
	Module      []byte        // a WASI command module
	Inputs      []File        // readable at /in/<name>, sorted by name
	Stdin       []byte
	Args        []string // argv[1:] (argv[0] is "job")
	Env         []string
	GasLimit    uint64
	MemoryLimit uint64 // bytes of linear memory
	OutputLimit uint64 // bytes written under /out, in total
	Seed        [32]byte
	TimeMs      int64
}

// Run is how a run ended, as the executor saw it.
type Run struct {
	Class    ledger.JobClass // exited, trapped, out of gas, limit exceeded
	ExitCode int32
	GasUsed  uint64
	Stdout   []byte
	Stderr   []byte
	Outputs  []File // the files under /out, any order
}

// Executor runs a job. Its error means it could not run the job at all
// (the module failing, trapping or running out of gas is a Run, not an
// error). Run must be deterministic: the same Spec gives the same Run.
type Executor interface {
	Run(ctx context.Context, s *Spec) (*Run, error)
}

// Blobs is where a job's blobs are read from. Blob returns a blob's
// content; Load checks it against ref, so a source need not.
type Blobs interface {
	Blob(ctx context.Context, ref ledger.BlobRef) ([]byte, error)
}

// Load fetches the job's module, inputs and stdin and checks each
// against its id and size (ErrCorrupt otherwise). maxBytes > 0 refuses a
// job whose data is larger (ErrTooLarge) before anything is fetched.
func Load(ctx context.Context, j *Job, b Blobs, maxBytes uint64) (*Spec, error) {
	if maxBytes > 0 && j.DataBytes() > maxBytes {
		return nil, fmt.Errorf("jobrun: job %d reads %d bytes, more than the %d allowed: %w", j.ID, j.DataBytes(), maxBytes, ErrTooLarge)
	}
	get := func(what string, ref ledger.BlobRef) ([]byte, error) {
		p, err := b.Blob(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("jobrun: job %d: %s %s: %w", j.ID, what, ref.ID, err)
		}
		if uint64(len(p)) != ref.Size || blob.Sum(p) != blob.ID(ref.ID) {
			return nil, fmt.Errorf("jobrun: job %d: %s %s: got %d bytes hashing to %s: %w", j.ID, what, ref.ID, len(p), blob.Sum(p), ErrCorrupt)
		}
		return p, nil
	}
	s := &Spec{JobID: j.ID, ModuleID: j.Module.ID, Args: slices.Clone(j.Args), Env: slices.Clone(j.Env), GasLimit: j.GasLimit, MemoryLimit: j.MemoryLimit,
		OutputLimit: j.OutputLimit, Seed: j.Seed, TimeMs: j.TimeMs}
	var err error
	if s.Module, err = get("module", j.Module); err != nil {
		return nil, err
	}
	for _, f := range j.Inputs {
		p, err := get("input "+f.Name, f.Ref())
		if err != nil {
			return nil, err
		}
		s.Inputs = append(s.Inputs, File{Name: f.Name, Data: p})
	}
	if !j.Stdin.IsZero() {
		if s.Stdin, err = get("stdin", j.Stdin); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Result is a run as a job_result reports it.
type Result struct {
	Class      ledger.JobClass
	ExitCode   int32
	GasUsed    uint64
	Outputs    []ledger.JobFile // sorted by path
	Stdout     ledger.BlobRef
	Stderr     ledger.BlobRef
	OutputRoot ledger.Hash
	// Blobs holds the content of the outputs, stdout and stderr by id: what
	// the executing node stores and serves.
	Blobs map[ledger.BlobID][]byte
}

// Summarize turns a run of a job with the given output limit into a
// Result. Stdout and stderr keep their first ledger.MaxJobLogBytes bytes
// (the executor should already have dropped the rest).
func Summarize(r *Run, outputLimit uint64) (*Result, error) {
	out := &Result{Class: r.Class, ExitCode: r.ExitCode, GasUsed: r.GasUsed, Outputs: []ledger.JobFile{}, Blobs: map[ledger.BlobID][]byte{}}
	add := func(p []byte) ledger.BlobRef {
		id := ledger.BlobID(blob.Sum(p))
		out.Blobs[id] = p
		return ledger.BlobRef{ID: id, Size: uint64(len(p))}
	}
	files := slices.Clone(r.Outputs)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var total uint64
	for i, f := range files {
		if i > 0 && files[i-1].Name == f.Name {
			return nil, fmt.Errorf("jobrun: output %q written twice: %w", f.Name, ErrOutput)
		}
		if total += uint64(len(f.Data)); total > outputLimit {
			return nil, fmt.Errorf("jobrun: outputs above the output limit of %d bytes: %w", outputLimit, ErrOutput)
		}
		ref := add(f.Data)
		out.Outputs = append(out.Outputs, ledger.JobFile{Name: f.Name, ID: ref.ID, Size: ref.Size})
	}
	out.Stdout, out.Stderr = add(capLog(r.Stdout)), add(capLog(r.Stderr))
	out.OutputRoot = rome.OutputRoot(out.Outputs, out.Stdout, out.Stderr)
	if err := out.Payload(1, 0, 0).ValidateBasic(); err != nil {
		return nil, fmt.Errorf("jobrun: %w: %w", ErrOutput, err)
	}
	return out, nil
}

func capLog(p []byte) []byte {
	if len(p) > ledger.MaxJobLogBytes {
		return p[:ledger.MaxJobLogBytes]
	}
	return p
}

// Outcome is what re-execution must reproduce.
func (r *Result) Outcome() ledger.JobOutcome {
	return ledger.JobOutcome{ExitCode: r.ExitCode, GasUsed: r.GasUsed, OutputRoot: r.OutputRoot, Stdout: r.Stdout.ID}
}

// Payload is the job_result transaction of this result for job id, with
// the bytes the data plane moved for it.
func (r *Result) Payload(id, bytesIn, bytesOut uint64) *ledger.JobResult {
	return &ledger.JobResult{JobID: id, Class: r.Class, ExitCode: r.ExitCode, GasUsed: r.GasUsed, Outputs: r.Outputs,
		Stdout: r.Stdout, Stderr: r.Stderr, OutputRoot: r.OutputRoot, BytesIn: bytesIn, BytesOut: bytesOut}
}

// Execute loads a job, runs it and summarizes the run.
func Execute(ctx context.Context, j *Job, b Blobs, x Executor, maxBytes uint64) (*Result, error) {
	if x == nil {
		return nil, ErrNoExecutor
	}
	s, err := Load(ctx, j, b, maxBytes)
	if err != nil {
		return nil, err
	}
	run, err := x.Run(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("jobrun: job %d: %w", j.ID, err)
	}
	return Summarize(run, j.OutputLimit)
}

// Report is what a re-execution found.
type Report struct {
	Result  *Result           // the re-execution's
	Claimed ledger.JobOutcome // what the job's result says
	Match   bool
	// Diffs names each part of the outcome that differs, e.g.
	// "gas used 1200, the result says 1300".
	Diffs []string
}

// Verify re-executes a job and compares its outcome with claimed (the
// result's outcome).
func Verify(ctx context.Context, j *Job, claimed ledger.JobOutcome, b Blobs, x Executor, maxBytes uint64) (*Report, error) {
	res, err := Execute(ctx, j, b, x, maxBytes)
	if err != nil {
		return nil, err
	}
	rep := &Report{Result: res, Claimed: claimed}
	got := res.Outcome()
	if got.ExitCode != claimed.ExitCode {
		rep.Diffs = append(rep.Diffs, fmt.Sprintf("exit code %d, the result says %d", got.ExitCode, claimed.ExitCode))
	}
	if got.GasUsed != claimed.GasUsed {
		rep.Diffs = append(rep.Diffs, fmt.Sprintf("gas used %d, the result says %d", got.GasUsed, claimed.GasUsed))
	}
	if got.OutputRoot != claimed.OutputRoot {
		rep.Diffs = append(rep.Diffs, fmt.Sprintf("output root %s, the result says %s", got.OutputRoot, claimed.OutputRoot))
	}
	if got.Stdout != claimed.Stdout {
		rep.Diffs = append(rep.Diffs, fmt.Sprintf("stdout %s, the result says %s", got.Stdout, claimed.Stdout))
	}
	rep.Match = len(rep.Diffs) == 0
	return rep, nil
}

// StoreBlobs reads blobs from a node's blob store.
type StoreBlobs struct{ Store *blob.Store }

// Blob implements Blobs.
func (s StoreBlobs) Blob(ctx context.Context, ref ledger.BlobRef) ([]byte, error) {
	r, err := s.Store.Open(blob.ID(ref.ID))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readUpTo(r, ref.Size)
}

// ClientBlobs reads blobs from a node's API (GET /v1/blobs/{id}).
type ClientBlobs struct{ Client *client.Client }

// Blob implements Blobs.
func (c ClientBlobs) Blob(ctx context.Context, ref ledger.BlobRef) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := c.Client.GetBlob(ctx, ref.ID.String(), int64(ref.Size), &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readUpTo reads r to its end, at most size+1 bytes (one more tells a
// blob longer than its reference), growing as bytes arrive.
func readUpTo(r io.Reader, size uint64) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, int64(min(size, 1<<62))+1)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
