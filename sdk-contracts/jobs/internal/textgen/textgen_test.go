package textgen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestGenerateGolden pins the output: benchmarks and recorded figures are
// only comparable while it stays the same.
func TestGenerateGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Generate(&b, 1, 1<<20); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 1<<20 {
		t.Fatalf("wrote %d bytes, want %d", b.Len(), 1<<20)
	}
	sum := sha256.Sum256(b.Bytes())
	const want = "15058a6cc9e2881d5df35b00b9c33817c572a28a751831226b59bc47ecece846"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("sha256 %s, want %s; first lines:\n%s", got, want, b.String()[:400])
	}
}

func TestGenerateShape(t *testing.T) {
	var a, b, c bytes.Buffer
	for _, x := range []struct {
		buf  *bytes.Buffer
		seed uint64
	}{{&a, 7}, {&b, 7}, {&c, 8}} {
		if err := Generate(x.buf, x.seed, 200_000); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("same seed, different text")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("different seeds, same text")
	}
	s := a.String()
	for _, want := range []string{"\n\n", ". ", "'s", "é"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in the text", want)
		}
	}
	for i, line := range strings.Split(s, "\n") {
		if utf8.RuneCountInString(line) > 80 {
			t.Fatalf("line %d has %d runes", i, utf8.RuneCountInString(line))
		}
	}
}
