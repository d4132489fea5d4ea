package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Known answers (FIPS 180-2 examples and the empty message).
const (
	sumEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sumABC   = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	sum448   = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" // "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
)

// writeInputs creates dir/name for each entry (names are slash paths).
func writeInputs(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type result struct {
	code           int
	stdout, stderr string
	sums           string // /out/SHA256SUMS
}

func runJob(t *testing.T, args []string, stdin string, files map[string]string) result {
	t.Helper()
	in, out := t.TempDir(), t.TempDir()
	writeInputs(t, in, files)
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), in, out, &stdout, &stderr)
	sums, err := os.ReadFile(filepath.Join(out, sumsFile))
	if errors.Is(err, fs.ErrNotExist) {
		sums = []byte("<missing>")
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String(), string(sums)}
}

func TestSha256sum(t *testing.T) {
	files := map[string]string{
		"abc.txt":   "abc",
		"empty":     "",
		"a/long":    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		"a.b/x.txt": "abc",
	}
	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		files      map[string]string
		wantCode   int
		wantOut    string
		wantStderr string // substring
	}{
		{
			name: "all inputs sorted by path",
			// "a.b/x.txt" < "a/long" < "abc.txt" < "empty" bytewise ('.' < '/' < 'b').
			files: files,
			wantOut: sumABC + "  a.b/x.txt\n" + sum448 + "  a/long\n" +
				sumABC + "  abc.txt\n" + sumEmpty + "  empty\n",
		},
		{
			name:    "names in the order given, stdin as -",
			args:    []string{"empty", "-", "abc.txt"},
			stdin:   "abc",
			files:   files,
			wantOut: sumEmpty + "  empty\n" + sumABC + "  -\n" + sumABC + "  abc.txt\n",
		},
		{
			name:    "no inputs: stdin",
			stdin:   "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
			wantOut: sum448 + "  -\n",
		},
		{
			name:       "missing name: the others are still listed, exit 1",
			args:       []string{"abc.txt", "nope", "empty"},
			files:      files,
			wantCode:   1,
			wantOut:    sumABC + "  abc.txt\n" + sumEmpty + "  empty\n",
			wantStderr: "sha256sum: nope: ",
		},
		{
			name:       "a directory is an error",
			args:       []string{"a"},
			files:      files,
			wantCode:   1,
			wantStderr: "sha256sum: a: ",
		},
		{
			name:       "unknown option",
			args:       []string{"-c", "abc.txt"},
			files:      files,
			wantCode:   2,
			wantStderr: `unknown option "-c"`,
		},
		{
			name:    "-- ends the options",
			args:    []string{"--", "-c"},
			files:   map[string]string{"-c": "abc"},
			wantOut: sumABC + "  -c\n",
		},
		{
			name:    "escaped names",
			files:   map[string]string{"back\\slash": "abc", "new\nline": "", "car\rret": "abc"},
			wantOut: `\` + sumABC + `  back\\slash` + "\n" + `\` + sumABC + `  car\rret` + "\n" + `\` + sumEmpty + `  new\nline` + "\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runJob(t, tc.args, tc.stdin, tc.files)
			if r.code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", r.code, tc.wantCode, r.stderr)
			}
			if r.stdout != tc.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tc.wantOut)
			}
			if tc.wantCode == 2 {
				if r.sums != "<missing>" {
					t.Errorf("a usage error wrote %s", sumsFile)
				}
			} else if r.sums != r.stdout {
				t.Errorf("%s differs from stdout:\n%s", sumsFile, r.sums)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) || (tc.wantStderr == "") != (r.stderr == "") {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.wantStderr)
			}
		})
	}
}

// TestSha256sumLarge hashes an input larger than one read buffer, with a
// size that is not a multiple of it.
func TestSha256sumLarge(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*readBuf/16+7)
	want := sha256.Sum256(data)
	r := runJob(t, nil, "", map[string]string{"big.bin": string(data)})
	if r.code != 0 || r.stdout != hex.EncodeToString(want[:])+"  big.bin\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestSha256sumMatchesCoreutils compares the output byte for byte with GNU
// sha256sum run on the same files with the same names, when it is
// installed.
func TestSha256sumMatchesCoreutils(t *testing.T) {
	bin, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Skip("sha256sum not installed")
	}
	if v, err := exec.Command(bin, "--version").Output(); err != nil || !bytes.Contains(v, []byte("GNU coreutils")) {
		t.Skip("sha256sum is not GNU coreutils")
	}
	files := map[string]string{
		"abc.txt": "abc", "empty": "", "sp ace": "x y\n", "back\\slash": "1", "new\nline": "2",
		"unicodé.txt": "é", "big": strings.Repeat("sos ", 100000),
	}
	in, out := t.TempDir(), t.TempDir()
	writeInputs(t, in, files)
	var stdout, stderr bytes.Buffer
	if code := run(nil, strings.NewReader(""), in, out, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	names, err := listInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--"}, names...)...)
	cmd.Dir = in
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != string(want) {
		t.Fatalf("ours:\n%q\ncoreutils:\n%q", stdout.String(), want)
	}
	// And coreutils accepts our SHA256SUMS as a checksum file.
	check := exec.Command(bin, "--check", "--strict", filepath.Join(out, sumsFile))
	check.Dir = in
	if msg, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum --check: %v\n%s", err, msg)
	}
}

func TestSha256sumOutputError(t *testing.T) {
	in := t.TempDir()
	writeInputs(t, in, map[string]string{"abc.txt": "abc"})
	var stdout, stderr bytes.Buffer
	code := run(nil, strings.NewReader(""), in, filepath.Join(in, "no-such-dir"), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), sumsFile) {
		t.Fatalf("exit %d, stderr %q: want 1 and an error naming %s", code, stderr.String(), sumsFile)
	}
}
