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
//	-map       inputs are text; the full counts go to /out/counts.tsv and a
//	           one-line summary to stdout
//	-reduce    inputs are counts.tsv files of earlier -map (or -reduce -map)
//	           jobs; their sum is reported like text counts: the top N, or
//	           with -map the merged counts (a reduce tree of any depth)
//
// -top is ignored with -map.
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
// counts.tsv is a header line and one line per distinct word, sorted by
// word (bytewise, each word once):
//
//	sos.wordcount.counts/1 total=<T> words=<D>
//	<count>\t<word>
//
// A reduce step refuses a file whose header is not this one, whose lines
// are not in this form (counts positive decimal integers without leading
// zeros, words non-empty UTF-8 without tabs), out of order, fewer or more
// than D, or whose counts do not sum to T. The format is text rather than
// JSON because of gas: encoding/json calls a function per byte through a
// function value, which Go's Wasm code makes an indirect call, the costliest
// instruction class: merging three counts files of 15,000 words each cost
// 640 Mgas as JSON and costs 89 Mgas in this form (cost table v3).
//
// Exit code: 0 on success, 1 when an input cannot be read or parsed or an
// output cannot be written, 2 for bad flags.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Output files under /out.
const (
	topFile    = "top.txt"
	countsFile = "counts.tsv"
)

// countsFormat names the counts.tsv layout; a reduce step accepts only it.
const countsFormat = "sos.wordcount.counts/1"

// maxCountsLine bounds a line of counts.tsv (longer ones are refused).
const maxCountsLine = 64 << 10

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
			fmt.Fprintf(stderr, "wordcount: %s: %s\n", name, reason(err))
			return 1
		}
	}

	if *mapMode {
		if err := os.WriteFile(filepath.Join(outDir, countsFile), c.marshal(), 0o644); err != nil {
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

// counter holds the counts of distinct words in an open-addressing hash
// table of indices into parallel slices. It is not a Go map because the
// runtime calls of a map lookup cost ≈420 gas per word in Go's Wasm code,
// ≈110 with this table: a word seen again costs a hash, a probe and a
// comparison, without allocating. (FNV-1a is not collision resistant, but
// the input is the consumer's own: a text crafted to collide only costs
// its author gas.)
type counter struct {
	slots   []uint32 // index+1 into words, 0 when empty; len is a power of 2
	hashes  []uint64 // of words, to grow without hashing again
	words   []string
	counts  []int64
	total   int64
	bufSize int // of countText's buffer: readBuf, smaller in tests
}

func newCounter() *counter {
	return &counter{slots: make([]uint32, 1<<12), bufSize: readBuf}
}

// hashWord is 64-bit FNV-1a: a call-free loop, and the table's order of
// probing never shows in an output (outputs are sorted).
func hashWord(w []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range w {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return h
}

func (c *counter) add(word []byte, n int64) error {
	if c.total > math.MaxInt64-n {
		return errors.New("count overflows int64")
	}
	c.total += n
	h := hashWord(word)
	mask := uint64(len(c.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := c.slots[i]
		if s == 0 {
			c.words = append(c.words, string(word))
			c.hashes = append(c.hashes, h)
			c.counts = append(c.counts, n)
			c.slots[i] = uint32(len(c.words))
			if 2*len(c.words) > len(c.slots) {
				c.grow()
			}
			return nil
		}
		if c.hashes[s-1] == h && c.words[s-1] == string(word) {
			c.counts[s-1] += n
			return nil
		}
	}
}

// grow doubles the table, keeping it at most half full.
func (c *counter) grow() {
	c.slots = make([]uint32, 2*len(c.slots))
	mask := uint64(len(c.slots) - 1)
	for k, h := range c.hashes {
		i := h & mask
		for c.slots[i] != 0 {
			i = (i + 1) & mask
		}
		c.slots[i] = uint32(k + 1)
	}
}

// asciiSep reports whether b is an ASCII byte that is not a letter or a
// digit: it ends a word, unless it is an apostrophe inside one.
func asciiSep(b byte) bool {
	return b < utf8.RuneSelf && !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9')
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

// lookahead is how many bytes the scanner needs buffered to decide on a
// byte without reading more: an apostrophe (up to 3 bytes) and the rune
// after it (up to 4).
const lookahead = 3 + utf8.UTFMax

// countText adds the words of one text input. It scans a buffer rather
// than reading rune by rune: function calls are expensive in Go's Wasm
// code, and this loop is the whole job. Invalid UTF-8 bytes are separators
// (they decode as U+FFFD, which is not a letter).
func (c *counter) countText(r io.Reader) error {
	buf := make([]byte, max(c.bufSize, 2*lookahead))
	var word []byte
	start, end, eof := 0, 0, false
	for {
		if end-start < lookahead && !eof {
			// Keep the unread tail and fill the rest of the buffer.
			end = copy(buf, buf[start:end])
			start = 0
			for end < len(buf) && !eof {
				n, err := r.Read(buf[end:])
				end += n
				if err == io.EOF {
					eof = true
				} else if err != nil {
					return err
				}
			}
		}
		if start == end {
			if len(word) > 0 {
				return c.add(word, 1)
			}
			return nil
		}
		if len(word) == 0 {
			// Fast path, most of a text: skip ASCII separators, then take a
			// run of lower-case letters and digits in place. Both loops are
			// free of calls, which Go's Wasm code makes costly to loop over.
			i := start
			for i < end && asciiSep(buf[i]) {
				i++
			}
			j := i
			for j < end && ('a' <= buf[j] && buf[j] <= 'z' || '0' <= buf[j] && buf[j] <= '9') {
				j++
			}
			if j > i && j < end && asciiSep(buf[j]) && buf[j] != '\'' {
				if err := c.add(buf[i:j], 1); err != nil {
					return err
				}
				start = j + 1
				continue
			}
			if j > start {
				// The word goes on (upper case, non-ASCII, an apostrophe
				// or the end of the buffer): the slow path takes over.
				word = append(word, buf[i:j]...)
				start = j
				continue
			}
		}
		b := buf[start]
		if b < utf8.RuneSelf && b != '\'' {
			switch {
			case 'a' <= b && b <= 'z' || '0' <= b && b <= '9':
				word = append(word, b)
			case 'A' <= b && b <= 'Z':
				word = append(word, b+'a'-'A')
			default:
				if len(word) > 0 {
					if err := c.add(word, 1); err != nil {
						return err
					}
					word = word[:0]
				}
			}
			start++
			continue
		}
		ch, size := rune(b), 1
		if b >= utf8.RuneSelf {
			ch, size = utf8.DecodeRune(buf[start:end])
		}
		start += size
		switch {
		case isWord(ch):
			word = utf8.AppendRune(word, lower(ch))
			continue
		case (ch == '\'' || ch == '\u2019') && len(word) > 0 && start < end:
			next, nsize := utf8.DecodeRune(buf[start:end])
			if isLetter(next) {
				word = append(word, '\'')
				word = utf8.AppendRune(word, lower(next))
				start += nsize
				continue
			}
		}
		if len(word) > 0 {
			if err := c.add(word, 1); err != nil {
				return err
			}
			word = word[:0]
		}
	}
}

// marshal returns counts.tsv for the counts so far.
func (c *counter) marshal() []byte {
	order := make([]int, len(c.words))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(c.words[a], c.words[b]) })
	b := fmt.Appendf(nil, "%s total=%d words=%d\n", countsFormat, c.total, len(c.words))
	for _, i := range order {
		b = strconv.AppendInt(b, c.counts[i], 10)
		b = append(b, '\t')
		b = append(b, c.words[i]...)
		b = append(b, '\n')
	}
	return b
}

// merge adds the counts of one counts.tsv input, after checking all of it:
// an input refused halfway leaves c changed, but run stops at the first
// bad input.
func (c *counter) merge(r io.Reader) error {
	br := bufio.NewReaderSize(r, maxCountsLine)
	header, err := br.ReadSlice('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("not a %s file: header: %w", countsFile, err)
	}
	var total, words int64
	if _, err := fmt.Sscanf(string(header), countsFormat+" total=%d words=%d\n", &total, &words); err != nil ||
		string(header) != fmt.Sprintf("%s total=%d words=%d\n", countsFormat, total, words) {
		return fmt.Errorf("not a %s file: header %.80q, want %q", countsFile, header, countsFormat+" total=T words=D")
	}
	var prev []byte
	var sum, lines int64
	for {
		line, err := br.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err == bufio.ErrBufferFull {
			return fmt.Errorf("line %d: longer than %d bytes", lines+2, maxCountsLine)
		}
		if err != nil && err != io.EOF {
			return err
		}
		lines++
		n, word, ok := parseCountsLine(line)
		if !ok {
			return fmt.Errorf("line %d: %.80q is not <count>\\t<word>\\n", lines+1, line)
		}
		if lines > 1 && bytes.Compare(prev, word) >= 0 {
			return fmt.Errorf("line %d: word %q after %q: not in increasing order", lines+1, word, prev)
		}
		prev = append(prev[:0], word...)
		if sum > math.MaxInt64-n {
			return errors.New("counts overflow int64")
		}
		sum += n
		if err := c.add(word, n); err != nil {
			return err
		}
	}
	if lines != words || sum != total {
		return fmt.Errorf("%d words summing to %d, header says %d summing to %d", lines, sum, words, total)
	}
	return nil
}

// parseCountsLine splits "<count>\t<word>\n".
func parseCountsLine(line []byte) (n int64, word []byte, ok bool) {
	if len(line) < 4 || line[len(line)-1] != '\n' {
		return 0, nil, false
	}
	tab := bytes.IndexByte(line, '\t')
	if tab < 1 || line[0] == '0' {
		return 0, nil, false
	}
	for _, d := range line[:tab] {
		if d < '0' || d > '9' || n > (math.MaxInt64-int64(d-'0'))/10 {
			return 0, nil, false
		}
		n = n*10 + int64(d-'0')
	}
	word = line[tab+1 : len(line)-1]
	if n <= 0 || len(word) == 0 || bytes.IndexByte(word, '\t') >= 0 || !utf8.Valid(word) {
		return 0, nil, false
	}
	return n, word, true
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
		return err
	}
	defer file.Close()
	return f(file)
}

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
