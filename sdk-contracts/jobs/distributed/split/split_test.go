package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/textgen"
)

func genText(t testing.TB, seed uint64, size int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := textgen.Generate(&b, seed, size); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkCuts checks the invariants of cutPoints: n+1 ordered offsets from 0
// to len(data), each inner one just after a whitespace byte or at the end.
func checkCuts(t *testing.T, data []byte, n int, cuts []int64) {
	t.Helper()
	if len(cuts) != n+1 || cuts[0] != 0 || cuts[n] != int64(len(data)) {
		t.Fatalf("cuts %v for %d bytes in %d parts", cuts, len(data), n)
	}
	for k := 1; k < n; k++ {
		c := cuts[k]
		if c < cuts[k-1] {
			t.Fatalf("cuts %v not ordered", cuts)
		}
		if c != 0 && c != int64(len(data)) && !isSpace(data[c-1]) {
			t.Fatalf("cut %d at %d follows %q, not whitespace", k, c, data[c-1])
		}
	}
}

func TestCutPoints(t *testing.T) {
	text := genText(t, 1, 1<<20)
	for _, n := range []int{1, 2, 3, 7, 64} {
		cuts, err := cutPoints(bytes.NewReader(text), int64(len(text)), n)
		if err != nil {
			t.Fatal(err)
		}
		checkCuts(t, text, n, cuts)
		// Generated lines are at most 72 bytes: every cut is a newline
		// within a line of its target.
		for k := 1; k < n; k++ {
			target := int64(len(text)) * int64(k) / int64(n)
			if d := cuts[k] - target; d < 0 || d > 80 || text[cuts[k]-1] != '\n' {
				t.Errorf("n=%d: cut %d at %d, target %d", n, k, cuts[k], target)
			}
		}
	}
}

func TestCutPointsWithoutNewlines(t *testing.T) {
	// One long line: cuts fall after the first space past the target.
	line := bytes.ReplaceAll(genText(t, 2, 400<<10), []byte("\n"), []byte(" "))
	cuts, err := cutPoints(bytes.NewReader(line), int64(len(line)), 4)
	if err != nil {
		t.Fatal(err)
	}
	checkCuts(t, line, 4, cuts)
	for k := 1; k < 4; k++ {
		target := int64(len(line)) * int64(k) / 4
		if d := cuts[k] - target; d < 0 || d > 80 {
			t.Errorf("cut %d at %d, target %d", k, cuts[k], target)
		}
	}
	// With the target at T: a newline within the window wins over an
	// earlier space; one beyond it loses.
	const T = 100_000
	pad := func(n int, c string) string { return strings.Repeat(c, n) }
	for _, tc := range []struct {
		text string
		want int64
	}{
		{pad(T, "a") + "bb cc" + pad(100, "d") + "\n" + pad(T-106, "e"), T + 106},
		{pad(T, "a") + "bb cc" + pad(newlineWindow+10, "d") + "\n" + pad(T-newlineWindow-16, "e"), T + 3},
		{pad(T-1, "a") + " " + pad(T, "b"), T},  // whitespace just before the target
		{pad(T-1, "a") + "\n" + pad(T, "b"), T}, // a newline too
	} {
		cuts, err := cutPoints(strings.NewReader(tc.text), int64(len(tc.text)), 2)
		if err != nil {
			t.Fatal(err)
		}
		if cuts[1] != tc.want {
			t.Errorf("cut at %d, want %d", cuts[1], tc.want)
		}
	}
	// No whitespace at all: everything in the first part.
	solid := bytes.Repeat([]byte("é"), 1000)
	cuts, err = cutPoints(bytes.NewReader(solid), int64(len(solid)), 3)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cuts) != "[0 2000 2000 2000]" {
		t.Errorf("cuts %v, want [0 2000 2000 2000]", cuts)
	}
	// Tiny and empty inputs.
	for _, s := range []string{"", "a", "a b", "\n\n\n"} {
		cuts, err := cutPoints(strings.NewReader(s), int64(len(s)), 5)
		if err != nil {
			t.Fatal(err)
		}
		checkCuts(t, []byte(s), 5, cuts)
	}
}

func TestSplitCommand(t *testing.T) {
	dir := t.TempDir()
	text := genText(t, 3, 100_000)
	in := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(in, text, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "parts")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "3", "-o", out, in}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var joined []byte
	for k := 1; k <= 3; k++ {
		name := filepath.Join(out, fmt.Sprintf("corpus.part%d.txt", k))
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), fmt.Sprintf("%s\t%d bytes\t", name, len(b))) {
			t.Errorf("stdout does not list %s (%d bytes):\n%s", name, len(b), stdout.String())
		}
		joined = append(joined, b...)
	}
	if !bytes.Equal(joined, text) {
		t.Fatal("the parts do not concatenate to the input")
	}
	if strings.Count(stdout.String(), "\n") != 3 {
		t.Errorf("stdout:\n%s", stdout.String())
	}

	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{in}, 2, "usage"},
		{[]string{"-n", "0", in}, 2, "usage"},
		{[]string{"-n", "2"}, 2, "usage"},
		{[]string{"-n", "2", filepath.Join(dir, "nope")}, 1, "no such file"},
		{[]string{"-n", "2", dir}, 1, "not a regular file"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
			t.Errorf("%v: exit %d stderr %q, want %d and %q", tc.args, code, stderr.String(), tc.wantCode, tc.wantErr)
		}
	}
}

// FuzzCutPoints checks the invariants of cutPoints on any text and part
// count: ordered cuts from 0 to the end, each just after whitespace.
func FuzzCutPoints(f *testing.F) {
	for _, s := range []string{"", "a", "a b", "a\nb", "\n\n", "é é", strings.Repeat("ab ", 100)} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, text string, n uint8) {
		parts := int(n%16) + 1
		cuts, err := cutPoints(strings.NewReader(text), int64(len(text)), parts)
		if err != nil {
			t.Fatal(err)
		}
		checkCuts(t, []byte(text), parts, cuts)
	})
}
