package conformance

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/ledger"
)

// JobVector is a determinism vector for jobs: each run is a job (module,
// inputs, stdin, args, env, limits, seed, clock) executed by the Jobs VM
// exactly as a provider's executor, a consumer's verifier and a challenge
// committee run it (kernel.JobVM through jobrun.Execute), and the
// expectation is what a job_result carries: end class, exit code, gas
// used, stdout and stderr ids, outputs and the output root. Every machine
// must reproduce it bit for bit: re-execution settles disputes only
// because it does. A file is a JobVector when it has a "job_runs" key.
type JobVector struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Runs        []JobRun `json:"job_runs"`
	Notes       []string `json:"notes,omitempty"`
	dir         string   // the vector's directory (its wasm/ holds the modules)
	modules     map[string][]byte
}

// JobRun is one job of a JobVector.
type JobRun struct {
	Name string `json:"name"`
	// Module names testdata/wasm/<module>.wasm.gz.
	Module      string     `json:"module"`
	Inputs      []FileSpec `json:"inputs,omitempty"`
	Stdin       string     `json:"stdin,omitempty"`
	Args        []string   `json:"args,omitempty"`
	Env         []string   `json:"env,omitempty"`
	GasLimit    uint64     `json:"gas_limit"`
	MemoryLimit uint64     `json:"memory_limit"`
	OutputLimit uint64     `json:"output_limit"`
	// Seed is random_get's seed (64 hex digits); TimeMs the job's clock
	// (Unix milliseconds).
	Seed   string          `json:"seed"`
	TimeMs int64           `json:"time_ms"`
	Expect *JobRunExpected `json:"expect,omitempty"`
}

// JobRunExpected is the outcome of a run, as its job_result states it.
type JobRunExpected struct {
	Class    string `json:"class"` // exited, trapped, out_of_gas, limit_exceeded
	ExitCode int32  `json:"exit_code"`
	GasUsed  uint64 `json:"gas_used"`
	// Stdout and Stderr are blob refs (BLAKE3 id "/" size); StdoutText
	// is stdout itself, for the reader (its first 512 bytes).
	Stdout     string   `json:"stdout"`
	StdoutText string   `json:"stdout_text,omitempty"`
	Stderr     string   `json:"stderr"`
	Outputs    []string `json:"outputs"` // "name id/size", sorted by name
	OutputRoot string   `json:"output_root"`
}

// IsJobVector reports whether the JSON file at path is a JobVector.
func IsJobVector(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(b, &probe) != nil {
		return false
	}
	_, ok := probe["job_runs"]
	return ok
}

// LoadJobVector reads a job vector and the modules it names from the
// wasm/ directory next to it.
func LoadJobVector(path string) (*JobVector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v JobVector
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", path, err)
	}
	if len(v.Runs) == 0 {
		return nil, fmt.Errorf("conformance: %s: no job runs", path)
	}
	v.dir, v.modules = filepath.Dir(path), map[string][]byte{}
	for _, r := range v.Runs {
		if _, ok := v.modules[r.Module]; ok {
			continue
		}
		w, err := readWasm(filepath.Join(v.dir, "wasm", r.Module+".wasm.gz"))
		if err != nil {
			return nil, fmt.Errorf("conformance: %s: run %s: %w", path, r.Name, err)
		}
		v.modules[r.Module] = w
	}
	return &v, nil
}

// memBlobs is a job's blobs held in memory.
type memBlobs map[ledger.BlobID][]byte

func (m memBlobs) add(p []byte) ledger.BlobRef {
	id := ledger.BlobID(blob.Sum(p))
	m[id] = p
	return ledger.BlobRef{ID: id, Size: uint64(len(p))}
}

// Blob implements jobrun.Blobs.
func (m memBlobs) Blob(_ context.Context, ref ledger.BlobRef) ([]byte, error) {
	p, ok := m[ref.ID]
	if !ok {
		return nil, fmt.Errorf("conformance: blob %s not in the vector", ref.ID)
	}
	return p, nil
}

func refString(r ledger.BlobRef) string { return fmt.Sprintf("%s/%d", r.ID, r.Size) }

// RunJobs executes every run of v in one Jobs VM (cacheDir: wazero's
// compilation cache, "" none) and returns the outcomes, in order.
func RunJobs(ctx context.Context, v *JobVector, cacheDir string) ([]*JobRunExpected, error) {
	x, err := kernel.NewJobVM(ctx, kernel.JobVMConfig{CacheDir: cacheDir})
	if err != nil {
		return nil, err
	}
	defer x.Close(context.WithoutCancel(ctx))
	out := make([]*JobRunExpected, 0, len(v.Runs))
	for i, r := range v.Runs {
		blobs := memBlobs{}
		seed, err := hex.DecodeString(r.Seed)
		if err != nil || len(seed) != 32 {
			return nil, fmt.Errorf("conformance: run %s: seed must be 64 hex digits", r.Name)
		}
		j := jobrun.Job{ID: uint64(i + 1), Module: blobs.add(v.modules[r.Module]), Args: r.Args, Env: r.Env,
			GasLimit: r.GasLimit, MemoryLimit: r.MemoryLimit, OutputLimit: r.OutputLimit, TimeMs: r.TimeMs}
		copy(j.Seed[:], seed)
		for _, f := range r.Inputs {
			ref := blobs.add([]byte(f.Content))
			j.Inputs = append(j.Inputs, ledger.JobFile{Name: f.Name, ID: ref.ID, Size: ref.Size})
		}
		if r.Stdin != "" {
			j.Stdin = blobs.add([]byte(r.Stdin))
		}
		res, err := jobrun.Execute(ctx, &j, blobs, x, 0)
		if err != nil {
			return nil, fmt.Errorf("conformance: run %s: %w", r.Name, err)
		}
		e := &JobRunExpected{Class: ledger.JobClassName(res.Class), ExitCode: res.ExitCode, GasUsed: res.GasUsed, Stdout: refString(res.Stdout),
			Stderr: refString(res.Stderr), Outputs: []string{}, OutputRoot: res.OutputRoot.String()}
		text := res.Blobs[res.Stdout.ID]
		if len(text) > 512 {
			text = text[:512]
		}
		e.StdoutText = string(text)
		for _, f := range res.Outputs {
			e.Outputs = append(e.Outputs, f.Name+" "+refString(f.Ref()))
		}
		out = append(out, e)
	}
	return out, nil
}

// DiffJobs compares a job vector's expectations with what RunJobs gave
// ("" when equal).
func DiffJobs(v *JobVector, got []*JobRunExpected) string {
	var sb strings.Builder
	if len(got) != len(v.Runs) {
		fmt.Fprintf(&sb, "runs: want %d, got %d\n", len(v.Runs), len(got))
	}
	for i := 0; i < len(v.Runs) && i < len(got); i++ {
		if v.Runs[i].Expect == nil {
			fmt.Fprintf(&sb, "run %s has no expectations (run the test with -update)\n", v.Runs[i].Name)
			continue
		}
		if w, g := jsonOf(v.Runs[i].Expect), jsonOf(got[i]); !bytes.Equal(w, g) {
			fmt.Fprintf(&sb, "run %s:\n  want %s\n  got  %s\n", v.Runs[i].Name, w, g)
		}
	}
	return sb.String()
}

// CheckJobVector runs a job vector and compares it with its expectations.
func CheckJobVector(ctx context.Context, path, cacheDir string) error {
	v, err := LoadJobVector(path)
	if err != nil {
		return err
	}
	got, err := RunJobs(ctx, v, cacheDir)
	if err != nil {
		return err
	}
	if d := DiffJobs(v, got); d != "" {
		return fmt.Errorf("conformance: %s differs from its golden expectations:\n%s", filepath.Base(path), d)
	}
	return nil
}
