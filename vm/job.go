package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
	"github.com/sos-kernel/sos/vm/meter"
)

// Jobs: WASI command modules run once, from a fresh instance, by RunJob.
// doc.go ("Jobs") describes what a job sees; this file loads, runs and
// classifies, jobwasi.go is the WASI a job imports and jobfs.go its file
// system.

// defaultJobModuleCacheSize is the module cache of a Jobs VM whose Config
// leaves ModuleCacheSize zero: a compiled Go program of 30 MB takes
// hundreds of MB of native code, so fewer than the 64 contracts.
const defaultJobModuleCacheSize = 8

// jobStartExport exports a job module's start function (if it has a start
// section), so that RunJob runs it with the gas counter set, before _start.
const jobStartExport = "sos_start"

// ErrJobInput classifies a failure to read a job's module, input or stdin
// from its io.ReaderAt (or a shorter read than its declared size): the
// host's failure, not the job's outcome. RunJob returns it as an error.
var ErrJobInput = errors.New("vm: job input unreadable")

// JobStatus is how a job's run ended. The values are those of the job
// classes of package ledger (exited 1, trapped 2, out of gas 3, limit
// exceeded 4).
type JobStatus uint8

// Job end statuses. Only JobExited carries an exit code.
const (
	// JobExited: the program called proc_exit, or _start returned (exit
	// code 0).
	JobExited JobStatus = 1 + iota
	// JobTrapped: a Wasm trap (unreachable, out-of-bounds access, the call
	// depth limit, an instantiation failure), or a module that is not a
	// valid WASI command (JobResult.Err wraps ErrInvalidModule).
	JobTrapped
	// JobOutOfGas: the run used its whole gas limit.
	JobOutOfGas
	// JobLimitExceeded: the program failed (exited with a code other than
	// 0, or trapped) after the memory or output limits refused it
	// something: a memory.grow beyond JobSpec.MemoryLimit, a write beyond
	// JobSpec.OutputLimit, a file or directory beyond MaxJobOutputFiles or
	// MaxJobOutputDirs. Also a module whose initial memory exceeds the
	// memory limit (it does not start). A program that copes with the
	// refusal and exits 0 is JobExited.
	JobLimitExceeded
)

// String names the status as package ledger does.
func (s JobStatus) String() string {
	switch s {
	case JobExited:
		return "exited"
	case JobTrapped:
		return "trapped"
	case JobOutOfGas:
		return "out_of_gas"
	case JobLimitExceeded:
		return "limit_exceeded"
	}
	return fmt.Sprintf("JobStatus(%d)", uint8(s))
}

// JobFile is content a job reads: its module, an input under /in or its
// stdin. Data is read lazily, at the offsets the job asks for (the module
// in full, and only when the VM has not compiled it yet), from the
// goroutine running the job, and never beyond Size: it may be a file of a
// blob store. A read error, or fewer bytes than Size, ends the run with an
// error wrapping ErrJobInput.
type JobFile struct {
	// Name is an input's file name under /in: 1 to MaxJobNameBytes bytes of
	// UTF-8, no "/" or NUL, not "." or "..". The module's and stdin's Name
	// is ignored.
	Name string
	Size int64
	Data io.ReaderAt
}

// JobBytes returns a JobFile holding b.
func JobBytes(name string, b []byte) JobFile {
	return JobFile{Name: name, Size: int64(len(b)), Data: byteReaderAt(b)}
}

type byteReaderAt []byte

func (b byteReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("vm: negative offset")
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// JobSpec is everything a run depends on besides the module. Every field
// is consensus: the same module and JobSpec give the same JobResult on
// every node.
type JobSpec struct {
	// Args are argv[1:]; argv[0] is always "job". Env holds "K=V" entries.
	// At most MaxJobArgs and MaxJobEnv entries, MaxJobArgBytes together,
	// no NUL.
	Args []string
	Env  []string
	// Stdin is what fd 0 reads (Name is ignored); zero means empty.
	Stdin JobFile
	// Inputs are readable (only) under /in/<Name>, at most MaxJobInputs,
	// names unique.
	Inputs []JobFile
	// GasLimit bounds the run's gas (instructions and host calls alike, the
	// cost table of contracts); at most meter.MaxGas.
	GasLimit uint64
	// MemoryLimit bounds the linear memory in bytes (rounded down to whole
	// 64 KiB pages; at least one page and at most the VM's
	// Config.MaxJobMemoryBytes). A memory.grow beyond it fails (returns
	// -1, as Wasm specifies for a memory that cannot grow).
	MemoryLimit uint64
	// OutputLimit bounds the bytes of all files under /out together: a
	// write beyond it writes what fits and then fails with ENOSPC.
	OutputLimit uint64
	// TimeMs is the realtime clock at the start (unix milliseconds: the
	// job's submit block time); clocks advance only by poll_oneoff.
	TimeMs int64
	// Seed seeds random_get (the job's seed).
	Seed [32]byte
}

// JobOutput is a file the job left under /out.
type JobOutput struct {
	// Path is relative to /out, components separated by "/".
	Path string
	Data []byte
}

// JobResult is the outcome of a run. Everything in it except Err's text is
// consensus.
type JobResult struct {
	Status JobStatus
	// ExitCode is the proc_exit code (0 when _start returned) of a program
	// that exited: Status JobExited, or JobLimitExceeded when it exited
	// after a limit refused it something; else 0. A Go program that panics
	// or runs out of memory exits with code 2.
	ExitCode int32
	// Err says why a run that did not exit ended: it wraps ErrTrap,
	// ErrOutOfGas, ErrLimit or ErrInvalidModule. nil when JobExited. Its
	// text is for people, not consensus.
	Err error
	// GasUsed is the gas the run used, GasLimit when it ran out.
	GasUsed uint64
	// Outputs are the files under /out at the end, sorted by Path (empty
	// directories are not listed), whatever the status.
	Outputs []JobOutput
	// Stdout and Stderr are the first MaxJobLogBytes bytes written to fd 1
	// and fd 2; StdoutBytes and StderrBytes count all of them.
	Stdout, Stderr           []byte
	StdoutBytes, StderrBytes uint64
	// BytesRead counts the bytes the job read from its inputs and stdin.
	BytesRead uint64
	// MemoryBytes is the largest size the linear memory reached.
	MemoryBytes uint64
}

// OutputBytes is the size of all outputs together.
func (r *JobResult) OutputBytes() uint64 {
	var n uint64
	for _, o := range r.Outputs {
		n += uint64(len(o.Data))
	}
	return n
}

// jobDefaults fills and checks the job caps of a Config.
func (c *Config) jobDefaults() error {
	if c.MaxJobModuleBytes == 0 {
		c.MaxJobModuleBytes = DefaultMaxJobModuleBytes
	}
	if c.MaxJobMemoryBytes == 0 {
		c.MaxJobMemoryBytes = DefaultMaxJobMemoryBytes
	}
	switch {
	case c.MaxJobModuleBytes < 0:
		return fmt.Errorf("vm: config: MaxJobModuleBytes %d is negative", c.MaxJobModuleBytes)
	case c.MaxJobMemoryBytes < 65536 || c.MaxJobMemoryBytes > MaxJobMemoryBytes:
		return fmt.Errorf("vm: config: MaxJobMemoryBytes %d outside [64 KiB, %d]", c.MaxJobMemoryBytes, int64(MaxJobMemoryBytes))
	}
	return nil
}

// newJobVM creates a VM for Purpose Jobs: one optimizing runtime with the
// jobs' WASI as wasi_snapshot_preview1 and no contract host module. The
// runtime admits the whole 32-bit memory; each run's allocator enforces
// the job's MemoryLimit (jobmem*.go), so one runtime serves every limit.
func newJobVM(ctx context.Context, cfg Config) (*VM, error) {
	limits := cfg.Purpose.Limits()
	limits.MemoryPages = uint32(cfg.MaxJobMemoryBytes / 65536)
	v := &VM{cfg: cfg, limits: limits}
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(65536).
		WithCoreFeatures(api.CoreFeaturesV2)
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("vm: compilation cache %s: %w", cfg.CacheDir, err)
		}
		v.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	v.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if err := instantiateJobHost(ctx, v.rt); err != nil {
		v.Close(ctx)
		return nil, err
	}
	v.modules = newModuleCache(cfg.ModuleCacheSize)
	return v, nil
}

// RunJob runs the WASI command module identified by moduleID (the key of
// the compiled-module cache: the blob id of its bytes, which the VM
// trusts, as Call trusts a code id) and read from module on a cache miss,
// with spec: a fresh instance, the start function (if any) and _start.
//
// What the job did is the JobResult, whatever it was: exiting with any
// code, trapping, running out of gas or failing at a limit are outcomes, and so is a module that is not a valid WASI command
// (JobTrapped with Err wrapping ErrInvalidModule, GasUsed 0). An error
// means the node could not run the job and there is no outcome: a spec
// beyond the VM's caps or the protocol limits (ErrLimit) or malformed, an
// unreadable module, input or stdin (ErrJobInput), ctx cancelled (checked
// at every host call; a loop that makes none runs until its gas is
// spent), a closed VM (ErrClosed) or a failure of the host.
func (v *VM) RunJob(ctx context.Context, moduleID [32]byte, module JobFile, spec JobSpec) (JobResult, error) {
	r, res, err := v.startJob(ctx, moduleID, module, spec)
	if r == nil {
		return res, err
	}
	defer r.close()
	return r.run()
}

// jobRun is a job instantiated and about to execute its first instruction.
type jobRun struct {
	ctx   context.Context // carries the job state and the allocator
	s     *jobState
	spec  *JobSpec
	mod   *module
	inst  api.Module
	alloc *jobAllocator
}

// startJob does everything RunJob does before the job's first instruction:
// it checks the spec, finds (or loads) the compiled module and
// instantiates it with the job's file system and memory. When the run ends
// before it starts (an invalid module, an initial memory above the limit,
// an instantiation trap, an error), r is nil and res, err are RunJob's.
func (v *VM) startJob(ctx context.Context, moduleID [32]byte, module JobFile, spec JobSpec) (r *jobRun, res JobResult, err error) {
	if v.cfg.Purpose != Jobs {
		return nil, JobResult{}, fmt.Errorf("vm: RunJob: a %v VM runs no jobs", v.cfg.Purpose)
	}
	if err := v.checkJob(module, &spec); err != nil {
		return nil, JobResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, JobResult{}, fmt.Errorf("vm: job: %w", err)
	}
	mod, err := v.jobModule(ctx, moduleID, module)
	if errors.Is(err, ErrInvalidModule) {
		return nil, JobResult{Status: JobTrapped, Err: err}, nil
	}
	if err != nil {
		return nil, JobResult{}, err
	}
	limitPages := uint32(spec.MemoryLimit / 65536)
	if mod.pages > limitPages {
		mod.unref(ctx)
		return nil, JobResult{Status: JobLimitExceeded, Err: fmt.Errorf("%w: the module's initial memory is %d pages, the memory limit %d",
			ErrLimit, mod.pages, limitPages)}, nil
	}
	s := newJobState(ctx, &spec)
	r = &jobRun{s: s, spec: &spec, mod: mod}
	r.alloc = &jobAllocator{img: mod.img, limit: uint64(limitPages) * 65536, s: s}
	// The job state is the outermost value, so host functions find it
	// first.
	r.ctx = context.WithValue(experimental.WithMemoryAllocator(ctx, r.alloc), jobStateKey{}, s)
	r.inst, err = v.rt.InstantiateModule(r.ctx, mod.cm, mod.cfg)
	if err != nil {
		r.close()
		// Data or element segments out of bounds: an instantiation trap.
		return nil, s.result(JobTrapped, 0, fmt.Errorf("%w: instantiate: %s", ErrTrap, trapText(err))), nil
	}
	s.gas = r.inst.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
	s.gas.Set(spec.GasLimit)
	return r, JobResult{}, nil
}

// close releases the run's instance, memory and module.
func (r *jobRun) close() {
	ctx := context.Background()
	if r.inst != nil {
		r.inst.Close(ctx)
	}
	if r.alloc.mem != nil {
		r.alloc.mem.Free()
	}
	r.mod.unref(ctx)
}

// run executes the start function (if any) and _start, and classifies how
// the run ended.
func (r *jobRun) run() (JobResult, error) {
	s, limit := r.s, r.spec.GasLimit
	depth := r.inst.ExportedGlobal(meter.DepthGlobalExport).(api.MutableGlobal)
	var callErr error
	for _, entry := range []string{jobStartExport, "_start"} {
		fn := r.inst.ExportedFunction(entry)
		if fn == nil {
			continue
		}
		depth.Set(0)
		if _, callErr = fn.Call(r.ctx); callErr != nil {
			break
		}
	}
	left := int64(s.gas.Get())
	used := limit
	if left >= 0 {
		used = limit - uint64(left)
	}
	if s.infra != nil {
		return JobResult{}, s.infra
	}
	var failure error // how the program failed, if it did
	switch {
	case (s.exited && s.exitCode == 0) || (callErr == nil && left >= 0):
		return s.result(JobExited, used, nil), nil
	case left < 0 || (s.trap != nil && errors.Is(s.trap, ErrOutOfGas)):
		reason := s.trap
		if reason == nil {
			reason = fmt.Errorf("%w: %s", ErrOutOfGas, trapText(callErr))
		}
		return s.result(JobOutOfGas, limit, reason), nil
	case s.exited:
		failure = fmt.Errorf("exited with code %d", int32(s.exitCode))
	case s.trap != nil:
		failure = s.trap
	case uint32(depth.Get()) > meter.DefaultMaxCallDepth:
		failure = fmt.Errorf("%w: call depth exceeded (more than %d nested Wasm calls)", ErrTrap, meter.DefaultMaxCallDepth)
	default:
		failure = fmt.Errorf("%w: %s", ErrTrap, trapText(callErr))
	}
	switch {
	case s.limitHit != nil:
		// The program failed after a limit refused it something: that
		// limit is the outcome's cause.
		return s.result(JobLimitExceeded, used, fmt.Errorf("%w: %s; the job then %w", ErrLimit, s.limitHit, failure)), nil
	case s.exited:
		return s.result(JobExited, used, nil), nil
	}
	return s.result(JobTrapped, used, failure), nil
}

// checkJob checks a run's module and spec against the VM's caps and the
// protocol limits.
func (v *VM) checkJob(module JobFile, spec *JobSpec) error {
	switch {
	case module.Data == nil || module.Size <= 0:
		return errors.New("vm: job: no module")
	case module.Size > v.cfg.MaxJobModuleBytes:
		return fmt.Errorf("%w: job module is %d bytes, this node runs at most %d", ErrLimit, module.Size, v.cfg.MaxJobModuleBytes)
	case spec.GasLimit > meter.MaxGas:
		return fmt.Errorf("%w: job gas limit %d above %d", ErrLimit, spec.GasLimit, uint64(meter.MaxGas))
	case spec.MemoryLimit < 65536:
		return fmt.Errorf("%w: job memory limit %d is below one 64 KiB page", ErrLimit, spec.MemoryLimit)
	case spec.MemoryLimit > uint64(v.cfg.MaxJobMemoryBytes):
		return fmt.Errorf("%w: job memory limit %d above this node's %d", ErrLimit, spec.MemoryLimit, v.cfg.MaxJobMemoryBytes)
	case len(spec.Args) > MaxJobArgs:
		return fmt.Errorf("%w: %d job arguments, limit %d", ErrLimit, len(spec.Args), MaxJobArgs)
	case len(spec.Env) > MaxJobEnv:
		return fmt.Errorf("%w: %d job environment variables, limit %d", ErrLimit, len(spec.Env), MaxJobEnv)
	case len(spec.Inputs) > MaxJobInputs:
		return fmt.Errorf("%w: %d job inputs, limit %d", ErrLimit, len(spec.Inputs), MaxJobInputs)
	case spec.Stdin.Size < 0 || (spec.Stdin.Size > 0 && spec.Stdin.Data == nil):
		return fmt.Errorf("vm: job stdin: size %d without data", spec.Stdin.Size)
	}
	n := len(jobArgv0) + 1
	for _, a := range spec.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("vm: job argument %q contains NUL", a)
		}
		n += len(a) + 1
	}
	for _, e := range spec.Env {
		if strings.IndexByte(e, 0) >= 0 || !strings.Contains(e, "=") {
			return fmt.Errorf("vm: job environment entry %q: want K=V without NUL", e)
		}
		n += len(e) + 1
	}
	if n > MaxJobArgBytes {
		return fmt.Errorf("%w: job arguments and environment are %d bytes, limit %d", ErrLimit, n, MaxJobArgBytes)
	}
	seen := make(map[string]bool, len(spec.Inputs))
	for _, in := range spec.Inputs {
		if err := validJobName(in.Name); err != nil {
			return fmt.Errorf("vm: job input %q: %w", in.Name, err)
		}
		if seen[in.Name] {
			return fmt.Errorf("vm: job input %q given twice", in.Name)
		}
		seen[in.Name] = true
		if in.Size < 0 || (in.Size > 0 && in.Data == nil) {
			return fmt.Errorf("vm: job input %q: size %d without data", in.Name, in.Size)
		}
	}
	return nil
}

// validJobName checks a plain file name (an input, one path component).
func validJobName(name string) error {
	switch {
	case name == "" || len(name) > MaxJobNameBytes:
		return fmt.Errorf("a file name is 1-%d bytes", MaxJobNameBytes)
	case name == "." || name == "..":
		return errors.New("not a file name")
	case strings.ContainsAny(name, "/\x00"):
		return errors.New("a file name has no / or NUL")
	case !utf8.ValidString(name):
		return errors.New("a file name is UTF-8")
	}
	return nil
}

// jobModule returns the loaded module for id with a reference taken,
// loading it from src on a miss (as VM.module does for contracts).
func (v *VM) jobModule(ctx context.Context, id [32]byte, src JobFile) (*module, error) {
	v.mu.Lock()
	closed := v.closed
	v.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	m, created, evicted := v.modules.get(cacheKey{code: id, costs: v.cfg.Costs.Version})
	for _, old := range evicted {
		go func() { <-old.ready; old.unref(context.Background()) }()
	}
	if created {
		m.err = v.loadJob(ctx, m, src)
		close(m.ready)
		if m.err != nil && v.modules.remove(m) {
			m.unref(ctx)
		}
	} else {
		<-m.ready
	}
	if m.err != nil {
		m.unref(ctx)
		return nil, m.err
	}
	return m, nil
}

// loadJob reads, checks, instruments and compiles a job module. Errors
// that are the module's (it is not a valid WASI command) wrap
// ErrInvalidModule; every other error is the host's.
func (v *VM) loadJob(ctx context.Context, m *module, src JobFile) error {
	wasm := make([]byte, src.Size)
	if n, err := src.Data.ReadAt(wasm, 0); n < len(wasm) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: module: %w", ErrJobInput, err)
	}
	code, data, pages, err := instrumentJob(wasm, v.cfg.Costs)
	if err != nil {
		return err
	}
	cm, err := v.rt.CompileModule(ctx, code)
	if err != nil {
		return v.compileFailure(ctx, code, err)
	}
	if data != nil {
		img, err := newImage(data, len(data))
		if err != nil {
			cm.Close(ctx)
			return fmt.Errorf("vm: job memory image: %w", err)
		}
		m.img = img
	}
	m.cm, m.pages = cm, pages
	m.cfg = wazero.NewModuleConfig().WithName("").WithStartFunctions()
	return nil
}

// compileFailure tells an invalid module from a failure of the compiler's
// environment (wazero's on-disk cache reports its IO errors through
// CompileModule too): the module is compiled again, by the interpreter and
// without a cache; only when that fails as well is the module invalid.
func (v *VM) compileFailure(ctx context.Context, code []byte, err error) error {
	if v.cache == nil {
		return invalid("compile: %v", err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithMemoryLimitPages(65536).WithCoreFeatures(api.CoreFeaturesV2))
	defer rt.Close(ctx)
	if _, verr := rt.CompileModule(ctx, code); verr != nil {
		return invalid("compile: %v", verr)
	}
	return fmt.Errorf("vm: compile job module: %w", err)
}

// jobMeterOptions are the metering options of job modules: the cost
// table of contracts, job-sized structural limits (limits.go), any memory
// size the 32-bit address space allows (each run enforces its own
// MemoryLimit, so no module is refused for declaring a large maximum), no
// gas before RunJob sets the counter (instrumentJob turns a start section
// into an export for that reason), meter.Options.BlindLocals and
// MissInGlobals: the same results and gas as contracts' metering, without
// canonicalizing float results no one can observe (float code ran 1.2×
// slower than unmetered without it) and with the br_table tracking's state
// in globals instead of locals (Go's float loops ran ≈ 1.45× plain wazero
// with it in locals, ≈ 1.23× in globals; BENCHMARKS.md, "Jobs executor"),
// and Reloop: Go's loops get WebAssembly loops of their own instead of
// going back through the function's dispatch br_table at every iteration
// (the example mandelbrot ran at ≈ 1.2× plain wazero without it, ≈ 0.75×
// with it; its first compilation takes ≈ 20 % longer, the code being
// ≈ 28 % larger). All three are open to jobs because their instrumented
// code is not stored in state.
func jobMeterOptions(costs meter.CostTable) meter.Options {
	o := meter.DefaultOptions()
	o.Costs = costs
	o.BlindLocals = true
	o.MissInGlobals = true
	o.Reloop = true
	o.Limits = meter.Limits{
		MaxMemoryPages: 65536,
		MaxFunctions:   MaxJobFunctions,
		MaxGlobals:     MaxJobGlobals,
		MaxTableSize:   MaxJobTableSize,
		MaxLocals:      MaxJobLocals,
	}
	return o
}

// jobArgv0 is every job's argv[0].
const jobArgv0 = "job"

// instrumentJob checks that wasm is a WASI command the jobs' WASI can run
// and meters it. It returns the module to compile and, when the data
// segments are all active segments within the initial memory (as Go, Rust
// and C toolchains emit them), the initial memory they make: the segments
// are then left out of the compiled module and each instance maps that
// image copy-on-write (a Go program carries tens of thousands of segments,
// which wazero would copy one by one at every instantiation). Otherwise
// data is nil and wazero applies the segments. pages is the initial
// memory size.
func instrumentJob(wasm []byte, costs meter.CostTable) (code, data []byte, pages uint32, err error) {
	m, err := wasmbin.Decode(wasm)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	if err := m.CheckOrder(); err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	p, err := m.Parse()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	if err := checkJobInterface(p); err != nil {
		return nil, nil, 0, err
	}
	// Structural limits: meter.Instrument checks jobMeterOptions' Limits
	// (functions, globals, table size, locals) before rewriting anything.
	// The upload path's structural checker (measureStructure and
	// checkStructure) belongs here too, with job-sized limits, where it is
	// available.
	instrumented, err := meter.Instrument(wasm, jobMeterOptions(costs))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	if m, err = wasmbin.Decode(instrumented); err != nil {
		return nil, nil, 0, invalid("instrumented module: %v", err)
	}
	if i := m.Find(wasmbin.SectionStart); i >= 0 {
		r := reader{b: m.Sections[i].Payload}
		idx := r.u32()
		if r.err != nil || r.off != len(r.b) {
			return nil, nil, 0, invalid("start section: malformed")
		}
		m.Sections = slices.Delete(m.Sections, i, i+1)
		ei := m.Find(wasmbin.SectionExport)
		exports, err := wasmbin.DecodeExports(m.Sections[ei].Payload)
		if err != nil {
			return nil, nil, 0, invalid("instrumented module: %v", err)
		}
		m.Set(wasmbin.SectionExport, wasmbin.EncodeExports(append(exports,
			wasmbin.Export{Name: jobStartExport, Kind: wasmbin.KindFunc, Index: idx})))
	}
	pages = p.Memories[0].Min
	if m.Find(wasmbin.SectionDataCount) < 0 {
		if i := m.Find(wasmbin.SectionData); i >= 0 {
			mem := make([]byte, int(pages)*65536)
			if decodeData(m.Sections[i].Payload, mem) == nil {
				data = mem
				m.Sections = slices.Delete(m.Sections, i, i+1)
			}
		}
	}
	return m.Encode(), data, pages, nil
}

// checkJobInterface checks that a module is a WASI command for the jobs'
// WASI: it imports only functions of wasi_snapshot_preview1 with their
// signatures, defines exactly one memory and exports _start () -> ().
func checkJobInterface(p *wasmbin.Parsed) error {
	sigs := jobHostSignatures()
	var funcTypes []uint32
	for _, im := range p.Imports {
		if im.Kind != wasmbin.KindFunc {
			return invalid("import %s.%s: a job may import only functions", im.Module, im.Name)
		}
		h, ok := sigs[im.Module+"."+im.Name]
		if !ok {
			return invalid("import %s.%s: not a function of %s (jobs run WASI commands)", im.Module, im.Name, wasiModule)
		}
		if int(im.TypeIndex) >= len(p.Types) {
			return invalid("import %s.%s: unknown type %d", im.Module, im.Name, im.TypeIndex)
		}
		if want := toFuncType(hostFunc{params: h.params, results: h.results}); !sameType(p.Types[im.TypeIndex], want) {
			return invalid("import %s.%s: signature %s, want %s", im.Module, im.Name, p.Types[im.TypeIndex], want)
		}
		funcTypes = append(funcTypes, im.TypeIndex)
	}
	if len(p.Memories) != 1 {
		return invalid("a job module must define exactly one memory, has %d", len(p.Memories))
	}
	funcTypes = append(funcTypes, p.Funcs...)
	start := false
	for _, e := range p.Exports {
		if strings.HasPrefix(e.Name, reservedPrefix) {
			return invalid("export %q: names starting with %q are reserved", e.Name, reservedPrefix)
		}
		if e.Name != "_start" {
			continue
		}
		if e.Kind != wasmbin.KindFunc || int(e.Index) >= len(funcTypes) || int(funcTypes[e.Index]) >= len(p.Types) {
			return invalid("export _start: not a function")
		}
		if ft := p.Types[funcTypes[e.Index]]; !sameType(ft, wasmbin.FuncType{}) {
			return invalid("export _start: signature %s, want () -> ()", ft)
		}
		start = true
	}
	if !start {
		return invalid("not a WASI command: no _start export (a contract or a WASI reactor is not a job)")
	}
	return nil
}

// jobState is everything the jobs' WASI knows about a run.
type jobState struct {
	gas       api.MutableGlobal
	ctx       context.Context
	done      <-chan struct{} // ctx.Done(), polled at every host call
	argv, env []string

	// Clocks: realtime = realBase + advance, monotonic = monoBase +
	// advance; poll_oneoff advances both (virtual time), nothing else does.
	realBase, monoBase, advance int64
	rng                         *rng

	fs             *jobFS
	stdout, stderr jobLog
	bytesRead      uint64
	memPeak        uint64

	trap     error // first reason the host aborted the guest
	infra    error // a failure of the host: RunJob returns it
	limitHit error // the first thing the memory or output limits refused
	exited   bool
	exitCode uint32
}

type jobStateKey struct{}

func newJobState(ctx context.Context, spec *JobSpec) *jobState {
	s := &jobState{
		ctx:      ctx,
		done:     ctx.Done(),
		argv:     append([]string{jobArgv0}, spec.Args...),
		env:      spec.Env,
		realBase: spec.TimeMs * 1_000_000,
		monoBase: snapshotMonoNs,
		rng:      newRNG(spec.Seed),
	}
	s.fs = newJobFS(s, spec)
	return s
}

// jobLog keeps the first MaxJobLogBytes bytes of a stream.
type jobLog struct {
	buf   []byte
	total uint64
}

func (l *jobLog) write(p []byte) {
	l.total += uint64(len(p))
	if room := MaxJobLogBytes - len(l.buf); room > 0 {
		l.buf = append(l.buf, p[:min(room, len(p))]...)
	}
}

// charge lowers the gas counter by n and aborts when it goes negative; it
// refuses to run when the counter is already negative (as callState.charge).
func (s *jobState) charge(n uint64) {
	g := int64(s.gas.Get())
	if g < 0 {
		s.abort(newTrap(ErrOutOfGas, "gas exhausted before host call"))
	}
	if n > uint64(g) {
		s.gas.Set(uint64(g - int64(min(n, 1<<62))))
		s.abort(newTrap(ErrOutOfGas, "host call needs %d gas, %d left", n, g))
	}
	s.gas.Set(uint64(g - int64(n)))
}

// abort records t as the reason the run ends and unwinds the guest.
func (s *jobState) abort(t *trap) {
	if s.trap == nil {
		s.trap = t.err
	}
	panic(t)
}

// fail ends the run with a failure of the host (no outcome).
func (s *jobState) fail(err error) {
	if s.infra == nil {
		s.infra = err
	}
	panic(&trap{err: err})
}

func (s *jobState) result(status JobStatus, gas uint64, reason error) JobResult {
	r := JobResult{
		Status:      status,
		Err:         reason,
		GasUsed:     gas,
		Outputs:     s.fs.outputs(),
		Stdout:      s.stdout.buf,
		Stderr:      s.stderr.buf,
		StdoutBytes: s.stdout.total,
		StderrBytes: s.stderr.total,
		BytesRead:   s.bytesRead,
		MemoryBytes: s.memPeak,
	}
	if status == JobExited {
		r.Err = nil
	}
	if s.exited && (status == JobExited || status == JobLimitExceeded) {
		r.ExitCode = int32(s.exitCode)
	}
	return r
}

// refused records that a limit refused the job something (the first such
// refusal is kept): a run that then fails ends as JobLimitExceeded.
func (s *jobState) refused(format string, args ...any) {
	if s.limitHit == nil {
		s.limitHit = fmt.Errorf(format, args...)
	}
}
