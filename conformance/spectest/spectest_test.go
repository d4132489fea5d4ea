package spectest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
)

// gasBudget is large enough that no spec test runs out of gas: the most
// the host may give (meter.MaxGas), which no dynamic charge can overflow.
const gasBudget = meter.MaxGas

// suiteRoot returns wazero's spectest directory in the module cache.
func suiteRoot(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found (%v): cannot locate the wazero module with the spec suite", err)
	}
	out, err := exec.Command(goTool, "list", "-m", "-json", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Fatalf("go list -m -json github.com/tetratelabs/wazero: %v", err)
	}
	var mod struct{ Dir, Version string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("go list output: %v", err)
	}
	if mod.Dir == "" {
		t.Fatalf("wazero %s is not in the module cache; run go mod download", mod.Version)
	}
	return filepath.Join(mod.Dir, "internal", "integration_test", "spectest")
}

type (
	testbase struct {
		SourceFile string    `json:"source_filename"`
		Commands   []command `json:"commands"`
	}
	command struct {
		Type       string  `json:"type"`
		Line       int     `json:"line"`
		Name       string  `json:"name"`
		Filename   string  `json:"filename"`
		As         string  `json:"as"`
		Action     action  `json:"action"`
		Expected   []value `json:"expected"`
		ModuleType string  `json:"module_type"`
		Text       string  `json:"text"`
	}
	action struct {
		Type   string  `json:"type"`
		Args   []value `json:"args"`
		Field  string  `json:"field"`
		Module string  `json:"module"`
	}
	value struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
)

var errV128 = errors.New("v128 value")

// bits converts a wast2json value to wazero's uint64 form. Externref n is
// passed as n+1 because wazero treats 0 as null.
func (v value) bits() (uint64, error) {
	if v.Type == "v128" {
		return 0, errV128
	}
	s, _ := v.Value.(string)
	if v.Value == nil || s == "null" {
		return 0, nil
	}
	switch {
	case strings.HasPrefix(s, "nan:"):
		return 0, nil // only in expectations; compared by nanKind
	case v.Type == "externref":
		n, err := strconv.ParseUint(s, 10, 64)
		return n + 1, err
	case v.Type == "i32" || v.Type == "f32":
		if strings.HasPrefix(s, "-") {
			n, err := strconv.ParseInt(s, 10, 32)
			return uint64(uint32(n)), err
		}
		n, err := strconv.ParseUint(s, 10, 32)
		return n, err
	default:
		if strings.HasPrefix(s, "-") {
			n, err := strconv.ParseInt(s, 10, 64)
			return uint64(n), err
		}
		return strconv.ParseUint(s, 10, 64)
	}
}

func (v value) nanKind() string {
	if s, ok := v.Value.(string); ok && strings.HasPrefix(s, "nan:") {
		return s
	}
	return ""
}

// stats counts outcomes for one file.
type stats struct {
	pass, policy, text, fail int
	depthTraps               int // assert_exhaustion met by the call depth limit
	reasons                  map[string]int
}

func (s *stats) policyReject(err error) {
	s.policy++
	if s.reasons == nil {
		s.reasons = map[string]int{}
	}
	msg := err.Error()
	if i := strings.Index(msg, "unsupported feature: "); i >= 0 {
		msg = msg[i+len("unsupported feature: "):]
	}
	if i := strings.Index(msg, " at offset"); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	s.reasons[msg]++
}

// side is one of the two runtimes: plain or metered.
type side struct {
	r       wazero.Runtime
	named   map[string]api.Module
	last    api.Module
	metered bool
}

func (s *side) module(name string) api.Module {
	if name != "" {
		return s.named[name]
	}
	return s.last
}

// runner runs one version of the suite.
type runner struct {
	dir      string
	features api.CoreFeatures
	cache    wazero.CompilationCache
	opts     meter.Options
	spectest []byte
}

func (rn *runner) newSide(ctx context.Context, t *testing.T, metered bool) *side {
	cfg := wazero.NewRuntimeConfigCompiler().WithCoreFeatures(rn.features).WithCompilationCache(rn.cache)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := r.InstantiateWithConfig(ctx, rn.spectest, wazero.NewModuleConfig()); err != nil {
		t.Fatalf("spectest module: %v", err)
	}
	return &side{r: r, named: map[string]api.Module{}, metered: metered}
}

func firstLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func (rn *runner) runFile(t *testing.T, name string) stats {
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join(rn.dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var base testbase
	if err := json.Unmarshal(raw, &base); err != nil {
		t.Fatal(err)
	}
	plain, met := rn.newSide(ctx, t, false), rn.newSide(ctx, t, true)
	defer plain.r.Close(ctx)
	defer met.r.Close(ctx)

	var st stats
	// tainted is set once a module of this file was rejected by policy: a
	// later module importing from it cannot link on the metered side.
	tainted := false
	fail := func(c *command, format string, args ...any) {
		st.fail++
		t.Errorf("%s:%d %s: %s", name, c.Line, c.Type, fmt.Sprintf(format, args...))
	}
	read := func(f string) []byte {
		b, err := os.ReadFile(filepath.Join(rn.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	for i := 0; i < len(base.Commands); i++ {
		c := &base.Commands[i]
		switch c.Type {
		case "module":
			buf := read(c.Filename)
			reg := ""
			if i+1 < len(base.Commands) && base.Commands[i+1].Type == "register" {
				reg = base.Commands[i+1].As
				i++
			}
			pm, perr := plain.r.InstantiateWithConfig(ctx, buf, wazero.NewModuleConfig().WithName(reg))
			if perr != nil {
				fail(c, "plain wazero: %v", perr)
				continue
			}
			plain.last = pm
			if c.Name != "" {
				plain.named[c.Name] = pm
			}
			met.last = nil
			if c.Name != "" {
				met.named[c.Name] = nil
			}
			out, err := meter.Instrument(buf, rn.opts)
			if errors.Is(err, meter.ErrUnsupportedFeature) {
				st.policyReject(err)
				tainted = true
				continue
			}
			if err != nil {
				fail(c, "Instrument rejected a valid module: %v", err)
				continue
			}
			mm, merr := met.r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName(reg))
			if merr != nil {
				if tainted {
					st.policyReject(fmt.Errorf("imports from a module rejected by policy: %w", merr))
				} else {
					fail(c, "metered module failed to instantiate: %v", merr)
				}
				continue
			}
			mm.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal).Set(gasBudget)
			met.last = mm
			if c.Name != "" {
				met.named[c.Name] = mm
			}
			st.pass++

		case "register":
			fail(c, "register not directly after its module is not supported")

		case "assert_return", "action", "assert_trap", "assert_exhaustion":
			pm, mm := plain.module(c.Action.Module), met.module(c.Action.Module)
			if pm == nil {
				fail(c, "no plain module")
				continue
			}
			if mm == nil {
				st.policyReject(errors.New("command on a module rejected by policy"))
				continue
			}
			if c.Action.Type == "get" {
				pg, mg := pm.ExportedGlobal(c.Action.Field), mm.ExportedGlobal(c.Action.Field)
				if pg == nil || mg == nil {
					fail(c, "global %q not exported", c.Action.Field)
					continue
				}
				exp, _ := c.Expected[0].bits()
				if pg.Get() != mg.Get() || pg.Get() != exp {
					fail(c, "global %q: plain %#x metered %#x want %#x", c.Action.Field, pg.Get(), mg.Get(), exp)
					continue
				}
				st.pass++
				continue
			}
			var args []uint64
			var argErr error
			for _, a := range c.Action.Args {
				b, err := a.bits()
				if err != nil {
					argErr = err
				}
				args = append(args, b)
			}
			if argErr != nil {
				st.policyReject(argErr)
				continue
			}
			pf, mf := pm.ExportedFunction(c.Action.Field), mm.ExportedFunction(c.Action.Field)
			if pf == nil || mf == nil {
				fail(c, "function %q not exported", c.Action.Field)
				continue
			}
			pres, perr := pf.Call(ctx, args...)
			// Like the VM, reset the call depth before every call from
			// outside: an earlier trap may have left it anywhere.
			depth := mm.ExportedGlobal(meter.DepthGlobalExport).(api.MutableGlobal)
			depth.Set(0)
			mres, merr := mf.Call(ctx, args...)
			switch c.Type {
			case "assert_exhaustion":
				// Plain wazero overflows its native stack; the metered
				// module must either hit the call depth limit first (an
				// unreachable trap with the counter above the limit) or, if
				// frames are huge, overflow too.
				if perr == nil || !strings.Contains(perr.Error(), "stack overflow") {
					fail(c, "%s: plain: want stack overflow, got %q", c.Action.Field, firstLine(perr))
					continue
				}
				depthTrap := merr != nil && strings.Contains(firstLine(merr), "unreachable") && uint32(depth.Get()) > rn.opts.MaxCallDepth
				if !depthTrap && (merr == nil || !strings.Contains(merr.Error(), "stack overflow")) {
					fail(c, "%s: metered: want call depth trap or stack overflow, got %q (depth %d)", c.Action.Field, firstLine(merr), depth.Get())
					continue
				}
				if depthTrap {
					st.depthTraps++
				}
				st.pass++
				continue
			case "assert_trap":
				if perr == nil || merr == nil || firstLine(perr) != firstLine(merr) {
					fail(c, "%s(%v): plain %q, metered %q (want trap %q)", c.Action.Field, args, firstLine(perr), firstLine(merr), c.Text)
					continue
				}
				st.pass++
				continue
			}
			if perr != nil || merr != nil {
				fail(c, "%s(%v): plain err %q, metered err %q", c.Action.Field, args, firstLine(perr), firstLine(merr))
				continue
			}
			if msg := compareResults(pf.Definition().ResultTypes(), pres, mres, c); msg != "" {
				fail(c, "%s(%v): %s", c.Action.Field, args, msg)
				continue
			}
			if g := mm.ExportedGlobal(meter.GasGlobalExport).Get(); int64(g) < 0 {
				fail(c, "%s: gas went negative (%d)", c.Action.Field, int64(g))
				continue
			}
			st.pass++

		case "assert_invalid", "assert_malformed":
			if c.ModuleType == "text" {
				st.text++
				continue
			}
			buf := read(c.Filename)
			if _, perr := plain.r.CompileModule(ctx, buf); perr == nil {
				// wazero itself accepts this module; nothing to compare.
				t.Logf("%s:%d %s: plain wazero accepts the module (wazero deviation)", name, c.Line, c.Type)
			}
			out, err := meter.Instrument(buf, rn.opts)
			if err != nil {
				st.pass++
				continue
			}
			cm, merr := met.r.CompileModule(ctx, out)
			if merr == nil {
				cm.Close(ctx)
				if _, perr := plain.r.CompileModule(ctx, buf); perr != nil {
					fail(c, "instrumented module compiles but the original does not: %v", perr)
					continue
				}
			}
			st.pass++

		case "assert_unlinkable", "assert_uninstantiable":
			if c.ModuleType == "text" {
				st.text++
				continue
			}
			buf := read(c.Filename)
			_, perr := plain.r.InstantiateWithConfig(ctx, buf, wazero.NewModuleConfig())
			out, err := meter.Instrument(buf, rn.opts)
			if errors.Is(err, meter.ErrUnsupportedFeature) {
				st.policyReject(err)
				continue
			}
			var merr error
			if err != nil {
				merr = err
			} else {
				_, merr = met.r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig())
			}
			if (perr == nil) != (merr == nil) {
				fail(c, "plain %q, metered %q", firstLine(perr), firstLine(merr))
				continue
			}
			if c.Type == "assert_unlinkable" && perr == nil {
				fail(c, "module linked on both sides")
				continue
			}
			st.pass++

		default:
			fail(c, "unknown command")
		}
	}
	return st
}

// compareResults checks metered against plain bit for bit, and both against
// the expectation; nan:canonical / nan:arithmetic only constrain the class.
func compareResults(types []api.ValueType, p, m []uint64, c *command) string {
	if len(p) != len(m) || len(p) != len(types) {
		return fmt.Sprintf("result counts: plain %d metered %d types %d", len(p), len(m), len(types))
	}
	if c.Type == "assert_return" && len(c.Expected) != len(p) {
		return fmt.Sprintf("want %d results, got %d", len(c.Expected), len(p))
	}
	for i, typ := range types {
		var exp value
		if c.Type == "assert_return" {
			exp = c.Expected[i]
		}
		if k := exp.nanKind(); k != "" {
			if !nanOK(typ, p[i], k) || !nanOK(typ, m[i], k) {
				return fmt.Sprintf("result %d: plain %#x metered %#x want %s", i, p[i], m[i], k)
			}
			continue
		}
		pv, mv := p[i], m[i]
		switch typ {
		case api.ValueTypeI32, api.ValueTypeF32:
			pv, mv = uint64(uint32(pv)), uint64(uint32(mv))
		case valueTypeFuncref:
			// Function references are engine pointers: compare null-ness.
			pv, mv = b2u(pv != 0), b2u(mv != 0)
		}
		if pv != mv {
			return fmt.Sprintf("result %d: plain %#x metered %#x", i, pv, mv)
		}
		if c.Type == "assert_return" && exp.Value != nil && typ != valueTypeFuncref {
			want, err := exp.bits()
			if err == nil && want != mv {
				if (typ == api.ValueTypeF32 && math.IsNaN(float64(math.Float32frombits(uint32(want)))) && math.IsNaN(float64(math.Float32frombits(uint32(mv))))) ||
					(typ == api.ValueTypeF64 && math.IsNaN(math.Float64frombits(want)) && math.IsNaN(math.Float64frombits(mv))) {
					continue
				}
				return fmt.Sprintf("result %d: got %#x want %#x", i, mv, want)
			}
		}
	}
	return ""
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func nanOK(typ api.ValueType, v uint64, kind string) bool {
	switch typ {
	case api.ValueTypeF32:
		b := uint32(v)
		if kind == "nan:canonical" {
			return b&0x7fffffff == 0x7fc00000
		}
		return b&0x7fc00000 == 0x7fc00000
	case api.ValueTypeF64:
		if kind == "nan:canonical" {
			return v&0x7fffffffffffffff == 0x7ff8000000000000
		}
		return v&0x7ff8000000000000 == 0x7ff8000000000000
	}
	return false
}

func runSuite(t *testing.T, version string, features api.CoreFeatures) {
	runSuiteWith(t, version, features, false)
}

// runSuiteWith runs a suite; with blindLocals it meters with
// Options.BlindLocals (the jobs' metering) and runs only the files about
// floats and locals, where that option changes the instrumented code.
func runSuiteWith(t *testing.T, version string, features api.CoreFeatures, blindLocals bool) {
	root := suiteRoot(t)
	dir := filepath.Join(root, version, "testdata")
	spec, err := os.ReadFile(filepath.Join(root, "testdata", "spectest.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	matches, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no spec files in %s (%v)", dir, err)
	}
	opts := meter.Options{
		Costs:           meter.DefaultCosts(),
		CanonicalizeNaN: true,
		MaxCallDepth:    meter.DefaultMaxCallDepth,
		InitialGas:      gasBudget, // start functions run before the host can set gas
		BlindLocals:     blindLocals,
	}
	if blindLocals {
		matches = slices.DeleteFunc(matches, func(m string) bool {
			name := filepath.Base(m)
			for _, p := range []string{"f32", "f64", "float", "conversions", "local", "select", "loop"} {
				if strings.HasPrefix(name, p) {
					return false
				}
			}
			return true
		})
	}
	rn := &runner{dir: dir, features: features, cache: wazero.NewCompilationCache(), opts: opts, spectest: spec}
	defer rn.cache.Close(context.Background())

	var mu sync.Mutex
	results := map[string]stats{}
	t.Run("files", func(t *testing.T) {
		for _, m := range matches {
			name := strings.TrimSuffix(filepath.Base(m), ".json")
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				st := rn.runFile(t, name)
				mu.Lock()
				results[name] = st
				mu.Unlock()
			})
		}
	})

	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	var tot stats
	reasons := map[string]int{}
	for _, n := range names {
		s := results[n]
		t.Logf("%-36s pass %5d  rejected-by-policy %4d  text-skipped %3d  fail %d", n, s.pass, s.policy, s.text, s.fail)
		tot.pass += s.pass
		tot.policy += s.policy
		tot.text += s.text
		tot.fail += s.fail
		tot.depthTraps += s.depthTraps
		for r, k := range s.reasons {
			reasons[r] += k
		}
	}
	t.Logf("%s TOTAL: pass %d, rejected by policy %d, text skipped %d, fail %d (%d files); %d assert_exhaustion met by the call depth limit", version, tot.pass, tot.policy, tot.text, tot.fail, len(names), tot.depthTraps)
	rs := make([]string, 0, len(reasons))
	for r := range reasons {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	for _, r := range rs {
		t.Logf("%s rejected by policy: %5d × %s", version, reasons[r], r)
	}
}

func TestSpecV1(t *testing.T) { runSuite(t, "v1", api.CoreFeaturesV1) }

func TestSpecV2(t *testing.T) { runSuite(t, "v2", api.CoreFeaturesV2) }

func TestSpecV2BlindLocals(t *testing.T) { runSuiteWith(t, "v2", api.CoreFeaturesV2, true) }

// valueTypeFuncref is not exported by wazero's api package.
const valueTypeFuncref api.ValueType = 0x70
