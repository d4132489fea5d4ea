package vm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The jobs' wasi_snapshot_preview1: a deterministic WASI for command
// modules. Like the contracts' (wasi.go) it reads nothing of the host:
// args and environment come from the JobSpec, the clocks start at
// JobSpec.TimeMs and advance only by poll_oneoff, random_get is the
// contracts' SHA-256 stream seeded with JobSpec.Seed, and the files are
// jobfs.go's. Every function charges GasHostBase, then GasPerByte per byte
// it copies between the job and the host and the GasJob* costs of
// limits.go; bad pointers fail with EFAULT, not a trap.

// WASI errno values beyond wasi.go's.
const (
	errnoBusy        = 10
	errnoDquot       = 19
	errnoExist       = 20
	errnoIlseq       = 25
	errnoIsdir       = 31
	errnoMfile       = 33
	errnoNametoolong = 37
	errnoNoent       = 44
	errnoNospc       = 51
	errnoNotdir      = 54
	errnoNotempty    = 55
	errnoNotsock     = 57
	errnoNotsup      = 58
	errnoRofs        = 69
	errnoSpipe       = 70
	errnoXdev        = 75
	errnoNotcapable  = 76
)

// maxIovecs bounds the iovecs of one call (IOV_MAX).
const maxIovecs = 1024

// errJobExit unwinds the guest after proc_exit; it is not an outcome.
var errJobExit = errors.New("vm: job exited")

type jobFunc struct {
	name            string
	params, results []api.ValueType
	fn              func(s *jobState, m api.Memory, st []uint64)
}

// jobGuestFunc adapts a jobFunc to wazero: every call checks for
// cancellation and pays GasHostBase.
func jobGuestFunc(f jobFunc) api.GoModuleFunc {
	fn, name := f.fn, f.name
	return func(ctx context.Context, mod api.Module, st []uint64) {
		s := ctx.Value(jobStateKey{}).(*jobState)
		// A panic that is not a trap is a bug of the host: the run has no
		// outcome, rather than a wrong one.
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(*trap); !ok {
					s.fail(fmt.Errorf("vm: job host function %s: %v", name, r))
				}
				panic(r)
			}
		}()
		select {
		case <-s.done:
			s.fail(fmt.Errorf("vm: job: %w", context.Cause(s.ctx)))
		default:
		}
		s.charge(GasHostBase)
		fn(s, mod.Memory(), st)
	}
}

func instantiateJobHost(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(wasiModule)
	for _, f := range jobWasiFuncs() {
		b.NewFunctionBuilder().WithGoModuleFunction(jobGuestFunc(f), f.params, f.results).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// jobHostSignatures maps "module.name" to the functions a job may import.
func jobHostSignatures() map[string]jobFunc {
	sigs := map[string]jobFunc{}
	for _, f := range jobWasiFuncs() {
		sigs[wasiModule+"."+f.name] = f
	}
	return sigs
}

func jobWasiFuncs() []jobFunc {
	fdOnly := func(f func(s *jobState, fd *jobFD) uint16) func(*jobState, api.Memory, []uint64) {
		return func(s *jobState, _ api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			if e == errnoSuccess {
				e = f(s, fd)
			}
			st[0] = uint64(e)
		}
	}
	notSocket := func(s *jobState, _ api.Memory, st []uint64) {
		if _, e := s.fs.fd(uint32(st[0])); e != errnoSuccess {
			st[0] = uint64(e)
			return
		}
		st[0] = errnoNotsock
	}
	return []jobFunc{
		{"args_sizes_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(sizesGet(m, uint32(st[0]), uint32(st[1]), s.argv))
		}},
		{"args_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.stringsGet(m, uint32(st[0]), uint32(st[1]), s.argv))
		}},
		{"environ_sizes_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(sizesGet(m, uint32(st[0]), uint32(st[1]), s.env))
		}},
		{"environ_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.stringsGet(m, uint32(st[0]), uint32(st[1]), s.env))
		}},
		{"clock_res_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			if uint32(st[0]) > 3 {
				st[0] = errnoInval
				return
			}
			st[0] = uint64(putU64(m, uint32(st[1]), 1))
		}},
		{"clock_time_get", vt(i32, i64, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			t, ok := s.clock(uint32(st[0]))
			if !ok {
				st[0] = errnoInval
				return
			}
			st[0] = uint64(putU64(m, uint32(st[2]), uint64(t)))
		}},
		{"random_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			n := uint32(st[1])
			s.charge(uint64(n) * GasPerByte)
			b, ok := m.Read(uint32(st[0]), n)
			if !ok {
				st[0] = errnoFault
				return
			}
			s.rng.read(b)
			st[0] = errnoSuccess
		}},
		{"proc_exit", vt(i32), nil, func(s *jobState, _ api.Memory, st []uint64) {
			s.exited, s.exitCode = true, uint32(st[0])
			panic(&trap{err: errJobExit})
		}},
		{"proc_raise", vt(i32), vt(i32), func(_ *jobState, _ api.Memory, st []uint64) { st[0] = errnoNosys }},
		{"sched_yield", nil, vt(i32), func(_ *jobState, _ api.Memory, st []uint64) { st[0] = errnoSuccess }},
		{"poll_oneoff", vt(i32, i32, i32, i32), vt(i32), jobPollOneoff},

		{"fd_advise", vt(i32, i64, i64, i32), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case uint32(st[3]) > 5 || int64(st[1]) < 0 || int64(st[2]) < 0:
				e = errnoInval
			case fd.kind != fdFile && fd.kind != fdDir:
				e = errnoSpipe
			}
			st[0] = uint64(e)
		}},
		{"fd_allocate", vt(i32, i64, i64), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			off, n := int64(st[1]), int64(st[2])
			switch {
			case e != errnoSuccess:
			case fd.kind != fdFile || !fd.write:
				e = errnoBadf
			case off < 0 || n <= 0 || off > 1<<61 || n > 1<<61:
				e = errnoInval
			case off+n > fd.node.size():
				e = s.fs.setSize(fd.node, off+n)
			}
			st[0] = uint64(e)
		}},
		{"fd_close", vt(i32), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			_, e := s.fs.fd(uint32(st[0]))
			if e == errnoSuccess {
				s.fs.close(uint32(st[0]))
			}
			st[0] = uint64(e)
		}},
		{"fd_datasync", vt(i32), vt(i32), fdOnly(func(*jobState, *jobFD) uint16 { return errnoSuccess })},
		{"fd_sync", vt(i32), vt(i32), fdOnly(func(*jobState, *jobFD) uint16 { return errnoSuccess })},
		{"fd_fdstat_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			if e != errnoSuccess {
				st[0] = uint64(e)
				return
			}
			var b [24]byte
			b[0] = fd.filetype()
			binary.LittleEndian.PutUint16(b[2:], fd.flags)
			binary.LittleEndian.PutUint64(b[8:], fd.rights)
			binary.LittleEndian.PutUint64(b[16:], fd.inherit)
			st[0] = uint64(s.put(m, uint32(st[1]), b[:]))
		}},
		{"fd_fdstat_set_flags", vt(i32, i32), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case uint32(st[1])&^fdflagsAll != 0:
				e = errnoInval
			default:
				fd.flags = uint16(st[1])
			}
			st[0] = uint64(e)
		}},
		{"fd_fdstat_set_rights", vt(i32, i64, i64), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case st[1]&^fd.rights != 0 || st[2]&^fd.inherit != 0:
				e = errnoNotcapable // rights can only be dropped
			default:
				fd.rights, fd.inherit = st[1], st[2]
				fd.write = fd.write && fd.rights&rightFdWrite != 0
			}
			st[0] = uint64(e)
		}},
		{"fd_filestat_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			if e != errnoSuccess {
				st[0] = uint64(e)
				return
			}
			var b [64]byte
			if fd.kind == fdDir || fd.kind == fdFile {
				s.filestat(b[:], fd.node)
			} else {
				b[16] = filetypeCharDevice
				binary.LittleEndian.PutUint64(b[24:], 1)
			}
			st[0] = uint64(s.put(m, uint32(st[1]), b[:]))
		}},
		{"fd_filestat_set_size", vt(i32, i64), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			size := int64(st[1])
			switch {
			case e != errnoSuccess:
			case fd.kind == fdDir:
				e = errnoIsdir
			case fd.kind != fdFile:
				e = errnoInval
			case !fd.write:
				e = errnoBadf
			case size < 0 || size > 1<<62:
				e = errnoInval
			default:
				e = s.fs.setSize(fd.node, size)
			}
			st[0] = uint64(e)
		}},
		{"fd_filestat_set_times", vt(i32, i64, i64, i32), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case fd.kind == fdFile || fd.kind == fdDir:
				e = s.setTimes(fd.node, int64(st[1]), int64(st[2]), uint32(st[3]))
			}
			st[0] = uint64(e)
		}},
		{"fd_pread", vt(i32, i32, i32, i64, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			off := int64(st[3])
			switch {
			case e != errnoSuccess:
			case fd.kind == fdDir:
				e = errnoIsdir
			case fd.kind != fdFile:
				e = errnoSpipe
			case !fd.read:
				e = errnoBadf
			case off < 0:
				e = errnoInval
			default:
				var n uint32
				n, e = s.readv(m, fd.node, uint32(st[1]), uint32(st[2]), off)
				if e == errnoSuccess {
					e = putU32(m, uint32(st[4]), n)
				}
			}
			st[0] = uint64(e)
		}},
		{"fd_read", vt(i32, i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case fd.kind == fdDir:
				e = errnoIsdir
			case fd.kind != fdFile && fd.kind != fdStdin || !fd.read:
				e = errnoBadf
			default:
				var n uint32
				n, e = s.readv(m, fd.node, uint32(st[1]), uint32(st[2]), fd.pos)
				if e == errnoSuccess {
					fd.pos += int64(n)
					e = putU32(m, uint32(st[3]), n)
				}
			}
			st[0] = uint64(e)
		}},
		{"fd_pwrite", vt(i32, i32, i32, i64, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			off := int64(st[3])
			switch {
			case e != errnoSuccess:
			case fd.kind == fdStdout || fd.kind == fdStderr || fd.kind == fdStdin:
				e = errnoSpipe
			case fd.kind != fdFile || !fd.write:
				e = errnoBadf
			case off < 0:
				e = errnoInval
			default:
				var n uint32
				n, e = s.writev(m, fd, uint32(st[1]), uint32(st[2]), off)
				if e == errnoSuccess {
					e = putU32(m, uint32(st[4]), n)
				}
			}
			st[0] = uint64(e)
		}},
		{"fd_write", vt(i32, i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case fd.kind == fdStdout || fd.kind == fdStderr:
				var n uint32
				n, e = s.writev(m, fd, uint32(st[1]), uint32(st[2]), 0)
				if e == errnoSuccess {
					e = putU32(m, uint32(st[3]), n)
				}
			case fd.kind != fdFile || !fd.write:
				e = errnoBadf
			default:
				off := fd.pos
				if fd.flags&fdflagAppend != 0 {
					off = fd.node.size()
				}
				var n uint32
				n, e = s.writev(m, fd, uint32(st[1]), uint32(st[2]), off)
				if e == errnoSuccess {
					fd.pos = off + int64(n)
					e = putU32(m, uint32(st[3]), n)
				}
			}
			st[0] = uint64(e)
		}},
		{"fd_prestat_get", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case fd.preopen == "":
				e = errnoBadf
			default:
				var b [8]byte // tag 0 (directory), name length
				binary.LittleEndian.PutUint32(b[4:], uint32(len(fd.preopen)))
				e = s.put(m, uint32(st[1]), b[:])
			}
			st[0] = uint64(e)
		}},
		{"fd_prestat_dir_name", vt(i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case fd.preopen == "":
				e = errnoBadf
			case uint32(st[2]) < uint32(len(fd.preopen)):
				e = errnoNametoolong
			default:
				e = s.copyOut(m, uint32(st[1]), []byte(fd.preopen))
			}
			st[0] = uint64(e)
		}},
		{"fd_readdir", vt(i32, i32, i32, i64, i32), vt(i32), jobReaddir},
		{"fd_renumber", vt(i32, i32), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			from, to := uint32(st[0]), uint32(st[1])
			_, e := s.fs.fd(from)
			if e == errnoSuccess {
				_, e = s.fs.fd(to)
			}
			if e == errnoSuccess {
				s.fs.renumber(from, to)
			}
			st[0] = uint64(e)
		}},
		{"fd_seek", vt(i32, i64, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			off, whence := int64(st[1]), uint32(st[2])
			var pos int64
			switch {
			case e != errnoSuccess:
			case whence > 2:
				e = errnoInval
			case fd.kind == fdDir:
				if off != 0 || whence != 0 {
					e = errnoInval
				}
			case fd.kind != fdFile:
				e = errnoSpipe
			default:
				switch whence {
				case 0:
					pos = off
				case 1:
					pos = fd.pos + off
				case 2:
					pos = fd.node.size() + off
				}
				if pos < 0 {
					e = errnoInval
				} else {
					fd.pos = pos
				}
			}
			if e == errnoSuccess {
				e = putU64(m, uint32(st[3]), uint64(pos))
			}
			st[0] = uint64(e)
		}},
		{"fd_tell", vt(i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fd, e := s.fs.fd(uint32(st[0]))
			switch {
			case e != errnoSuccess:
			case fd.kind == fdDir:
				e = putU64(m, uint32(st[1]), 0)
			case fd.kind != fdFile:
				e = errnoSpipe
			default:
				e = putU64(m, uint32(st[1]), uint64(fd.pos))
			}
			st[0] = uint64(e)
		}},

		{"path_create_directory", vt(i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.withPath(m, uint32(st[0]), uint32(st[1]), uint32(st[2]), s.fs.mkdir))
		}},
		{"path_filestat_get", vt(i32, i32, i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			var b [64]byte
			e := s.withPath(m, uint32(st[0]), uint32(st[2]), uint32(st[3]), func(dir *fsNode, path []byte) uint16 {
				r, e := s.fs.resolve(dir, path)
				switch {
				case e != errnoSuccess:
					return e
				case r.node == nil:
					return errnoNoent
				case r.slash && !r.node.dir:
					return errnoNotdir
				}
				s.filestat(b[:], r.node)
				return errnoSuccess
			})
			if e == errnoSuccess {
				e = s.put(m, uint32(st[4]), b[:])
			}
			st[0] = uint64(e)
		}},
		{"path_filestat_set_times", vt(i32, i32, i32, i32, i64, i64, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.withPath(m, uint32(st[0]), uint32(st[2]), uint32(st[3]), func(dir *fsNode, path []byte) uint16 {
				r, e := s.fs.resolve(dir, path)
				switch {
				case e != errnoSuccess:
					return e
				case r.node == nil:
					return errnoNoent
				}
				return s.setTimes(r.node, int64(st[4]), int64(st[5]), uint32(st[6]))
			}))
		}},
		{"path_link", vt(i32, i32, i32, i32, i32, i32, i32), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			_, e := s.fs.dirFD(uint32(st[0]))
			if e == errnoSuccess {
				_, e = s.fs.dirFD(uint32(st[4]))
			}
			if e == errnoSuccess {
				e = errnoNotsup // no hard links
			}
			st[0] = uint64(e)
		}},
		{"path_open", vt(i32, i32, i32, i32, i32, i64, i64, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			fdPtr := uint32(st[8])
			if _, ok := m.ReadUint32Le(fdPtr); !ok {
				st[0] = errnoFault
				return
			}
			var fd uint32
			e := s.withPath(m, uint32(st[0]), uint32(st[2]), uint32(st[3]), func(dir *fsNode, path []byte) uint16 {
				var e uint16
				fd, e = s.fs.openPath(dir, path, uint32(st[4]), st[5], st[6], uint32(st[7]))
				return e
			})
			if e == errnoSuccess {
				e = putU32(m, fdPtr, fd)
			}
			st[0] = uint64(e)
		}},
		{"path_readlink", vt(i32, i32, i32, i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.withPath(m, uint32(st[0]), uint32(st[1]), uint32(st[2]), func(dir *fsNode, path []byte) uint16 {
				r, e := s.fs.resolve(dir, path)
				switch {
				case e != errnoSuccess:
					return e
				case r.node == nil:
					return errnoNoent
				}
				return errnoInval // not a symbolic link: there are none
			}))
		}},
		{"path_remove_directory", vt(i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.withPath(m, uint32(st[0]), uint32(st[1]), uint32(st[2]), s.fs.rmdir))
		}},
		{"path_rename", vt(i32, i32, i32, i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.withPath(m, uint32(st[0]), uint32(st[1]), uint32(st[2]), func(oldDir *fsNode, oldPath []byte) uint16 {
				return s.withPath(m, uint32(st[3]), uint32(st[4]), uint32(st[5]), func(newDir *fsNode, newPath []byte) uint16 {
					return s.fs.rename(oldDir, oldPath, newDir, newPath)
				})
			}))
		}},
		{"path_symlink", vt(i32, i32, i32, i32, i32), vt(i32), func(s *jobState, _ api.Memory, st []uint64) {
			_, e := s.fs.dirFD(uint32(st[2]))
			if e == errnoSuccess {
				e = errnoNotsup // no symbolic links
			}
			st[0] = uint64(e)
		}},
		{"path_unlink_file", vt(i32, i32, i32), vt(i32), func(s *jobState, m api.Memory, st []uint64) {
			st[0] = uint64(s.withPath(m, uint32(st[0]), uint32(st[1]), uint32(st[2]), s.fs.unlinkFile))
		}},

		{"sock_accept", vt(i32, i32, i32), vt(i32), notSocket},
		{"sock_recv", vt(i32, i32, i32, i32, i32, i32), vt(i32), notSocket},
		{"sock_send", vt(i32, i32, i32, i32, i32), vt(i32), notSocket},
		{"sock_shutdown", vt(i32, i32), vt(i32), notSocket},
	}
}

func (f *jobFD) filetype() byte {
	switch f.kind {
	case fdDir:
		return filetypeDirectory
	case fdFile:
		return filetypeRegular
	}
	return filetypeCharDevice
}

// clock returns the virtual time of a clock.
func (s *jobState) clock(id uint32) (int64, bool) {
	switch id {
	case 0: // realtime
		return s.realBase + s.advance, true
	case 1, 2, 3: // monotonic, process and thread CPU time
		return s.monoBase + s.advance, true
	}
	return 0, false
}

// filestat fills a 64-byte WASI filestat.
func (s *jobState) filestat(b []byte, n *fsNode) {
	binary.LittleEndian.PutUint64(b[0:], 1) // dev
	binary.LittleEndian.PutUint64(b[8:], n.ino)
	b[16] = filetypeRegular
	size := uint64(n.size())
	if n.dir {
		b[16] = filetypeDirectory
		size = 0
	}
	binary.LittleEndian.PutUint64(b[24:], 1) // nlink
	binary.LittleEndian.PutUint64(b[32:], size)
	binary.LittleEndian.PutUint64(b[40:], uint64(n.atim))
	binary.LittleEndian.PutUint64(b[48:], uint64(n.mtim))
	binary.LittleEndian.PutUint64(b[56:], uint64(n.mtim))
}

// setTimes implements the fstflags of fd/path_filestat_set_times.
func (s *jobState) setTimes(n *fsNode, atim, mtim int64, flags uint32) uint16 {
	const atimSet, atimNow, mtimSet, mtimNow = 1, 2, 4, 8
	switch {
	case flags&^15 != 0 || flags&(atimSet|atimNow) == atimSet|atimNow || flags&(mtimSet|mtimNow) == mtimSet|mtimNow:
		return errnoInval
	case !n.out:
		return errnoRofs
	}
	now := s.fs.now()
	if flags&atimSet != 0 {
		n.atim = atim
	} else if flags&atimNow != 0 {
		n.atim = now
	}
	if flags&mtimSet != 0 {
		n.mtim = mtim
	} else if flags&mtimNow != 0 {
		n.mtim = now
	}
	return errnoSuccess
}

// withPath reads a path argument (charging its bytes) and runs f with the
// directory it is relative to.
func (s *jobState) withPath(m api.Memory, dirFd, ptr, n uint32, f func(dir *fsNode, path []byte) uint16) uint16 {
	dir, e := s.fs.dirFD(dirFd)
	if e != errnoSuccess {
		return e
	}
	if n > maxPathBytes {
		return errnoNametoolong
	}
	s.charge(uint64(n) * GasPerByte)
	path, ok := m.Read(ptr, n)
	if !ok {
		return errnoFault
	}
	return f(dir, path)
}

// iovecs reads and bounds-checks n iovecs at ptr, charging GasJobIovec
// each.
func (s *jobState) iovecs(m api.Memory, ptr, n uint32) ([][]byte, uint16) {
	if n > maxIovecs {
		return nil, errnoInval
	}
	s.charge(uint64(n) * GasJobIovec)
	vs := make([][]byte, 0, n)
	var total uint64
	for i := uint32(0); i < n; i++ {
		p, ok1 := m.ReadUint32Le(ptr + 8*i)
		l, ok2 := m.ReadUint32Le(ptr + 8*i + 4)
		if !ok1 || !ok2 {
			return nil, errnoFault
		}
		b, ok := m.Read(p, l)
		if !ok {
			return nil, errnoFault
		}
		if total += uint64(l); total > 1<<31-1 {
			return nil, errnoInval
		}
		vs = append(vs, b)
	}
	return vs, errnoSuccess
}

// readv reads a file or stdin from off into the iovecs at ptr.
func (s *jobState) readv(m api.Memory, n *fsNode, ptr, count uint32, off int64) (uint32, uint16) {
	vs, e := s.iovecs(m, ptr, count)
	if e != errnoSuccess {
		return 0, e
	}
	var total uint32
	for _, v := range vs {
		want := min(int64(len(v)), max(n.size()-off, 0))
		s.charge(uint64(want) * GasPerByte)
		k := s.fs.readAt(n, v, off)
		total += uint32(k)
		off += int64(k)
		if k < len(v) {
			break
		}
	}
	return total, errnoSuccess
}

// writev writes the iovecs at ptr to stdout, stderr or an /out file at off.
func (s *jobState) writev(m api.Memory, fd *jobFD, ptr, count uint32, off int64) (uint32, uint16) {
	vs, e := s.iovecs(m, ptr, count)
	if e != errnoSuccess {
		return 0, e
	}
	var total uint32
	for _, v := range vs {
		s.charge(uint64(len(v)) * GasPerByte)
		switch fd.kind {
		case fdStdout:
			s.stdout.write(v)
		case fdStderr:
			s.stderr.write(v)
		default:
			k, e := s.fs.writeAt(fd.node, v, off)
			if e != errnoSuccess {
				if total > 0 {
					return total, errnoSuccess
				}
				return 0, e
			}
			off += int64(k)
			if k < len(v) {
				return total + uint32(k), errnoSuccess
			}
		}
		total += uint32(len(v))
	}
	return total, errnoSuccess
}

// jobReaddir implements fd_readdir: dirents (24 bytes and the name) of the
// sorted listing from the cookie (an index) on, the last one truncated
// when the buffer ends inside it, as WASI specifies.
func jobReaddir(s *jobState, m api.Memory, st []uint64) {
	fd, e := s.fs.fd(uint32(st[0]))
	switch {
	case e != errnoSuccess:
	case fd.kind != fdDir:
		e = errnoNotdir
	}
	if e != errnoSuccess {
		st[0] = uint64(e)
		return
	}
	bufPtr, bufLen, cookie, usedPtr := uint32(st[1]), uint32(st[2]), st[3], uint32(st[4])
	names := s.fs.list(fd)
	var out []byte
	for i := cookie; i < uint64(len(names)) && uint32(len(out)) < bufLen; i++ {
		name := names[i]
		c := fd.node.children[name]
		var d [24]byte
		binary.LittleEndian.PutUint64(d[0:], i+1)
		binary.LittleEndian.PutUint64(d[8:], c.ino)
		binary.LittleEndian.PutUint32(d[16:], uint32(len(name)))
		d[20] = filetypeRegular
		if c.dir {
			d[20] = filetypeDirectory
		}
		s.charge(GasJobEntry)
		out = append(append(out, d[:]...), name...)
	}
	if uint32(len(out)) > bufLen {
		out = out[:bufLen]
	}
	if e := s.copyOut(m, bufPtr, out); e != errnoSuccess {
		st[0] = uint64(e)
		return
	}
	st[0] = uint64(putU32(m, usedPtr, uint32(len(out))))
}

// jobPollOneoff implements poll_oneoff without blocking: every descriptor
// is always ready (reads never wait, writes never block), so when any
// fd_read or fd_write subscription is given, those events are returned
// and no time passes; otherwise the virtual clocks advance to the earliest
// clock subscription's deadline, and every clock subscription due by then
// fires.
func jobPollOneoff(s *jobState, m api.Memory, st []uint64) {
	in, out, n, neventsPtr := uint32(st[0]), uint32(st[1]), uint32(st[2]), uint32(st[3])
	if n == 0 || n > MaxJobPollSubscriptions {
		st[0] = errnoInval
		return
	}
	s.charge(uint64(n) * (GasJobEntry + 48*GasPerByte))
	raw, ok := m.Read(in, 48*n)
	if !ok {
		st[0] = errnoFault
		return
	}
	subs := append([]byte(nil), raw...) // out may overlap in
	type clockSub struct {
		i        uint32
		deadline int64 // relative to now
	}
	var clocks []clockSub
	var events [][32]byte
	for i := uint32(0); i < n; i++ {
		b := subs[48*i : 48*i+48]
		var ev [32]byte
		copy(ev[0:8], b[0:8]) // userdata
		ev[10] = b[8]         // type
		switch b[8] {
		case 0: // clock
			now, ok := s.clock(binary.LittleEndian.Uint32(b[16:]))
			if !ok {
				binary.LittleEndian.PutUint16(ev[8:], errnoInval)
				events = append(events, ev)
				continue
			}
			timeout := int64(binary.LittleEndian.Uint64(b[24:]))
			if binary.LittleEndian.Uint16(b[40:])&1 != 0 { // absolute
				timeout -= now
			}
			clocks = append(clocks, clockSub{i, max(timeout, 0)})
		case 1, 2: // fd_read, fd_write
			fd, e := s.fs.fd(binary.LittleEndian.Uint32(b[16:]))
			switch {
			case e != errnoSuccess:
			case b[8] == 1 && (fd.kind == fdFile || fd.kind == fdStdin) && fd.read:
				binary.LittleEndian.PutUint64(ev[16:], uint64(max(fd.node.size()-fd.pos, 0)))
			case b[8] == 2 && fd.write:
			default:
				e = errnoBadf
			}
			binary.LittleEndian.PutUint16(ev[8:], e)
			events = append(events, ev)
		default:
			binary.LittleEndian.PutUint16(ev[8:], errnoInval)
			events = append(events, ev)
		}
	}
	if len(events) == 0 {
		wait := clocks[0].deadline
		for _, c := range clocks {
			wait = min(wait, c.deadline)
		}
		s.advance += min(wait, 1<<50)
		for _, c := range clocks {
			if c.deadline <= wait {
				var ev [32]byte
				copy(ev[0:8], subs[48*c.i:])
				events = append(events, ev) // type 0 (clock), errno 0
			}
		}
	}
	for i, ev := range events {
		if !m.Write(out+32*uint32(i), ev[:]) {
			st[0] = errnoFault
			return
		}
	}
	st[0] = uint64(putU32(m, neventsPtr, uint32(len(events))))
}

// sizesGet writes the count and total size (NULs included) of strs.
func sizesGet(m api.Memory, countPtr, sizePtr uint32, strs []string) uint16 {
	size := 0
	for _, a := range strs {
		size += len(a) + 1
	}
	if e := putU32(m, countPtr, uint32(len(strs))); e != errnoSuccess {
		return e
	}
	return putU32(m, sizePtr, uint32(size))
}

// stringsGet writes the pointer array and NUL-terminated strings of
// args_get and environ_get.
func (s *jobState) stringsGet(m api.Memory, ptrs, buf uint32, strs []string) uint16 {
	var b []byte
	for i, a := range strs {
		if e := putU32(m, ptrs+4*uint32(i), buf+uint32(len(b))); e != errnoSuccess {
			return e
		}
		b = append(append(b, a...), 0)
	}
	return s.copyOut(m, buf, b)
}

// copyOut copies b into the job's memory, charging per byte.
func (s *jobState) copyOut(m api.Memory, ptr uint32, b []byte) uint16 {
	s.charge(uint64(len(b)) * GasPerByte)
	return s.put(m, ptr, b)
}

// put writes a fixed-size record (its size is in the call's base cost).
func (s *jobState) put(m api.Memory, ptr uint32, b []byte) uint16 {
	if len(b) > 0 && !m.Write(ptr, b) {
		return errnoFault
	}
	return errnoSuccess
}

func putU32(m api.Memory, ptr, v uint32) uint16 {
	if !m.WriteUint32Le(ptr, v) {
		return errnoFault
	}
	return errnoSuccess
}

func putU64(m api.Memory, ptr uint32, v uint64) uint16 {
	if !m.WriteUint64Le(ptr, v) {
		return errnoFault
	}
	return errnoSuccess
}
