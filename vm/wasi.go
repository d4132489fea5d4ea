package vm

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"
)

// Our own deterministic wasi_snapshot_preview1: nothing in it reads the
// host's clock, randomness, environment or filesystem, and it keeps no state
// between calls (stdio flags a Go program sets during init would otherwise
// live on the host side of a snapshot).
const wasiModule = "wasi_snapshot_preview1"

// WASI errno values.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNosys   = 52
)

// snapshotMonoNs is the monotonic clock at the start of _initialize; the
// monotonic clock of every later call resumes where initialization left it.
const snapshotMonoNs = 1_000_000_000

// rng is random_get's stream: SHA-256(seed || counter) blocks, a
// construction stable across Go versions.
type rng struct {
	seed [32]byte
	ctr  uint64
	buf  [32]byte
	off  int
}

func newRNG(seed [32]byte) *rng { return &rng{seed: seed, off: 32} }

func (r *rng) read(p []byte) {
	for len(p) > 0 {
		if r.off == 32 {
			var in [40]byte
			copy(in[:], r.seed[:])
			binary.LittleEndian.PutUint64(in[32:], r.ctr)
			r.ctr++
			r.buf = sha256.Sum256(in[:])
			r.off = 0
		}
		n := copy(p, r.buf[r.off:])
		r.off += n
		p = p[n:]
	}
}

func wasiFuncs() []hostFunc {
	errno := func(e uint32) func(*callState, api.Memory, []uint64) {
		return func(_ *callState, _ api.Memory, st []uint64) { st[0] = uint64(e) }
	}
	fs := []hostFunc{
		{"args_sizes_get", vt(i32, i32), vt(i32), zeroSizes},
		{"environ_sizes_get", vt(i32, i32), vt(i32), zeroSizes},
		{"args_get", vt(i32, i32), vt(i32), errno(errnoSuccess)},
		{"environ_get", vt(i32, i32), vt(i32), errno(errnoSuccess)},
		{"clock_res_get", vt(i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			st[0] = s.wasiU64(m, uint32(st[1]), 1)
		}},
		{"clock_time_get", vt(i32, i64, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			var t int64
			switch uint32(st[0]) {
			case 0: // realtime
				t = s.realBase + s.advance
			case 1, 2, 3: // monotonic, process and thread CPU time
				t = s.monoBase + s.advance
			default:
				st[0] = errnoInval
				return
			}
			st[0] = s.wasiU64(m, uint32(st[2]), uint64(t))
		}},
		{"random_get", vt(i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			n := uint32(st[1])
			s.charge(perKiB(uint64(n), GasRandomPerKiB))
			b := s.view(m, "random_get", uint32(st[0]), n)
			s.rng.read(b)
			st[0] = errnoSuccess
		}},
		{"proc_exit", vt(i32), nil, func(s *callState, _ api.Memory, st []uint64) {
			s.exited, s.exitCode = true, uint32(st[0])
			s.abort(newTrap(ErrTrap, "proc_exit(%d)", uint32(st[0])))
		}},
		{"proc_raise", vt(i32), vt(i32), errno(errnoNosys)},
		{"sched_yield", nil, vt(i32), errno(errnoSuccess)},
		{"poll_oneoff", vt(i32, i32, i32, i32), vt(i32), pollOneoff},
		{"fd_write", vt(i32, i32, i32, i32), vt(i32), fdWrite},
		{"fd_read", vt(i32, i32, i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			if uint32(st[0]) != 0 {
				st[0] = errnoBadf
				return
			}
			st[0] = s.wasiU32(m, uint32(st[3]), 0) // stdin is empty
		}},
		{"fd_close", vt(i32), vt(i32), stdioOnly},
		{"fd_sync", vt(i32), vt(i32), stdioOnly},
		{"fd_datasync", vt(i32), vt(i32), stdioOnly},
		{"fd_fdstat_set_flags", vt(i32, i32), vt(i32), stdioOnly},
		{"fd_fdstat_get", vt(i32, i32), vt(i32), func(s *callState, m api.Memory, st []uint64) {
			if uint32(st[0]) > 2 {
				st[0] = errnoBadf
				return
			}
			// fdstat: filetype u8 (2 = character device), flags u16, rights
			// base u64, rights inheriting u64.
			var b [24]byte
			b[0] = 2
			binary.LittleEndian.PutUint64(b[8:], 0x1fffffff)
			st[0] = s.wasiWrite(m, uint32(st[1]), b[:])
		}},
		{"fd_prestat_get", vt(i32, i32), vt(i32), errno(errnoBadf)},
		{"fd_prestat_dir_name", vt(i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"fd_seek", vt(i32, i64, i32, i32), vt(i32), errno(errnoBadf)},
		{"fd_tell", vt(i32, i32), vt(i32), errno(errnoBadf)},
		{"fd_filestat_get", vt(i32, i32), vt(i32), errno(errnoBadf)},
		{"fd_filestat_set_size", vt(i32, i64), vt(i32), errno(errnoBadf)},
		{"fd_filestat_set_times", vt(i32, i64, i64, i32), vt(i32), errno(errnoBadf)},
		{"fd_fdstat_set_rights", vt(i32, i64, i64), vt(i32), errno(errnoBadf)},
		{"fd_advise", vt(i32, i64, i64, i32), vt(i32), errno(errnoBadf)},
		{"fd_allocate", vt(i32, i64, i64), vt(i32), errno(errnoBadf)},
		{"fd_pread", vt(i32, i32, i32, i64, i32), vt(i32), errno(errnoBadf)},
		{"fd_pwrite", vt(i32, i32, i32, i64, i32), vt(i32), errno(errnoBadf)},
		{"fd_readdir", vt(i32, i32, i32, i64, i32), vt(i32), errno(errnoBadf)},
		{"fd_renumber", vt(i32, i32), vt(i32), errno(errnoBadf)},
		{"path_open", vt(i32, i32, i32, i32, i32, i64, i64, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_create_directory", vt(i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_filestat_get", vt(i32, i32, i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_filestat_set_times", vt(i32, i32, i32, i32, i64, i64, i32), vt(i32), errno(errnoBadf)},
		{"path_link", vt(i32, i32, i32, i32, i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_readlink", vt(i32, i32, i32, i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_remove_directory", vt(i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_rename", vt(i32, i32, i32, i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_symlink", vt(i32, i32, i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"path_unlink_file", vt(i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"sock_accept", vt(i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"sock_recv", vt(i32, i32, i32, i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"sock_send", vt(i32, i32, i32, i32, i32), vt(i32), errno(errnoBadf)},
		{"sock_shutdown", vt(i32, i32), vt(i32), errno(errnoBadf)},
	}
	return fs
}

func zeroSizes(s *callState, m api.Memory, st []uint64) {
	if e := s.wasiU32(m, uint32(st[0]), 0); e != errnoSuccess {
		st[0] = e
		return
	}
	st[0] = s.wasiU32(m, uint32(st[1]), 0)
}

func stdioOnly(_ *callState, _ api.Memory, st []uint64) {
	if uint32(st[0]) > 2 {
		st[0] = errnoBadf
		return
	}
	st[0] = errnoSuccess
}

func (s *callState) wasiU32(m api.Memory, ptr, v uint32) uint64 {
	if !m.WriteUint32Le(ptr, v) {
		return errnoFault
	}
	return errnoSuccess
}

func (s *callState) wasiU64(m api.Memory, ptr uint32, v uint64) uint64 {
	if !m.WriteUint64Le(ptr, v) {
		return errnoFault
	}
	return errnoSuccess
}

func (s *callState) wasiWrite(m api.Memory, ptr uint32, b []byte) uint64 {
	if !m.Write(ptr, b) {
		return errnoFault
	}
	return errnoSuccess
}

// fdWrite sends stdout and stderr to the debug log, charging per byte.
func fdWrite(s *callState, m api.Memory, st []uint64) {
	fd, iovs, n, nwritten := uint32(st[0]), uint32(st[1]), uint32(st[2]), uint32(st[3])
	if fd != 1 && fd != 2 {
		st[0] = errnoBadf
		return
	}
	if n > 1024 {
		st[0] = errnoInval
		return
	}
	var total uint32
	for i := uint32(0); i < n; i++ {
		s.charge(GasIOVec)
		p, ok1 := m.ReadUint32Le(iovs + 8*i)
		l, ok2 := m.ReadUint32Le(iovs + 8*i + 4)
		if !ok1 || !ok2 {
			st[0] = errnoFault
			return
		}
		s.charge(perKiB(uint64(l), GasCopyPerKiB))
		b, ok := m.Read(p, l)
		if !ok {
			st[0] = errnoFault
			return
		}
		s.appendLog(b)
		total += l
	}
	st[0] = s.wasiU32(m, nwritten, total)
}

// pollOneoff answers every subscription at once. A clock subscription
// advances virtual time to its deadline, so time.Sleep returns (and the Go
// scheduler does not spin) without reading the host clock.
func pollOneoff(s *callState, m api.Memory, st []uint64) {
	in, out, n, neventsPtr := uint32(st[0]), uint32(st[1]), uint32(st[2]), uint32(st[3])
	if n == 0 || n > 64 {
		st[0] = errnoInval
		return
	}
	s.charge(uint64(n) * GasPollSubscription)
	sub, ok := m.Read(in, 48*n)
	if !ok {
		st[0] = errnoFault
		return
	}
	sub = append([]byte(nil), sub...) // out may overlap in
	var ev [32]byte
	wait := int64(-1) // the earliest clock deadline, relative
	for i := uint32(0); i < n; i++ {
		b := sub[48*i : 48*i+48]
		clear(ev[:])
		copy(ev[0:8], b[0:8]) // userdata
		tag := b[8]
		ev[10] = tag
		switch tag {
		case 0: // clock
			clockID := binary.LittleEndian.Uint32(b[16:])
			timeout := int64(binary.LittleEndian.Uint64(b[24:]))
			abs := binary.LittleEndian.Uint16(b[40:])&1 != 0
			if timeout < 0 {
				timeout = 0
			}
			if abs {
				now := s.monoBase + s.advance
				if clockID == 0 {
					now = s.realBase + s.advance
				}
				timeout = max(0, timeout-now)
			}
			if wait < 0 || timeout < wait {
				wait = timeout
			}
		case 1, 2: // fd_read, fd_write
			if binary.LittleEndian.Uint32(b[16:]) > 2 {
				binary.LittleEndian.PutUint16(ev[8:], errnoBadf)
			}
		default:
			binary.LittleEndian.PutUint16(ev[8:], errnoInval)
		}
		if !m.Write(out+32*i, ev[:]) {
			st[0] = errnoFault
			return
		}
	}
	if wait > 0 {
		s.advance += min(wait, 1<<50)
	}
	st[0] = s.wasiU32(m, neventsPtr, n)
}
