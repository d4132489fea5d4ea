// Command split cuts a text file into N parts for the distributed word
// count (see ../README.md): each part is the input of one wordcount -map
// job. It runs on the consumer's machine, not as a job.
//
// Usage:
//
//	go run ./sdk-contracts/jobs/distributed/split -n N [-o DIR] FILE
//
// It writes DIR/<stem>.partK<ext> for K = 1..N (DIR defaults to the current
// directory, stem and ext are FILE's) and prints one line per part: its
// path, size and the byte range it covers. Parts are about size/N bytes.
// Each cut lies just after the first newline within 64 KiB of its target
// offset, or failing that just after the first ASCII whitespace byte (a
// text without any is left in one part): a cut after whitespace never
// falls inside a word or a UTF-8 sequence, so the counts of the parts add
// up to the counts of the whole. Concatenating the parts gives FILE back.
// A part can be empty when the file is small or has long runs without
// whitespace; it is still written, so that there are always N.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// newlineWindow is how far past its target a cut looks for a newline
// before settling for any whitespace.
const newlineWindow = 64 << 10

// maxParts bounds -n: a part per job, and thousands of jobs are a mistake.
const maxParts = 10000

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("split", flag.ContinueOnError)
	fl.SetOutput(stderr)
	n := fl.Int("n", 0, "number of parts (required)")
	dir := fl.String("o", ".", "directory to write the parts to")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() != 1 || *n < 1 || *n > maxParts {
		fmt.Fprintf(stderr, "usage: split -n N [-o DIR] FILE   (1 ≤ N ≤ %d)\n", maxParts)
		return 2
	}
	if err := splitFile(fl.Arg(0), *n, *dir, stdout); err != nil {
		fmt.Fprintf(stderr, "split: %v\n", err)
		return 1
	}
	return 0
}

func splitFile(path string, n int, dir string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	cuts, err := cutPoints(f, st.Size(), n)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for k := range n {
		from, to := cuts[k], cuts[k+1]
		name := filepath.Join(dir, fmt.Sprintf("%s.part%d%s", stem, k+1, ext))
		if err := writePart(name, io.NewSectionReader(f, from, to-from)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%d bytes\t[%d, %d)\n", name, to-from, from, to)
	}
	return nil
}

func writePart(name string, r io.Reader) error {
	out, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cutPoints returns n+1 offsets, 0 = c₀ ≤ c₁ ≤ … ≤ cₙ = size: part k is
// [cₖ, cₖ₊₁). Each inner cut is just after a whitespace byte found at or
// after the target k·size/n (see the package comment), or size.
func cutPoints(r io.ReaderAt, size int64, n int) ([]int64, error) {
	cuts := make([]int64, n+1)
	cuts[n] = size
	for k := 1; k < n; k++ {
		target := max(size*int64(k)/int64(n), cuts[k-1])
		c, err := cutAfter(r, size, target)
		if err != nil {
			return nil, err
		}
		cuts[k] = c
	}
	return cuts, nil
}

// cutAfter returns the offset just after the first newline in
// [from, from+newlineWindow), else just after the first ASCII whitespace
// byte at or after from, else size. from = 0 is a cut already (nothing
// before it).
func cutAfter(r io.ReaderAt, size, from int64) (int64, error) {
	if from == 0 {
		return 0, nil
	}
	// A cut exactly at from is fine when the byte before it is whitespace.
	from--
	space := int64(-1)
	br := bufio.NewReaderSize(io.NewSectionReader(r, from, size-from), 64<<10)
	for off := from; ; off++ {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			if space >= 0 {
				return space + 1, nil
			}
			return size, nil
		}
		if err != nil {
			return 0, err
		}
		if b == '\n' && off-from < newlineWindow {
			return off + 1, nil
		}
		if isSpace(b) && space < 0 {
			space = off
		}
		if space >= 0 && off-from >= newlineWindow {
			return space + 1, nil
		}
	}
}

// isSpace reports ASCII whitespace. These bytes never occur inside a
// multi-byte UTF-8 sequence and always separate words for wordcount.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}
