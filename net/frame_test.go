package net

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/quic-go/quic-go"
)

var errUnexpectedEOF = io.ErrUnexpectedEOF

func quicCode(c uint64) quic.StreamErrorCode { return quic.StreamErrorCode(c) }

// bytesAllocated measures heap bytes allocated by f.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestFrameRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte{7}, 3<<20)} {
		wire := appendFrame(nil, frameMessage, payload)
		got, rest, err := decodeFrame(wire, frameMessage, 4<<20)
		if err != nil || len(rest) != 0 || !bytes.Equal(got, payload) {
			t.Fatalf("decodeFrame(%d bytes): %v, rest %d", len(payload), err, len(rest))
		}
		got, err = readFrame(bytes.NewReader(wire), frameMessage, 4<<20)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("readFrame(%d bytes): %v", len(payload), err)
		}
	}
}

func TestFrameRefusals(t *testing.T) {
	good := appendFrame(nil, frameMessage, []byte("abc"))
	tests := []struct {
		name  string
		wire  []byte
		limit int
		want  error
	}{
		{"short header", good[:5], 10, ErrBadFrame},
		{"version", append([]byte{2}, good[1:]...), 10, ErrBadFrame},
		{"type", append([]byte{1, byte(frameHello)}, good[2:]...), 10, ErrBadFrame},
		{"too large", good, 2, ErrFrameTooLarge},
		{"truncated", good[:len(good)-1], 10, ErrBadFrame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeFrame(tc.wire, frameMessage, tc.limit); !errors.Is(err, tc.want) {
				t.Fatalf("decodeFrame: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeFrameDoesNotAllocate(t *testing.T) {
	wire := appendFrame(nil, frameMessage, make([]byte, 1000))
	if n := testing.AllocsPerRun(100, func() { decodeFrame(wire, frameMessage, 4096) }); n != 0 {
		t.Fatalf("decodeFrame allocates %v times", n)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, frameMessage, []byte("hello")), 16)
	f.Add(appendFrame(appendFrame(nil, frameMessage, nil), frameMessage, []byte("two")), 16)
	f.Add(appendFrame(nil, frameHello, []byte("hello")), 16)
	f.Add(appendFrameHeader(nil, frameMessage, 1<<31), 1<<20)
	f.Add([]byte{}, 0)
	f.Add([]byte{1, 2, 0, 0, 0}, 10)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		limit = max(0, limit%(1<<16)) // readFrame allocates up to limit
		payload, rest, err := decodeFrame(data, frameMessage, limit)
		streamed, serr := readFrame(bytes.NewReader(data), frameMessage, limit)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			if serr == nil {
				t.Fatalf("readFrame accepted what decodeFrame refused (%v)", err)
			}
			return
		}
		if len(payload) > limit {
			t.Fatalf("payload %d over limit %d", len(payload), limit)
		}
		if serr != nil || !bytes.Equal(streamed, payload) {
			t.Fatalf("readFrame disagrees: %v", serr)
		}
		consumed := data[:len(data)-len(rest)]
		if again := appendFrame(nil, frameMessage, payload); !bytes.Equal(again, consumed) {
			t.Fatalf("round trip: %x != %x", again, consumed)
		}
	})
}
