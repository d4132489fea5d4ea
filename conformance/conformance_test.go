package conformance

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

var update = flag.Bool("update", false, "rewrite the expectations of the golden vectors and kat.json (prints what changed)")

func TestGoldenVectors(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if name == "kat" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			v, err := LoadVector(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Run(context.Background(), v, t.TempDir())
			if err != nil {
				t.Fatal(err)
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

// TestVectorsRepeat runs one vector twice: execution must not depend on
// anything but its input.
func TestVectorsRepeat(t *testing.T) {
	v, err := LoadVector("testdata/contracts.json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Run(context.Background(), v, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), v, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(a, b); d != "" {
		t.Fatalf("two runs differ:\n%s", d)
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
