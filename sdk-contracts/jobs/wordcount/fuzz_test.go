package main

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// referenceCount is the obviously correct tokenizer of the package comment,
// rune by rune through bufio: countText, which scans a buffer for speed,
// must agree with it on every input.
func referenceCount(text string) map[string]int64 {
	counts := map[string]int64{}
	br := bufio.NewReader(strings.NewReader(text))
	var word []rune
	flush := func() {
		if len(word) > 0 {
			counts[string(word)]++
			word = word[:0]
		}
	}
	for {
		ch, _, err := br.ReadRune()
		if err != nil {
			flush()
			return counts
		}
		switch {
		case isWord(ch):
			word = append(word, lower(ch))
		case (ch == '\'' || ch == '\u2019') && len(word) > 0:
			next, _, err := br.ReadRune()
			if err == nil && isLetter(next) {
				word = append(word, '\'', lower(next))
				continue
			}
			if err == nil {
				br.UnreadRune()
			}
			flush()
		default:
			flush()
		}
	}
}

func countsOf(t *testing.T, r io.Reader, bufSize int) map[string]int64 {
	t.Helper()
	c := newCounter()
	c.bufSize = bufSize
	if err := c.countText(r); err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	var total int64
	for i, w := range c.words {
		m[w] = c.counts[i]
		total += c.counts[i]
	}
	if total != c.total {
		t.Fatalf("total %d, counts sum to %d", c.total, total)
	}
	return m
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

var fuzzSeeds = []string{
	fixedText, "", "a", "'", "a'", "a'b", "a’b", "a'’b", "x''y", "a'1", "a\u2019", "a\xe2\x80", "a'\xff",
	"é", "e\u0301", "ÀÉÎ ÕÜ", "ǅ", "İstanbul", "straße STRASSE", "42 4.2 4,2", "\x00\xff\xfe", "a\r\nb\tc\vd\fe",
	// Across the edge of the 64 KiB buffer the fuzz target uses first.
	strings.Repeat("word ", 1000), strings.Repeat("ü", 40<<10), strings.Repeat("a", 64<<10-1) + "’b c",
}

// FuzzCountText checks countText against referenceCount, with its buffer
// at every small size and with reads of one byte at a time (so runes and
// apostrophes fall across buffer edges and short reads), and that counts
// add up when the text is cut after any ASCII whitespace byte, the property
// the distributed example depends on.
func FuzzCountText(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, text string, cut uint16) {
		want := referenceCount(text)
		if got := countsOf(t, strings.NewReader(text), 64<<10); !equalCounts(got, want) {
			t.Fatalf("countText(%q) = %v, reference %v", text, got, want)
		}
		small := 2*lookahead + int(cut)%32
		if got := countsOf(t, strings.NewReader(text), small); !equalCounts(got, want) {
			t.Fatalf("countText(%q) with a %d-byte buffer = %v, reference %v", text, small, got, want)
		}
		if len(text) < 4096 {
			if got := countsOf(t, iotest.OneByteReader(strings.NewReader(text)), small); !equalCounts(got, want) {
				t.Fatalf("countText(%q) one byte at a time = %v, reference %v", text, got, want)
			}
		}
		// Cut after the first ASCII whitespace at or after cut.
		i := int(cut)
		for i < len(text) && !strings.ContainsRune(" \t\n\r\v\f", rune(text[i])) {
			i++
		}
		if i < len(text) {
			c := newCounter()
			c.bufSize = small
			if err := c.countText(strings.NewReader(text[:i+1])); err != nil {
				t.Fatal(err)
			}
			if err := c.countText(strings.NewReader(text[i+1:])); err != nil {
				t.Fatal(err)
			}
			m := map[string]int64{}
			for j, w := range c.words {
				m[w] = c.counts[j]
			}
			if !equalCounts(m, want) {
				t.Fatalf("%q cut after byte %d: %v, whole %v", text, i, m, want)
			}
		}
	})
}

// FuzzMerge feeds arbitrary bytes to the counts.tsv decoder: it must not
// panic, and what it accepts must come back byte for byte from marshal
// (the format has one encoding per set of counts).
func FuzzMerge(f *testing.F) {
	for _, s := range []string{
		"sos.wordcount.counts/1 total=3 words=2\n1\ta\n2\tb\n",
		"sos.wordcount.counts/1 total=0 words=0\n",
		"sos.wordcount.counts/1 total=2 words=2\n1\ta\n1\ta\n",
		"sos.wordcount.counts/1 total=-1 words=1\n-1\ta\n",
		"sos.wordcount.counts/1 total=1 words=1\n1\t\u00e9\n",
		"sos.wordcount.counts/1 total=5 words=2\n3\tdon't\n2\tz\u0301\n",
		"sos.wordcount.counts/1 total=1 words=1\n1\ta", "sos.wordcount.counts/1 total=1 words=1\n1\ta\r\n",
		"", "\n", "{}", "sos.wordcount.counts/1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newCounter()
		if err := c.merge(bytes.NewReader(b)); err != nil {
			return
		}
		if out := c.marshal(); !bytes.Equal(out, b) {
			t.Fatalf("accepted %q, which marshals as %q", b, c.marshal())
		}
	})
}
