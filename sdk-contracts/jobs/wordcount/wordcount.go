// Command wordcount is an SOS job that counts the words of its text inputs
// and prints the most frequent ones, and the map and reduce steps of the
// same count split across several jobs (sdk-contracts/jobs/distributed).
//
// Usage (argv[0] is "job"):
//
//	wordcount [-top N] [-map] [-reduce] [--] [NAME|-]...
//
// Inputs are every regular file under /in (sorted by path), or the NAMEs
// given (relative to /in; "-" is stdin), or stdin when there is neither.
//
//	(default)  inputs are text; the top N words go to stdout and /out/top.txt
//	-map       inputs are text; the full counts go to /out/counts.json and a
//	           one-line summary to stdout
//	-reduce    inputs are counts.json files of earlier -map (or -reduce -map)
//	           jobs; their sum is reported like text counts: the top N, or
//	           with -map the merged counts (a reduce tree of any depth)
//
// A word is a maximal run of Unicode letters, digits and combining marks,
// folded to lower case; an apostrophe (' or U+2019, written ') between a
// word character and a letter belongs to the word ("don't", "o'clock").
// Everything else separates words, and so does the end of each input, so
// counting the parts of a text split after any whitespace gives the counts
// of the whole: that is what makes the map and reduce steps exact.
//
// top.txt has one line per word, "<count>\t<word>", by count descending and
// then word ascending (bytewise), so equal counts always come out in the
// same order. -top 0 lists every word.
//
// counts.json is {"format":"sos.wordcount.counts/1","total":T,"counts":{...}}
// with the words as keys in sorted order; a reduce step refuses a file whose
// format is unknown, whose counts are not positive or do not sum to total.
//
// Exit code: 0 on success, 1 when an input cannot be read or parsed or an
// output cannot be written, 2 for bad flags.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Output files under /out.
const (
	topFile    = "top.txt"
	countsFile = "counts.json"
)

// countsFormat names the counts.json layout; a reduce step accepts only it.
const countsFormat = "sos.wordcount.counts/1"

// readBuf is the size of one read from an input (reads are metered host
// calls, so fewer, larger reads cost less gas).
const readBuf = 1 << 20

// run is the whole program with its environment passed in, so that tests
// run it natively against temporary directories.
func run(args []string, stdin io.Reader, inDir, outDir string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("wordcount", flag.ContinueOnError)
	fl.SetOutput(stderr)
	top := fl.Int("top", 10, "number of words to list (0: all)")
	mapMode := fl.Bool("map", false, "write the full counts to /out/"+countsFile+" instead of the top list")
	reduce := fl.Bool("reduce", false, "inputs are "+countsFile+" files to merge, not text")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *top < 0 {
		fmt.Fprintln(stderr, "wordcount: -top must be ≥ 0")
		return 2
	}
	names := fl.Args()
	if len(names) == 0 {
		var err error
		if names, err = listInputs(inDir); err != nil {
			fmt.Fprintf(stderr, "wordcount: list inputs: %v\n", err)
			return 1
		}
		if len(names) == 0 {
			names = []string{"-"}
		}
	}

	c := newCounter()
	for _, name := range names {
		err := withInput(name, stdin, inDir, func(r io.Reader) error {
			if *reduce {
				return c.merge(r)
			}
			return c.countText(r)
		})
		if err != nil {
			fmt.Fprintf(stderr, "wordcount: %s: %v\n", name, err)
			return 1
		}
	}

	if *mapMode {
		b, err := c.marshal()
		if err == nil {
			err = os.WriteFile(filepath.Join(outDir, countsFile), b, 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "wordcount: %v\n", err)
			return 1
		}
		plural := "s"
		if len(names) == 1 {
			plural = ""
		}
		fmt.Fprintf(stdout, "%d words (%d distinct) from %d input%s -> %s\n", c.total, len(c.words), len(names), plural, countsFile)
		return 0
	}
	list := c.top(*top)
	if _, err := io.WriteString(stdout, list); err != nil {
		fmt.Fprintf(stderr, "wordcount: write stdout: %v\n", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(outDir, topFile), []byte(list), 0o644); err != nil {
		fmt.Fprintf(stderr, "wordcount: %v\n", err)
		return 1
	}
	return 0
}

// counter holds the counts of distinct words: an index into parallel
// slices, so a word seen again costs a map lookup without allocating.
type counter struct {
	index  map[string]int
	words  []string
	counts []int64
	total  int64
}

func newCounter() *counter { return &counter{index: make(map[string]int)} }

func (c *counter) add(word []byte, n int64) error {
	if c.total > math.MaxInt64-n {
		return errors.New("count overflows int64")
	}
	c.total += n
	if i, ok := c.index[string(word)]; ok {
		c.counts[i] += n
		return nil
	}
	w := string(word)
	c.index[w] = len(c.words)
	c.words = append(c.words, w)
	c.counts = append(c.counts, n)
	return nil
}

// isWord reports whether r is part of a word.
func isWord(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
	}
	return unicode.IsLetter(r)
}

func lower(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(r)
}

// countText adds the words of one text input. Invalid UTF-8 bytes are
// separators (they decode as U+FFFD, which is not a letter).
func (c *counter) countText(r io.Reader) error {
	br := bufio.NewReaderSize(r, readBuf)
	var word []byte
	flush := func() error {
		if len(word) == 0 {
			return nil
		}
		err := c.add(word, 1)
		word = word[:0]
		return err
	}
	for {
		ch, _, err := br.ReadRune()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return err
		}
		switch {
		case isWord(ch):
			word = utf8.AppendRune(word, lower(ch))
		case (ch == '\'' || ch == '\u2019') && len(word) > 0:
			next, _, err := br.ReadRune()
			if err != nil && err != io.EOF {
				return err
			}
			if err == nil && isLetter(next) {
				word = append(word, '\'')
				word = utf8.AppendRune(word, lower(next))
				continue
			}
			if err == nil {
				_ = br.UnreadRune() // next starts the following token
			}
			if err := flush(); err != nil {
				return err
			}
		default:
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// countsJSON is the layout of counts.json.
type countsJSON struct {
	Format string           `json:"format"`
	Total  int64            `json:"total"`
	Counts map[string]int64 `json:"counts"`
}

func (c *counter) marshal() ([]byte, error) {
	m := make(map[string]int64, len(c.words))
	for i, w := range c.words {
		m[w] = c.counts[i]
	}
	// encoding/json writes map keys sorted: the file is a function of the
	// counts alone.
	b, err := json.Marshal(countsJSON{Format: countsFormat, Total: c.total, Counts: m})
	return append(b, '\n'), err
}

// merge adds the counts of one counts.json input, after checking it.
func (c *counter) merge(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, readBuf))
	dec.DisallowUnknownFields()
	var in countsJSON
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("not a %s file: %w", countsFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the %s object", countsFile)
	}
	if in.Format != countsFormat {
		return fmt.Errorf("format %q, want %q", in.Format, countsFormat)
	}
	// Merge in sorted order so that a new word's slot does not depend on
	// the map's iteration order.
	words := make([]string, 0, len(in.Counts))
	var sum int64
	for w, n := range in.Counts {
		if n <= 0 || w == "" {
			return fmt.Errorf("word %q: count %d (words are non-empty, counts positive)", w, n)
		}
		if sum > math.MaxInt64-n {
			return errors.New("counts overflow int64")
		}
		sum += n
		words = append(words, w)
	}
	if sum != in.Total {
		return fmt.Errorf("counts sum to %d, total says %d", sum, in.Total)
	}
	slices.Sort(words)
	for _, w := range words {
		if err := c.add([]byte(w), in.Counts[w]); err != nil {
			return err
		}
	}
	return nil
}

// top lists the n most frequent words (all when n is 0), by count
// descending, then word ascending.
func (c *counter) top(n int) string {
	order := make([]int, len(c.words))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(c.counts[b], c.counts[a]); c != 0 {
			return c
		}
		return strings.Compare(c.words[a], c.words[b])
	})
	if n > 0 && n < len(order) {
		order = order[:n]
	}
	var b strings.Builder
	for _, i := range order {
		fmt.Fprintf(&b, "%d\t%s\n", c.counts[i], c.words[i])
	}
	return b.String()
}

// withInput calls f with stdin for "-" and otherwise the file name, looked
// up under inDir when relative.
func withInput(name string, stdin io.Reader, inDir string, f func(io.Reader) error) error {
	if name == "-" {
		return f(stdin)
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(inDir, filepath.FromSlash(name))
	}
	file, err := os.Open(path)
	if err != nil {
		return unwrapPath(err)
	}
	defer file.Close()
	return unwrapPath(f(file))
}

// unwrapPath drops the *PathError wrapper, because the name is printed
// already (as the user gave it, not as resolved under /in), and words the
// usual errors as coreutils does rather than as the platform's errno table
// does (Linux and wasip1 differ in capitals), so a job's stderr is the same
// natively and in Wasm.
func unwrapPath(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("No such file or directory")
	case errors.Is(err, syscall.EISDIR):
		return errors.New("Is a directory")
	case errors.Is(err, fs.ErrPermission):
		return errors.New("Permission denied")
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
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
	slices.Sort(names)
	return names, err
}
