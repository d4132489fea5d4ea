package blob

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"lukechampine.com/blake3/bao"
)

func TestSegmentCount(t *testing.T) {
	for _, c := range []struct{ size, segs, chunks uint64 }{
		{0, 0, 1}, {1, 1, 1}, {1023, 1, 1}, {1024, 1, 1}, {1025, 2, 1},
		{ChunkSize, 1024, 1}, {ChunkSize + 1, 1025, 2}, {1 << 30, 1 << 20, 1 << 10},
	} {
		if got := SegmentCount(c.size); got != c.segs {
			t.Errorf("SegmentCount(%d) = %d, want %d", c.size, got, c.segs)
		}
		if got := ChunkCount(c.size); got != c.chunks {
			t.Errorf("ChunkCount(%d) = %d, want %d", c.size, got, c.chunks)
		}
	}
}

// TestProofSize: a proof for a 1 GiB blob is 2,312 bytes (≤ 4 KiB), and
// stays under 4 KiB up to MaxSize.
func TestProofSize(t *testing.T) {
	n, err := ProofLen(1<<30, 12345)
	if err != nil || n != 8+20*64+1024 {
		t.Fatalf("ProofLen(1 GiB) = %d, %v; want 2312", n, err)
	}
	if n, _ := ProofLen(MaxSize, 0); n > 4096 {
		t.Fatalf("ProofLen(MaxSize) = %d", n)
	}
	if _, err := ProofLen(0, 0); !isRange(err) {
		t.Fatalf("ProofLen of the empty blob: %v", err)
	}
}

// TestProofRoundTrip proves the first, last and some middle segments of
// blobs of every edge size; each proof verifies, has ProofLen bytes and is
// the Bao library's slice encoding of that segment.
func TestProofRoundTrip(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	for i, n := range sizes[1:] {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := content(n, uint64(i)+50)
			size := uint64(n)
			id := put(t, s, data)
			combined, _ := bao.EncodeBuf(data, 0, false)
			segs := SegmentCount(size)
			for _, seg := range []uint64{0, segs / 3, segs / 2, segs - 2, segs - 1} {
				if seg >= segs {
					continue
				}
				p, err := s.Prove(id, seg)
				must(t, err)
				if err := VerifyProof(id, size, seg, p); err != nil {
					t.Fatalf("segment %d: %v", seg, err)
				}
				if l, _ := ProofLen(size, seg); l != len(p) {
					t.Fatalf("segment %d: %d bytes, ProofLen %d", seg, len(p), l)
				}
				off := seg * SegmentSize
				var want bytes.Buffer
				must(t, bao.ExtractSlice(&want, bytes.NewReader(combined), nil, 0, off, min(off+SegmentSize, size)-off))
				if !bytes.Equal(p, want.Bytes()) {
					t.Fatalf("segment %d: proof differs from bao's slice", seg)
				}
			}
			_, err := s.Prove(id, segs)
			wantErr(t, err, ErrRange)
		})
	}
	empty := put(t, s, nil)
	_, err := s.Prove(empty, 0)
	wantErr(t, err, ErrRange)
}

// TestProofRejects: a proof of a wrong segment, for a wrong blob, with a
// tampered byte anywhere, or a wrong path does not verify.
func TestProofRejects(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	data := content(5*ChunkSize+3*GroupSize+700, 60)
	size := uint64(len(data))
	id := put(t, s, data)
	otherData := content(len(data), 61)
	other := put(t, s, otherData)
	const seg = 3000
	p, err := s.Prove(id, seg)
	must(t, err)
	must(t, VerifyProof(id, size, seg, p))
	neighbour, err := s.Prove(id, seg+1)
	must(t, err)
	foreign, err := s.Prove(other, seg)
	must(t, err)
	depth := (len(p) - lenPrefix - SegmentSize) / pairSize

	type tc struct {
		name string
		id   ID
		size uint64
		seg  uint64
		p    []byte
		want error
	}
	cases := []tc{
		{"another segment's proof", id, size, seg, neighbour, ErrCorrupt},
		{"claimed for another segment", id, size, seg + 1, p, ErrCorrupt},
		{"another blob's proof", id, size, seg, foreign, ErrCorrupt},
		{"claimed for another blob", other, size, seg, p, ErrCorrupt},
		{"another size", id, size + SegmentSize, seg, p, ErrCorrupt},
		{"truncated", id, size, seg, p[:len(p)-1], ErrCorrupt},
		{"extended", id, size, seg, append(bytes.Clone(p), 0), ErrCorrupt},
		{"empty", id, size, seg, nil, ErrCorrupt},
		{"segment past the end", id, size, SegmentCount(size), p, ErrRange},
		{"size over MaxSize", id, MaxSize + 1, seg, p, ErrRange},
	}
	// Every single byte flipped: the length prefix, each pair, the segment.
	for i := 0; i < len(p); i += max(1, len(p)/300) {
		b := bytes.Clone(p)
		b[i] ^= 0x80
		cases = append(cases, tc{fmt.Sprintf("byte %d flipped", i), id, size, seg, b, ErrCorrupt})
	}
	// Wrong paths: two pairs swapped, a pair's halves swapped, a pair of
	// the neighbour's path spliced in where the paths differ.
	swapped := bytes.Clone(p)
	copy(swapped[lenPrefix:], p[lenPrefix+pairSize:lenPrefix+2*pairSize])
	copy(swapped[lenPrefix+pairSize:], p[lenPrefix:lenPrefix+pairSize])
	cases = append(cases, tc{"pairs swapped", id, size, seg, swapped, ErrCorrupt})
	halves := bytes.Clone(p)
	last := lenPrefix + (depth-1)*pairSize
	copy(halves[last:], p[last+cvSize:last+pairSize])
	copy(halves[last+cvSize:], p[last:last+cvSize])
	cases = append(cases, tc{"halves swapped", id, size, seg, halves, ErrCorrupt})
	spliced := bytes.Clone(p)
	copy(spliced[last:last+pairSize], neighbour[last:last+pairSize])
	if !bytes.Equal(spliced, p) {
		cases = append(cases, tc{"neighbour's deepest pair", id, size, seg, spliced, ErrCorrupt})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, VerifyProof(c.id, c.size, c.seg, c.p), c.want)
		})
	}
}
