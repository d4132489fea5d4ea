// Command gentext writes deterministic English-looking text (package
// sdk-contracts/jobs/internal/textgen), an input of known size for the
// word-count examples and their benchmarks: the same seed and size give the
// same bytes on every machine.
//
// Usage:
//
//	go run ./sdk-contracts/jobs/distributed/gentext [-seed N] [-size SIZE] [-o FILE]
//
// SIZE is bytes, or a number with a suffix KiB, MiB or GiB (default 16MiB);
// without -o the text goes to stdout.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/textgen"
)

// maxSize bounds -size: a typo should not fill a disk.
const maxSize = 64 << 30

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("gentext", flag.ContinueOnError)
	fl.SetOutput(stderr)
	seed := fl.Uint64("seed", 1, "random seed")
	sizeFlag := fl.String("size", "16MiB", "bytes to write (suffixes KiB, MiB, GiB)")
	out := fl.String("o", "", "output file (default stdout)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	size, err := parseSize(*sizeFlag)
	if err != nil || fl.NArg() > 0 {
		fmt.Fprintf(stderr, "gentext: -size %q: want bytes or N{KiB,MiB,GiB} up to 64GiB; no arguments\n", *sizeFlag)
		return 2
	}
	w := stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintf(stderr, "gentext: %v\n", err)
			return 1
		}
		w = f
	}
	err = textgen.Generate(w, *seed, size)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "gentext: %v\n", err)
		return 1
	}
	return 0
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxSize/mult {
		return 0, fmt.Errorf("bad size")
	}
	return n * mult, nil
}
