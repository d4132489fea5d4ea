package ledger

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Payloads of workloads: jobs that run on a lease's provider node (kinds
// 39–42, in the ROME range). Their rules live in package rome; this file
// only makes them decodable and checks what needs no state.

// Job payload kinds.
const (
	KindJobSubmit    PayloadKind = 39
	KindJobResult    PayloadKind = 40
	KindJobChallenge PayloadKind = 41
	KindJobVerdict   PayloadKind = 42
)

// Job limits checked without state. Governance bounds the sizes a job may
// use (module, memory, outputs); these bound what a transaction may carry.
const (
	MaxJobInputs    = 64
	MaxJobOutputs   = 256
	MaxJobArgs      = 256
	MaxJobEnv       = 256
	MaxJobArgBytes  = 64 << 10 // args and env together
	MaxJobNameBytes = 255      // an input name, or one component of an output path
	MaxJobPathBytes = 1024     // an output path under /out
	// MaxJobLogBytes caps stdout and stderr each: the executor keeps the
	// first MaxJobLogBytes bytes of a stream and drops the rest.
	MaxJobLogBytes = 1 << 20
)

// BlobID is the id of a content-addressed blob: the BLAKE3-256 hash of its
// content (what `b3sum FILE` prints). JSON shows 64 hex digits.
type BlobID [32]byte

func (b BlobID) String() string { return hex.EncodeToString(b[:]) }

// IsZero reports whether b is all zeros (no blob).
func (b BlobID) IsZero() bool { return b == BlobID{} }

// MarshalText implements encoding.TextMarshaler.
func (b BlobID) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *BlobID) UnmarshalText(t []byte) error {
	p, err := ParseBlobID(string(t))
	if err != nil {
		return err
	}
	*b = p
	return nil
}

// ParseBlobID parses 64 hex digits.
func ParseBlobID(s string) (BlobID, error) {
	var id BlobID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("ledger: blob id %q: want 64 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// BlobRef names a blob and its size in bytes: every reference to a blob on
// the ledger carries both.
type BlobRef struct {
	_    struct{} `cbor:",toarray"`
	ID   BlobID   `json:"id"`
	Size uint64   `json:"size"`
}

// IsZero reports whether r names no blob.
func (r BlobRef) IsZero() bool { return r.ID.IsZero() && r.Size == 0 }

// JobFile is a named blob: an input readable at /in/<name>, or an output
// written at /out/<name> (a relative path; outputs may be nested).
type JobFile struct {
	_    struct{} `cbor:",toarray"`
	Name string   `json:"name"`
	ID   BlobID   `json:"id"`
	Size uint64   `json:"size"`
}

// Ref is the file's blob.
func (f JobFile) Ref() BlobRef { return BlobRef{ID: f.ID, Size: f.Size} }

// JobClass is how a job's run ended.
type JobClass = uint8

// Job end classes. A trap, running out of gas and exceeding a limit are
// failures of the program, not of the provider: the provider did its job.
const (
	JobExited        JobClass = 1 // proc_exit or return from _start; ExitCode says how
	JobTrapped       JobClass = 2
	JobOutOfGas      JobClass = 3
	JobLimitExceeded JobClass = 4 // memory or output limit
)

// JobClassName names a job end class.
func JobClassName(c JobClass) string {
	switch c {
	case JobExited:
		return "exited"
	case JobTrapped:
		return "trapped"
	case JobOutOfGas:
		return "out_of_gas"
	case JobLimitExceeded:
		return "limit_exceeded"
	}
	return fmt.Sprintf("class(%d)", c)
}

// validJobName checks an input name: a plain file name.
func validJobName(what, name string) error {
	switch {
	case name == "" || len(name) > MaxJobNameBytes:
		return fmt.Errorf("%s %q: must be 1-%d bytes", what, name, MaxJobNameBytes)
	case name == "." || name == "..":
		return fmt.Errorf("%s %q: not a file name", what, name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%s %q: a plain file name has no / or NUL", what, name)
	}
	return nil
}

// validJobPath checks an output path: relative, components that are file
// names.
func validJobPath(what, p string) error {
	if p == "" || len(p) > MaxJobPathBytes {
		return fmt.Errorf("%s %q: must be 1-%d bytes", what, p, MaxJobPathBytes)
	}
	for _, c := range strings.Split(p, "/") {
		if err := validJobName(what, c); err != nil {
			return fmt.Errorf("%s %q: every path component must be a file name: %w", what, p, err)
		}
	}
	return nil
}

// validJobFiles checks a file list: valid names in strictly ascending
// order (so each once), blob ids present.
func validJobFiles(what string, fs []JobFile, max int, nested bool) error {
	if len(fs) > max {
		return fmt.Errorf("%d %ss, limit %d", len(fs), what, max)
	}
	for i, f := range fs {
		var err error
		if nested {
			err = validJobPath(what, f.Name)
		} else {
			err = validJobName(what, f.Name)
		}
		if err != nil {
			return err
		}
		if i > 0 && fs[i-1].Name >= f.Name {
			return fmt.Errorf("%ss must be sorted by name, each once (%q after %q)", what, f.Name, fs[i-1].Name)
		}
		if f.ID.IsZero() {
			return fmt.Errorf("%s %q: zero blob id", what, f.Name)
		}
	}
	return nil
}

// JobSubmit asks the provider of a lease to run a WASI command module on
// named inputs. Only the lease's consumer may send it.
type JobSubmit struct {
	_       struct{}  `cbor:",toarray"`
	LeaseID uint64    `json:"lease_id"`
	Module  BlobRef   `json:"module"`
	Inputs  []JobFile `json:"inputs"` // at /in/<name>, sorted by name
	Stdin   BlobRef   `json:"stdin"`  // zero: no stdin
	Args    []string  `json:"args"`   // argv[1:] (argv[0] is "job")
	Env     []string  `json:"env"`    // "K=V"
	// Limits of the run: gas (reserved against the lease's compute budget
	// until the job ends), linear memory and total output bytes.
	GasLimit    uint64 `json:"gas_limit"`
	MemoryLimit uint64 `json:"memory_limit"`
	OutputLimit uint64 `json:"output_limit"`
}

// Kind implements Payload.
func (*JobSubmit) Kind() PayloadKind { return KindJobSubmit }

// ValidateBasic implements Payload.
func (p *JobSubmit) ValidateBasic() error {
	switch {
	case p.LeaseID == 0:
		return fmt.Errorf("ledger: job submit: lease id 0")
	case p.Module.ID.IsZero() || p.Module.Size == 0:
		return fmt.Errorf("ledger: job submit: no module")
	case !p.Stdin.IsZero() && p.Stdin.ID.IsZero():
		return fmt.Errorf("ledger: job submit: stdin of %d bytes without a blob id", p.Stdin.Size)
	case p.GasLimit == 0:
		return fmt.Errorf("ledger: job submit: gas limit 0")
	case p.MemoryLimit == 0:
		return fmt.Errorf("ledger: job submit: memory limit 0")
	case len(p.Args) > MaxJobArgs:
		return fmt.Errorf("ledger: job submit: %d args, limit %d", len(p.Args), MaxJobArgs)
	case len(p.Env) > MaxJobEnv:
		return fmt.Errorf("ledger: job submit: %d env entries, limit %d", len(p.Env), MaxJobEnv)
	}
	if err := validJobFiles("input", p.Inputs, MaxJobInputs, false); err != nil {
		return fmt.Errorf("ledger: job submit: %w", err)
	}
	n := 0
	for _, a := range p.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("ledger: job submit: an arg contains NUL")
		}
		n += len(a) + 1
	}
	seen := make(map[string]bool, len(p.Env))
	for _, e := range p.Env {
		k, _, ok := strings.Cut(e, "=")
		switch {
		case !ok || k == "":
			return fmt.Errorf("ledger: job submit: env entry %q: want K=V with a non-empty K", e)
		case strings.IndexByte(e, 0) >= 0:
			return fmt.Errorf("ledger: job submit: env entry %q contains NUL", k)
		case seen[k]:
			return fmt.Errorf("ledger: job submit: env variable %q given twice", k)
		}
		seen[k] = true
		n += len(e) + 1
	}
	if n > MaxJobArgBytes {
		return fmt.Errorf("ledger: job submit: args and env are %d bytes, limit %d", n, MaxJobArgBytes)
	}
	return nil
}

// JobResult is the executing node's report of a job's run: how it ended,
// the gas the metered VM counted, the files written under /out, stdout and
// stderr, the output root over them (rome.OutputRoot) and the bytes the
// data plane moved for the job. Only the node the lease's offer names may
// send it, once.
type JobResult struct {
	_          struct{}  `cbor:",toarray"`
	JobID      uint64    `json:"job_id"`
	Class      JobClass  `json:"class"`
	ExitCode   int32     `json:"exit_code"`
	GasUsed    uint64    `json:"gas_used"`
	Outputs    []JobFile `json:"outputs"` // sorted by path
	Stdout     BlobRef   `json:"stdout"`  // the empty blob when nothing was written
	Stderr     BlobRef   `json:"stderr"`
	OutputRoot Hash      `json:"output_root"`
	BytesIn    uint64    `json:"bytes_in"`
	BytesOut   uint64    `json:"bytes_out"`
	// Energy the run took, in millijoules, and how the node knows it:
	// EnergyMeasured (a hardware energy counter, e.g. Linux powercap) or
	// EnergyModeled (CPU time × the node's declared watts); EnergyNone
	// with Energy 0 when the node gives no figure.
	Energy       uint64 `json:"energy_mj"`
	EnergySource uint8  `json:"energy_source"`
}

// Energy sources of a job result.
const (
	EnergyNone     uint8 = 0
	EnergyMeasured uint8 = 1
	EnergyModeled  uint8 = 2
)

// EnergySourceName names an energy source ("none", "measured", "modeled").
func EnergySourceName(s uint8) string {
	switch s {
	case EnergyNone:
		return "none"
	case EnergyMeasured:
		return "measured"
	case EnergyModeled:
		return "modeled"
	}
	return fmt.Sprintf("source(%d)", s)
}

// Kind implements Payload.
func (*JobResult) Kind() PayloadKind { return KindJobResult }

// ValidateBasic implements Payload.
func (p *JobResult) ValidateBasic() error {
	switch {
	case p.JobID == 0:
		return fmt.Errorf("ledger: job result: job id 0")
	case p.Class < JobExited || p.Class > JobLimitExceeded:
		return fmt.Errorf("ledger: job result: class %d (want 1 exited, 2 trapped, 3 out of gas, 4 limit exceeded)", p.Class)
	case p.Stdout.ID.IsZero() || p.Stderr.ID.IsZero():
		return fmt.Errorf("ledger: job result: stdout and stderr need blob ids (the empty blob when nothing was written)")
	case p.Stdout.Size > MaxJobLogBytes || p.Stderr.Size > MaxJobLogBytes:
		return fmt.Errorf("ledger: job result: stdout or stderr above %d bytes", MaxJobLogBytes)
	case p.OutputRoot.IsZero():
		return fmt.Errorf("ledger: job result: zero output root")
	case p.EnergySource > EnergyModeled:
		return fmt.Errorf("ledger: job result: energy source %d (want 0 none, 1 measured, 2 modeled)", p.EnergySource)
	case p.EnergySource == EnergyNone && p.Energy != 0:
		return fmt.Errorf("ledger: job result: an energy figure of %d mJ without a source (measured or modeled)", p.Energy)
	}
	if err := validJobFiles("output", p.Outputs, MaxJobOutputs, true); err != nil {
		return fmt.Errorf("ledger: job result: %w", err)
	}
	return nil
}

// JobOutcome is what re-execution must reproduce: exit code, gas, output
// root and stdout. Challenges claim one and verdicts vote for one.
type JobOutcome struct {
	_          struct{} `cbor:",toarray"`
	ExitCode   int32    `json:"exit_code"`
	GasUsed    uint64   `json:"gas_used"`
	OutputRoot Hash     `json:"output_root"`
	Stdout     BlobID   `json:"stdout"`
}

func (o *JobOutcome) validate(what string) error {
	if o.OutputRoot.IsZero() || o.Stdout.IsZero() {
		return fmt.Errorf("ledger: %s: outcome needs an output root and a stdout id", what)
	}
	return nil
}

// JobChallenge disputes a job's result with the challenger's own outcome;
// it escrows the challenge deposit until re-execution decides.
type JobChallenge struct {
	_       struct{}   `cbor:",toarray"`
	JobID   uint64     `json:"job_id"`
	Outcome JobOutcome `json:"outcome"`
}

// Kind implements Payload.
func (*JobChallenge) Kind() PayloadKind { return KindJobChallenge }

// ValidateBasic implements Payload.
func (p *JobChallenge) ValidateBasic() error {
	if p.JobID == 0 {
		return fmt.Errorf("ledger: job challenge: job id 0")
	}
	return p.Outcome.validate("job challenge")
}

// JobVerdict is a challenge committee member's outcome of re-executing a
// challenged job, sent with its node key.
type JobVerdict struct {
	_       struct{}   `cbor:",toarray"`
	JobID   uint64     `json:"job_id"`
	Outcome JobOutcome `json:"outcome"`
}

// Kind implements Payload.
func (*JobVerdict) Kind() PayloadKind { return KindJobVerdict }

// ValidateBasic implements Payload.
func (p *JobVerdict) ValidateBasic() error {
	if p.JobID == 0 {
		return fmt.Errorf("ledger: job verdict: job id 0")
	}
	return p.Outcome.validate("job verdict")
}

func newJobPayload(k PayloadKind) Payload {
	switch k {
	case KindJobSubmit:
		return &JobSubmit{}
	case KindJobResult:
		return &JobResult{}
	case KindJobChallenge:
		return &JobChallenge{}
	case KindJobVerdict:
		return &JobVerdict{}
	}
	return newStoragePayload(k)
}

func jobKindName(k PayloadKind) string {
	switch k {
	case KindJobSubmit:
		return "job_submit"
	case KindJobResult:
		return "job_result"
	case KindJobChallenge:
		return "job_challenge"
	case KindJobVerdict:
		return "job_verdict"
	}
	return storageKindName(k)
}
