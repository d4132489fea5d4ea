package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Errors returned (wrapped) by the transport. Match them with errors.Is.
var (
	// ErrUnknownPeer: the peer's ML-DSA key is not a current member (or a
	// dialed address answered with a different member's key).
	ErrUnknownPeer = errors.New("net: unknown peer")
	// ErrBadSignature: the handshake signature does not verify over this
	// session's TLS exporter (forged, replayed or man-in-the-middle).
	ErrBadSignature = errors.New("net: bad handshake signature")
	// ErrGenesisMismatch: the peer runs a chain with another genesis block.
	ErrGenesisMismatch = errors.New("net: genesis mismatch")
	// ErrChainMismatch: the peer runs another chain id.
	ErrChainMismatch = errors.New("net: chain id mismatch")
	// ErrVersion: the peer speaks another protocol version.
	ErrVersion = errors.New("net: protocol version mismatch")
	// ErrNotPostQuantum: TLS negotiated a key exchange other than X25519MLKEM768.
	ErrNotPostQuantum = errors.New("net: key exchange is not post-quantum")
	// ErrBadHandshake: the handshake message is malformed.
	ErrBadHandshake = errors.New("net: malformed handshake")
	// ErrFrameTooLarge: a frame exceeds the limit of its stream kind.
	ErrFrameTooLarge = errors.New("net: frame too large")
	// ErrBadFrame: a frame header has an unknown version or type.
	ErrBadFrame = errors.New("net: bad frame")
	// ErrRemoved: the peer was removed from the members; its connection closed.
	ErrRemoved = errors.New("net: peer removed")
	// ErrDuplicate: a connection to the peer already exists (simultaneous dial).
	ErrDuplicate = errors.New("net: duplicate connection")
	// ErrClosed: the transport is closed.
	ErrClosed = errors.New("net: transport closed")
	// ErrKindNotAllowed: a worker link carries only the kinds
	// AllowedForWorkers.
	ErrKindNotAllowed = errors.New("net: stream kind not allowed on a worker link")
)

// frameVersion is the wire version carried by every frame and stream preamble.
// A node refuses frames of any other version rather than guess at their layout.
const frameVersion = 1

// frameType says what a frame carries.
type frameType byte

const (
	frameHello   frameType = 1 // handshake message, only on the handshake stream
	frameMessage frameType = 2 // an application message, only on data streams
)

// frameHeaderSize is version (1) + type (1) + payload length (4, big endian).
// A fixed-size length (rather than a uvarint) lets the reader learn the size
// with one read and refuse an oversized frame before it allocates anything.
const frameHeaderSize = 6

// appendFrameHeader appends the header of a frame with an n-byte payload.
func appendFrameHeader(dst []byte, typ frameType, n int) []byte {
	dst = append(dst, frameVersion, byte(typ))
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// appendFrame appends a whole frame.
func appendFrame(dst []byte, typ frameType, payload []byte) []byte {
	return append(appendFrameHeader(dst, typ, len(payload)), payload...)
}

// parseFrameHeader checks a header against the expected type and a size limit.
func parseFrameHeader(h []byte, want frameType, limit int) (int, error) {
	if h[0] != frameVersion {
		return 0, fmt.Errorf("%w: version %d, want %d", ErrBadFrame, h[0], frameVersion)
	}
	if frameType(h[1]) != want {
		return 0, fmt.Errorf("%w: type %d, want %d", ErrBadFrame, h[1], want)
	}
	n := binary.BigEndian.Uint32(h[2:])
	if uint64(n) > uint64(limit) {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	return int(n), nil
}

// decodeFrame splits one frame of type want off the front of b. It never
// panics and never allocates: the payload aliases b.
func decodeFrame(b []byte, want frameType, limit int) (payload, rest []byte, err error) {
	if len(b) < frameHeaderSize {
		return nil, b, fmt.Errorf("%w: short header (%d bytes)", ErrBadFrame, len(b))
	}
	n, err := parseFrameHeader(b[:frameHeaderSize], want, limit)
	if err != nil {
		return nil, b, err
	}
	b = b[frameHeaderSize:]
	if len(b) < n {
		return nil, b, fmt.Errorf("%w: payload truncated (%d of %d bytes)", ErrBadFrame, len(b), n)
	}
	return b[:n:n], b[n:], nil
}

// readChunk bounds how much memory a frame may claim before its bytes arrive:
// a peer announcing a large (but allowed) frame and then stalling costs us at
// most this much, not the announced size.
const readChunk = 1 << 20

// readFrame reads one frame of type want from r. The limit is checked before
// any payload memory is allocated.
func readFrame(r io.Reader, want frameType, limit int) ([]byte, error) {
	return readFrameInto(r, want, limit, nil)
}

// readFrameInto is readFrame reading into buf when it is large enough (the
// result then aliases buf), so a stream whose handler does not keep messages
// reuses one buffer instead of allocating, and faulting in, megabytes per
// frame.
func readFrameInto(r io.Reader, want frameType, limit int, buf []byte) ([]byte, error) {
	var h [frameHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n, err := parseFrameHeader(h[:], want, limit)
	if err != nil {
		return nil, err
	}
	if n <= cap(buf) || n <= readChunk {
		p := buf[:0]
		if n > cap(p) {
			p = make([]byte, n)
		}
		p = p[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, unexpectedEOF(err)
		}
		return p, nil
	}
	p := make([]byte, 0, max(readChunk, cap(buf)))
	for len(p) < n {
		k := min(n-len(p), readChunk)
		if cap(p)-len(p) < k {
			// Double (up to the frame size): memory stays within twice what
			// has arrived, and a large frame is copied about once, not over
			// and over as append's gentler growth would.
			q := make([]byte, len(p), min(n, 2*cap(p)))
			copy(q, p)
			p = q
		}
		m, err := io.ReadFull(r, p[len(p):len(p)+k])
		p = p[:len(p)+m]
		if err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	return p, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
