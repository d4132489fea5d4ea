// Command sha256sum is an SOS job that prints the SHA-256 digest of each of
// its inputs in the format of GNU coreutils sha256sum:
//
//	<64 hex digits><two spaces><name>
//
// to stdout and to /out/SHA256SUMS, so `sha256sum -c SHA256SUMS` run in a
// directory holding the same files checks them.
//
// Usage (argv[0] is "job"):
//
//	sha256sum [--] [NAME|-]...
//
// Without names it hashes every regular file under /in, sorted by their
// slash-separated path relative to /in (the job's inputs: the name given at
// submission is the name printed); with no input at all it hashes stdin and
// prints "-" as its name, like coreutils. A relative NAME is looked up under
// /in and printed as given; "-" is stdin. A name holding a backslash, a
// newline or a carriage return is escaped ("\\", "\n", "\r") and its line
// starts with a backslash, exactly as coreutils 9 does.
//
// Exit code: 0 when every name was hashed; 1 when one could not be read (the
// others are still hashed and listed, the error goes to stderr) or the
// output could not be written; 2 for an unknown option.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// sumsFile is the output file under /out.
const sumsFile = "SHA256SUMS"

// readBuf is the size of one read: every read is a host call that the
// executor meters, so few large reads cost less gas than many small ones.
const readBuf = 1 << 20

// run is the whole program with its environment passed in, so that tests
// run it natively against temporary directories.
func run(args []string, stdin io.Reader, inDir, outDir string, stdout, stderr io.Writer) int {
	names, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "sha256sum: %v\nusage: sha256sum [--] [NAME|-]...\n", err)
		return 2
	}
	if len(names) == 0 {
		if names, err = listInputs(inDir); err != nil {
			fmt.Fprintf(stderr, "sha256sum: list inputs: %v\n", err)
			return 1
		}
		if len(names) == 0 {
			names = []string{"-"}
		}
	}
	code := 0
	var sums strings.Builder
	buf := make([]byte, readBuf)
	for _, name := range names {
		sum, err := hashInput(name, stdin, inDir, buf)
		if err != nil {
			fmt.Fprintf(stderr, "sha256sum: %s: %s\n", name, reason(err))
			code = 1
			continue
		}
		sums.WriteString(formatLine(sum, name))
	}
	if _, err := io.WriteString(stdout, sums.String()); err != nil {
		fmt.Fprintf(stderr, "sha256sum: write stdout: %v\n", err)
		code = 1
	}
	if err := os.WriteFile(filepath.Join(outDir, sumsFile), []byte(sums.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "sha256sum: %v\n", err)
		code = 1
	}
	return code
}

// parseArgs returns the names to hash. Like coreutils, "--" ends the
// options and "-" is stdin; sha256sum has no options of its own, so any
// other argument starting with "-" is an error.
func parseArgs(args []string) ([]string, error) {
	var names []string
	for i, a := range args {
		if a == "--" {
			return append(names, args[i+1:]...), nil
		}
		if len(a) > 1 && a[0] == '-' {
			return nil, fmt.Errorf("unknown option %q", a)
		}
		names = append(names, a)
	}
	return names, nil
}

// listInputs returns the regular files under inDir as slash-separated paths
// relative to it, sorted bytewise. A missing inDir is a job without inputs.
func listInputs(inDir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(inDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == inDir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(inDir, path)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	// WalkDir's order is per directory ("a" and its files before "a.txt");
	// a flat sort is the order a user reads in the listing.
	slices.Sort(names)
	return names, err
}

// hashInput hashes stdin for "-" and otherwise the file name, looked up
// under inDir when relative.
func hashInput(name string, stdin io.Reader, inDir string, buf []byte) ([]byte, error) {
	h := sha256.New()
	if name == "-" {
		_, err := io.CopyBuffer(h, onlyReader{stdin}, buf)
		return h.Sum(nil), err
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(inDir, filepath.FromSlash(name))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(h, onlyReader{f}, buf); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// onlyReader hides WriterTo/ReaderFrom so io.CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }

// reason is how an error is printed after the name it concerns: without
// the *PathError wrapper (the name is printed already, as the user gave it
// rather than as resolved under /in), and with the usual errors worded as
// coreutils words them rather than as the platform's errno table does
// (Linux and wasip1 differ in capitals), so that a job's stderr is the
// same natively and in Wasm.
func reason(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, syscall.EISDIR):
		return "Is a directory"
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied"
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// formatLine is one line of coreutils' output. A name with a backslash,
// newline or carriage return is escaped and the line marked with a leading
// backslash, so that every line of the listing is one file.
func formatLine(sum []byte, name string) string {
	var b strings.Builder
	if strings.ContainsAny(name, "\\\n\r") {
		b.WriteByte('\\')
		name = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(name)
	}
	b.WriteString(hex.EncodeToString(sum))
	b.WriteString("  ")
	b.WriteString(name)
	b.WriteByte('\n')
	return b.String()
}
