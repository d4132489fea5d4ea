package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/textgen"
)

// fixedText exercises case folding, apostrophes (ASCII and U+2019),
// non-ASCII letters, a combining mark, digits and punctuation.
const fixedText = "The quick brown fox jumps over the lazy dog. The dog doesn't care; the FOX does!\n" +
	"Été, été: ÉTÉ. Straße straße 42 42 42 x'y 'tis dogs' o\u2019clock rock'n'roll cafe\u0301\n"

// fixedTop is the whole list for fixedText: by count descending, then
// bytewise ("42" < "été", "café" < "care", "o'clock" < "over").
const fixedTop = "4\tthe\n3\t42\n3\tété\n2\tdog\n2\tfox\n2\tstraße\n" +
	"1\tbrown\n1\tcafe\u0301\n1\tcare\n1\tdoes\n1\tdoesn't\n1\tdogs\n1\tjumps\n1\tlazy\n" +
	"1\to'clock\n1\tover\n1\tquick\n1\trock'n'roll\n1\ttis\n1\tx'y\n"

type result struct {
	code           int
	stdout, stderr string
	out            map[string]string // files written under /out
}

// runJob runs wordcount natively with files under /in.
func runJob(t testing.TB, args []string, stdin string, files map[string]string) result {
	t.Helper()
	in, out := t.TempDir(), t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(in, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), in, out, &stdout, &stderr)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String(), out: map[string]string{}}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		r.out[e.Name()] = string(b)
	}
	return r
}

func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[:min(n, len(lines))], "")
}

func TestWordcountTop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		files map[string]string
		want  string
	}{
		{"default top 10", nil, "", map[string]string{"t.txt": fixedText}, firstLines(fixedTop, 10)},
		{"all words", []string{"-top", "0"}, "", map[string]string{"t.txt": fixedText}, fixedTop},
		{"top 3", []string{"-top=3"}, "", map[string]string{"t.txt": fixedText}, firstLines(fixedTop, 3)},
		{"more than there are", []string{"-top", "1000"}, "", map[string]string{"t.txt": fixedText}, fixedTop},
		{"stdin without inputs", []string{"-top", "0"}, fixedText, nil, fixedTop},
		{"stdin by name", []string{"-top", "0", "-"}, fixedText, map[string]string{"other": "ignored"}, fixedTop},
		{
			// The end of an input ends a word: "the" + "fox" is not "thefox".
			"inputs are separate", []string{"-top", "0"}, "",
			map[string]string{"a": "fox jumps the", "b": "fox the"},
			"2\tfox\n2\tthe\n1\tjumps\n",
		},
		{"named inputs only", []string{"b"}, "", map[string]string{"a": "x y z", "b": "fox the"}, "1\tfox\n1\tthe\n"},
		{"empty", nil, "", map[string]string{"empty": ""}, ""},
		{"separators only", nil, "", map[string]string{"p": " ,.;'’ \n\t!? \xff\xfe "}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runJob(t, tc.args, tc.stdin, tc.files)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if r.stdout != tc.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tc.want)
			}
			if r.out[topFile] != r.stdout {
				t.Errorf("%s differs from stdout:\n%s", topFile, r.out[topFile])
			}
			if _, ok := r.out[countsFile]; ok || len(r.out) != 1 {
				t.Errorf("outputs %v, want only %s", keys(r.out), topFile)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestWordcountMapGolden(t *testing.T) {
	r := runJob(t, []string{"-map"}, "", map[string]string{"a": "b A b", "c": "Zeta"})
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	const want = "sos.wordcount.counts/1 total=4 words=3\n1\ta\n2\tb\n1\tzeta\n"
	if r.out[countsFile] != want {
		t.Errorf("%s = %s, want %s", countsFile, r.out[countsFile], want)
	}
	if r.stdout != "4 words (3 distinct) from 2 inputs -> counts.tsv\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	if _, ok := r.out[topFile]; ok {
		t.Error("-map also wrote top.txt")
	}
}

// mapCounts runs wordcount -map on each text and returns the counts files.
func mapCounts(t testing.TB, texts ...string) map[string]string {
	t.Helper()
	counts := map[string]string{}
	for i, text := range texts {
		r := runJob(t, []string{"-map"}, "", map[string]string{"part": text})
		if r.code != 0 {
			t.Fatalf("map: exit %d: %s", r.code, r.stderr)
		}
		counts[string(rune('a'+i))+".tsv"] = r.out[countsFile]
	}
	return counts
}

func reduceTop(t testing.TB, counts map[string]string) string {
	t.Helper()
	r := runJob(t, []string{"-reduce", "-top", "0"}, "", counts)
	if r.code != 0 {
		t.Fatalf("reduce: exit %d: %s", r.code, r.stderr)
	}
	return r.stdout
}

// TestWordcountSplitAnywhereAfterSpace cuts the text after every ASCII
// whitespace byte: map on both parts and reduce must give the list of the
// whole text, which is what the distributed example relies on.
func TestWordcountSplitAnywhereAfterSpace(t *testing.T) {
	for i := 0; i < len(fixedText); i++ {
		if !strings.ContainsRune(" \t\n\r\v\f", rune(fixedText[i])) {
			continue
		}
		a, b := fixedText[:i+1], fixedText[i+1:]
		if got := reduceTop(t, mapCounts(t, a, b)); got != fixedTop {
			t.Fatalf("cut after byte %d (%q | %q):\n%s\nwant:\n%s", i, a, b, got, fixedTop)
		}
	}
}

// TestWordcountReduceTree merges generated text in a two-level tree
// (reduce -map of two maps, then reduce with a third) and compares with one
// count of the whole.
func TestWordcountReduceTree(t *testing.T) {
	var text bytes.Buffer
	if err := textgen.Generate(&text, 3, 300_000); err != nil {
		t.Fatal(err)
	}
	whole := runJob(t, []string{"-top", "50"}, text.String(), nil)
	if whole.code != 0 {
		t.Fatal(whole.stderr)
	}
	s := text.String()
	cut1 := strings.IndexByte(s[100_000:], '\n') + 100_000 + 1
	cut2 := strings.IndexByte(s[200_000:], ' ') + 200_000 + 1
	parts := mapCounts(t, s[:cut1], s[cut1:cut2], s[cut2:])

	inner := runJob(t, []string{"-reduce", "-map", "a.tsv", "b.tsv"}, "", parts)
	if inner.code != 0 {
		t.Fatal(inner.stderr)
	}
	outer := runJob(t, []string{"-reduce", "-top", "50"}, "", map[string]string{"ab.tsv": inner.out[countsFile], "c.tsv": parts["c.tsv"]})
	if outer.code != 0 {
		t.Fatal(outer.stderr)
	}
	if outer.stdout != whole.stdout {
		t.Fatalf("tree reduce:\n%s\nwhole:\n%s", outer.stdout, whole.stdout)
	}
	if strings.Count(whole.stdout, "\n") != 50 {
		t.Fatalf("want 50 lines:\n%s", whole.stdout)
	}
}

func TestWordcountErrors(t *testing.T) {
	const good = "sos.wordcount.counts/1 total=3 words=2\n1\ta\n2\tb\n"
	bad := func(old, new string) map[string]string {
		return map[string]string{"c": strings.Replace(good, old, new, 1)}
	}
	for _, tc := range []struct {
		name     string
		args     []string
		files    map[string]string
		wantCode int
		wantErr  string
	}{
		{"unknown flag", []string{"-nope"}, nil, 2, "flag provided but not defined"},
		{"negative top", []string{"-top", "-1"}, nil, 2, "-top must be ≥ 0"},
		{"missing input", []string{"nope.txt"}, nil, 1, "wordcount: nope.txt: No such file or directory"},
		{"reduce text", []string{"-reduce"}, map[string]string{"t": "hello"}, 1, "not a counts.tsv file"},
		{"reduce empty", []string{"-reduce"}, map[string]string{"t": ""}, 1, "not a counts.tsv file"},
		{"reduce format", []string{"-reduce"}, bad("/1", "/2"), 1, "not a counts.tsv file"},
		{"reduce header not canonical", []string{"-reduce"}, bad("total=3", "total=03"), 1, "not a counts.tsv file"},
		{"reduce total", []string{"-reduce"}, bad("total=3", "total=4"), 1, "2 words summing to 3, header says 2 summing to 4"},
		{"reduce word count", []string{"-reduce"}, bad("words=2", "words=3"), 1, "2 words summing to 3, header says 3"},
		{"reduce zero count", []string{"-reduce"}, bad("1\ta", "0\ta"), 1, "line 2: "},
		{"reduce leading zero", []string{"-reduce"}, bad("1\ta", "01\ta"), 1, "line 2: "},
		{"reduce sign", []string{"-reduce"}, bad("1\ta", "+1\ta"), 1, "line 2: "},
		{"reduce empty word", []string{"-reduce"}, bad("1\ta", "1\t"), 1, "line 2: "},
		{"reduce two tabs", []string{"-reduce"}, bad("2\tb", "2\tb\tc"), 1, "line 3: "},
		{"reduce invalid UTF-8", []string{"-reduce"}, bad("2\tb", "2\tb\xff"), 1, "line 3: "},
		{"reduce no final newline", []string{"-reduce"}, map[string]string{"c": strings.TrimSuffix(good, "\n")}, 1, "line 3: "},
		{"reduce order", []string{"-reduce"}, map[string]string{"c": "sos.wordcount.counts/1 total=3 words=2\n2\tb\n1\ta\n"}, 1, "not in increasing order"},
		{"reduce duplicate", []string{"-reduce"}, map[string]string{"c": "sos.wordcount.counts/1 total=2 words=2\n1\ta\n1\ta\n"}, 1, "not in increasing order"},
		{"reduce trailing data", []string{"-reduce"}, map[string]string{"c": good + "x"}, 1, "line 4: "},
		{"reduce count overflow", []string{"-reduce"}, bad("1\ta", "9223372036854775808\ta"), 1, "line 2: "},
		{"reduce long line", []string{"-reduce"}, bad("1\ta", "1\t"+strings.Repeat("a", maxCountsLine)), 1, "longer than"},
		{"reduce sum overflow", []string{"-reduce"}, map[string]string{
			"c": "sos.wordcount.counts/1 total=9223372036854775807 words=1\n9223372036854775807\ta\n",
			"d": "sos.wordcount.counts/1 total=1 words=1\n1\ta\n",
		}, 1, "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runJob(t, tc.args, "", tc.files)
			if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantErr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tc.wantCode, tc.wantErr)
			}
			if len(r.out) != 0 {
				t.Errorf("a failed run wrote %v", keys(r.out))
			}
		})
	}
}

func TestWordcountOutputError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	in := t.TempDir()
	code := run([]string{"-map"}, strings.NewReader("a b"), in, filepath.Join(in, "missing"), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), countsFile) {
		t.Fatalf("exit %d stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(in, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}
