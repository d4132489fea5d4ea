package conformance

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

var update = flag.Bool("update", false, "rewrite the expectations of the golden vectors and kat.json (prints what changed)")

// TestGoldenVectors checks every vector against its expectations, and runs
// each one twice (fresh store and VM; the second run finds the first's
// compiled code in the compilation cache): execution must not depend on
// anything but its input.
func TestGoldenVectors(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if name == "kat" || IsJobVector(f) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			v, err := LoadVector(f)
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{CacheDir: t.TempDir()}
			got, err := RunWith(context.Background(), v, t.TempDir(), opts)
			if err != nil {
				t.Fatal(err)
			}
			again, err := RunWith(context.Background(), v, t.TempDir(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(got, again); d != "" {
				t.Fatalf("two runs of %s differ:\n%s", f, d)
			}
			diff := Diff(v.Expect, got)
			if *update {
				if diff != "" {
					t.Logf("updating %s:\n%s", f, diff)
				}
				v.Expect = got
				writeJSON(t, f, v)
				return
			}
			if diff != "" {
				t.Fatalf("%s differs from its golden expectations (a consensus change? rerun with -update if intended):\n%s", f, diff)
			}
		})
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKnownAnswers(t *testing.T) {
	if *update {
		k, err := GenerateKAT()
		if err != nil {
			t.Fatal(err)
		}
		writeJSON(t, "testdata/kat.json", k)
	}
	if err := CheckKATFile("testdata/kat.json"); err != nil {
		t.Fatal(err)
	}
}

// TestMLDSAKeyGenACVP checks our key derivation against NIST's ACVP
// ML-DSA-65 keyGen vectors shipped in the circl module (read from the module
// cache, not copied here): seed → public key must match exactly.
func TestMLDSAKeyGenACVP(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cloudflare/circl").Output()
	if err != nil {
		t.Skipf("go tool unavailable: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "sign", "mldsa", "testdata", "ML-DSA-keyGen-FIPS204")
	prompt := readGz(t, filepath.Join(dir, "prompt.json.gz"))
	expected := readGz(t, filepath.Join(dir, "expectedResults.json.gz"))
	type test struct {
		TcID int    `json:"tcId"`
		Seed string `json:"seed"`
		Pk   string `json:"pk"`
	}
	type group struct {
		TgID         int    `json:"tgId"`
		ParameterSet string `json:"parameterSet"`
		Tests        []test `json:"tests"`
	}
	var p, e struct {
		TestGroups []group `json:"testGroups"`
	}
	if err := json.Unmarshal(prompt, &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(expected, &e); err != nil {
		t.Fatal(err)
	}
	pks := map[[2]int]string{}
	for _, g := range e.TestGroups {
		for _, tc := range g.Tests {
			pks[[2]int{g.TgID, tc.TcID}] = tc.Pk
		}
	}
	n := 0
	for _, g := range p.TestGroups {
		if g.ParameterSet != "ML-DSA-65" {
			continue
		}
		for _, tc := range g.Tests {
			seed, _ := hex.DecodeString(tc.Seed)
			k, err := ledger.PrivateKeyFromSeed(seed)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := hex.DecodeString(pks[[2]int{g.TgID, tc.TcID}])
			if !bytes.Equal(k.Public().Bytes(), want) {
				t.Fatalf("ACVP keyGen tc %d: public key differs", tc.TcID)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no ML-DSA-65 keyGen vectors found")
	}
	t.Logf("%d ML-DSA-65 ACVP keyGen vectors match", n)
}

func readGz(t *testing.T, path string) []byte {
	t.Helper()
	b, err := readWasm(path) // gzip reader with a size cap
	if err != nil {
		t.Skipf("ACVP vectors not in the module cache: %v", err)
	}
	return b
}

func TestRunDirReportsFailures(t *testing.T) {
	dir := t.TempDir()
	v, err := os.ReadFile("testdata/transfers.json")
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt one expected state root: RunDir must report a failure.
	var m map[string]any
	_ = json.Unmarshal(v, &m)
	blocks := m["expect"].(map[string]any)["blocks"].([]any)
	blocks[0].(map[string]any)["state_root"] = strings.Repeat("0", 64)
	b, _ := json.Marshal(m)
	_ = os.WriteFile(filepath.Join(dir, "transfers.json"), b, 0o644)
	passed, failed, err := RunDir(context.Background(), dir, func(string, error) {})
	if err != nil || passed != 0 || failed != 1 {
		t.Fatalf("passed %d failed %d err %v", passed, failed, err)
	}
}

// TestDiffCoversMarket: a change in an epoch record, the market's final
// state or the escrow balance is a difference.
func TestDiffCoversMarket(t *testing.T) {
	v, err := LoadVector("testdata/rome_market.json")
	if err != nil {
		t.Fatal(err)
	}
	if v.Expect == nil || v.Expect.Market == nil {
		t.Fatal("rome_market.json has no market expectations")
	}
	copyOf := func() *Expectation {
		b, _ := json.Marshal(v.Expect)
		var e Expectation
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		return &e
	}
	for name, mutate := range map[string]func(e *Expectation){
		"epoch record": func(e *Expectation) { e.Blocks[0].Epoch.NewLeases++ },
		"no epoch":     func(e *Expectation) { e.Blocks[1].Epoch = nil },
		"proposal":     func(e *Expectation) { e.Market.Proposals[0].Status = "rejected" },
		"certificate":  func(e *Expectation) { e.Market.Certificates[0].Status = "pending" },
		"escrow":       func(e *Expectation) { delete(e.Balances, escrowName) },
	} {
		e := copyOf()
		mutate(e)
		if Diff(v.Expect, e) == "" || Diff(e, v.Expect) == "" {
			t.Errorf("%s: Diff does not see the change", name)
		}
	}
}

// TestJobVectors runs every job vector twice (fresh Jobs VMs; the second
// loads the first's compiled code from the cache) and checks the outcomes
// against the expectations: exit code, gas, stdout, outputs and output
// root must not depend on anything but the job.
func TestJobVectors(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	n := 0
	for _, f := range files {
		if !IsJobVector(f) {
			continue
		}
		n++
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			v, err := LoadJobVector(f)
			if err != nil {
				t.Fatal(err)
			}
			cache := t.TempDir()
			got, err := RunJobs(context.Background(), v, cache)
			if err != nil {
				t.Fatal(err)
			}
			again, err := RunJobs(context.Background(), v, cache)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffRuns(got, again); d != "" {
				t.Fatalf("two runs of %s differ:\n%s", f, d)
			}
			diff := DiffJobs(v, got)
			if *update {
				if diff != "" {
					t.Logf("updating %s:\n%s", f, diff)
				}
				for i := range v.Runs {
					v.Runs[i].Expect = got[i]
				}
				writeJSON(t, f, v)
				return
			}
			if diff != "" {
				t.Fatalf("%s differs from its golden expectations (a change of the Jobs VM's results? rerun with -update if intended):\n%s", f, diff)
			}
		})
	}
	if n == 0 {
		t.Fatal("no job vectors in testdata")
	}
}

func diffRuns(a, b []*JobRunExpected) string {
	var sb strings.Builder
	for i := range a {
		if i >= len(b) {
			break
		}
		if x, y := jsonOf(a[i]), jsonOf(b[i]); !bytes.Equal(x, y) {
			fmt.Fprintf(&sb, "run %d:\n  %s\n  %s\n", i, x, y)
		}
	}
	return sb.String()
}

// TestJobVectorDetectsChanges: a changed expectation (gas, output root) is
// a failure of CheckJobVector, so `sos conformance run` reports it.
func TestJobVectorDetectsChanges(t *testing.T) {
	b, err := os.ReadFile("testdata/job_runs.json")
	if err != nil {
		t.Fatal(err)
	}
	var v JobVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	v.Runs = v.Runs[:2] // a clean exit and stdin: enough to see a change
	v.Runs[0].Expect.GasUsed++
	v.Runs[1].Expect.OutputRoot = strings.Repeat("0", 64)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "wasm"), 0o755); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile("testdata/wasm/sha256sum.wasm.gz")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "wasm", "sha256sum.wasm.gz"), wasm, 0o644)
	out, _ := json.Marshal(v)
	_ = os.WriteFile(filepath.Join(dir, "job_runs.json"), out, 0o644)
	err = CheckJobVector(context.Background(), filepath.Join(dir, "job_runs.json"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "run two inputs") || !strings.Contains(err.Error(), "run stdin only") {
		t.Fatalf("changed expectations: %v", err)
	}
	passed, failed, err := RunDir(context.Background(), dir, func(string, error) {})
	if err != nil || passed != 0 || failed != 1 {
		t.Fatalf("RunDir: passed %d failed %d err %v", passed, failed, err)
	}
}
