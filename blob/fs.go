package blob

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sos-kernel/sos/internal/failpoint"
)

// file is a store file whose writes pass the write boundary: the failpoint
// failpoint.BlobWriteError can fail any of them as a full disk would.
type file struct {
	vfs.File
	name string
}

func injected(name string) error {
	v, ok := failpoint.Eval(failpoint.BlobWriteError)
	if !ok {
		return nil
	}
	errno := syscall.ENOSPC
	if v == "eio" {
		errno = syscall.EIO
	}
	return &fs.PathError{Op: "write", Path: name, Err: errno}
}

func (f *file) write(p []byte) error {
	if err := injected(f.name); err != nil {
		return err
	}
	_, err := f.File.Write(p)
	return err
}

func (f *file) writeAt(p []byte, off uint64) error {
	if err := injected(f.name); err != nil {
		return err
	}
	_, err := f.File.WriteAt(p, int64(off))
	return err
}

// preallocate reserves n bytes of disk for the file (a full disk shows
// here). A filesystem without fallocate is not an error: the writes that
// follow still fail cleanly when the disk fills.
func (f *file) preallocate(n uint64) error {
	if err := injected(f.name); err != nil {
		return err
	}
	if n == 0 {
		return nil // fallocate rejects an empty range
	}
	err := f.File.Preallocate(0, int64(n))
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// ioError wraps a filesystem error of operation op; a full disk or quota
// is also ErrFull.
func ioError(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("blob: %s: %w (disk): %w", op, ErrFull, err)
	}
	return fmt.Errorf("blob: %s: %w", op, err)
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The outboard file starts with a 32-byte header:
//
//	"sos-obao" | size u64 | stored unix ns i64 | group log u8 | 0 0 0 | CRC-32C of bytes 0..28
//
// followed by the parent pairs in post-order (see doc.go).
const (
	outMagic = "sos-obao"
	groupLog = 4 // GroupSize = SegmentSize << groupLog
)

func encodeOutHeader(size uint64, stored int64) []byte {
	h := make([]byte, outHdrSize)
	copy(h, outMagic)
	binary.LittleEndian.PutUint64(h[8:], size)
	binary.LittleEndian.PutUint64(h[16:], uint64(stored))
	h[24] = groupLog
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return h
}

func decodeOutHeader(h []byte) (size uint64, stored int64, err error) {
	if len(h) != outHdrSize || string(h[:8]) != outMagic || h[24] != groupLog || h[25]|h[26]|h[27] != 0 ||
		binary.LittleEndian.Uint32(h[28:]) != crc32.Checksum(h[:28], castagnoli) {
		return 0, 0, fmt.Errorf("blob: bad outboard header: %w", ErrCorrupt)
	}
	return binary.LittleEndian.Uint64(h[8:]), int64(binary.LittleEndian.Uint64(h[16:])), nil
}

// The bitmap file of a partial blob:
//
//	"sos-have" | size u64 | chunk size u32 | 0 u32 | one bit per chunk (LSB first) | CRC-32C of all before
const haveMagic = "sos-have"

func encodeHave(size uint64, have []uint64, chunks uint64) []byte {
	nb := ceilDiv(chunks, 8)
	b := make([]byte, 24+nb+4)
	copy(b, haveMagic)
	binary.LittleEndian.PutUint64(b[8:], size)
	binary.LittleEndian.PutUint32(b[16:], ChunkSize)
	for k := uint64(0); k < chunks; k++ {
		if have[k/64]&(1<<(k%64)) != 0 {
			b[24+k/8] |= 1 << (k % 8)
		}
	}
	binary.LittleEndian.PutUint32(b[24+nb:], crc32.Checksum(b[:24+nb], castagnoli))
	return b
}

func decodeHave(b []byte) (size uint64, have []uint64, err error) {
	bad := fmt.Errorf("blob: bad partial bitmap: %w", ErrCorrupt)
	if len(b) < 28 || string(b[:8]) != haveMagic || binary.LittleEndian.Uint32(b[16:]) != ChunkSize ||
		binary.LittleEndian.Uint32(b[20:]) != 0 {
		return 0, nil, bad
	}
	size = binary.LittleEndian.Uint64(b[8:])
	if size > MaxSize {
		return 0, nil, bad
	}
	chunks := ChunkCount(size)
	nb := ceilDiv(chunks, 8)
	if uint64(len(b)) != 24+nb+4 || binary.LittleEndian.Uint32(b[24+nb:]) != crc32.Checksum(b[:24+nb], castagnoli) {
		return 0, nil, bad
	}
	have = make([]uint64, ceilDiv(chunks, 64))
	for k := uint64(0); k < chunks; k++ {
		if b[24+k/8]&(1<<(k%8)) != 0 {
			have[k/64] |= 1 << (k % 64)
		}
	}
	if nb*8 > chunks && b[24+nb-1]>>(chunks%8) != 0 {
		return 0, nil, bad // bits past the last chunk: not what we write
	}
	return size, have, nil
}
