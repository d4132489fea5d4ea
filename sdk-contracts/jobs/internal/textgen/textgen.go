// Package textgen writes deterministic English-looking text for the
// benchmarks and tests of the example jobs: words drawn from a Zipf-like
// distribution over a pseudo-vocabulary, in sentences and paragraphs, with
// some capitals, punctuation, apostrophes and non-ASCII letters.
//
// The output is a function of the seed and the size alone, on every
// platform and Go version: the random source is SplitMix64 and every choice
// is integer arithmetic on it.
package textgen

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"unicode"
	"unicode/utf8"
)

// vocabSize is the number of distinct pseudo-words drawn from (a few
// collide, as real words of different roots do).
const vocabSize = 20000

// rng is SplitMix64 (Steele, Lea, Flood 2014).
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a value in [0, n) (with a negligible modulo bias).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

var (
	onsets = []string{"", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "ch", "sh", "th", "st", "tr", "br"}
	nuclei = []string{"a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou", "ee", "é", "ö"}
	codas  = []string{"", "", "", "n", "r", "s", "t", "l", "nd", "st"}
)

// Generate writes exactly size bytes of text generated from seed to w. The
// last word may be cut.
func Generate(w io.Writer, seed uint64, size int64) error {
	r := rng(seed)
	vocab := make([]string, vocabSize)
	for i := range vocab {
		var b []byte
		for range 1 + r.intn(3) {
			b = append(b, onsets[r.intn(len(onsets))]...)
			b = append(b, nuclei[r.intn(len(nuclei))]...)
			b = append(b, codas[r.intn(len(codas))]...)
		}
		if r.intn(50) == 0 {
			b = append(b, "'s"...)
		}
		vocab[i] = string(b)
	}
	// Zipf-like weights 2^32/(rank+1), as a cumulative table to search.
	cum := make([]uint64, vocabSize)
	var total uint64
	for i := range cum {
		total += (1 << 32) / uint64(i+1)
		cum[i] = total
	}
	pick := func() string {
		x := r.next() % total
		return vocab[sort.Search(len(cum), func(i int) bool { return cum[i] > x })]
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	lw := &limitWriter{w: bw, n: size}
	col, lines := 0, 0
	for lw.n > 0 {
		words := 4 + r.intn(16)
		for i := range words {
			word := pick()
			if i == 0 {
				first, n := utf8.DecodeRuneInString(word)
				word = string(unicode.ToUpper(first)) + word[n:]
			}
			sep := ""
			switch {
			case i == words-1:
				sep = [...]string{".", ".", ".", "!", "?"}[r.intn(5)]
			case r.intn(10) == 0:
				sep = [...]string{",", ",", ";", ":", " -"}[r.intn(5)]
			}
			if col > 0 && col+1+len(word)+len(sep) > 72 {
				lw.write("\n")
				col = 0
				if lines++; lines%8 == 0 {
					lw.write("\n")
				}
			} else if col > 0 {
				lw.write(" ")
				col++
			}
			lw.write(word + sep)
			col += len(word) + len(sep)
		}
	}
	if lw.err != nil {
		return fmt.Errorf("textgen: %w", lw.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("textgen: %w", err)
	}
	return nil
}

// limitWriter writes until n bytes are written, keeping the first error.
type limitWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (l *limitWriter) write(s string) {
	if l.err != nil || l.n <= 0 {
		return
	}
	if int64(len(s)) > l.n {
		s = s[:l.n]
	}
	_, l.err = io.WriteString(l.w, s)
	l.n -= int64(len(s))
	if l.err != nil {
		l.n = 0
	}
}
