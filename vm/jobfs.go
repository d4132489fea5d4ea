package vm

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sos-kernel/sos/internal/failpoint"
)

// The file system of a job: two trees in memory, nothing of the host's.
//
//	fd 3 = /in   read-only: one file per input, read lazily from its JobFile
//	fd 4 = /out  writable, in memory, capped by JobSpec.OutputLimit bytes,
//	             MaxJobOutputFiles files and MaxJobOutputDirs directories
//
// Paths resolve relative to a directory descriptor and can never leave
// its preopen: an absolute path, or ".." above /in or /out, fails with
// ENOTCAPABLE. There are no symbolic or hard links. Directory listings are
// sorted by name and carry no "." or ".." entries; inode numbers count up
// in creation order; a file's times are the virtual realtime clock when it
// was last changed (inputs: JobSpec.TimeMs). Everything a job observes is
// thus a function of its spec and its own calls.

// fsNode is a file or directory.
type fsNode struct {
	dir      bool
	name     string
	parent   *fsNode // nil for a preopen root and an unlinked node
	children map[string]*fsNode
	data     []byte   // a file under /out
	input    *JobFile // a file under /in, or stdin
	out      bool     // under /out: writable
	root     bool     // /in or /out itself
	linked   bool
	open     int // descriptors referring to it
	ino      uint64
	mtim     int64
	atim     int64
	version  uint64 // of a directory's entries
}

func (n *fsNode) size() int64 {
	if n.input != nil {
		return n.input.Size
	}
	return int64(len(n.data))
}

type fdKind uint8

const (
	fdStdin fdKind = iota
	fdStdout
	fdStderr
	fdDir
	fdFile
)

// jobFD is an open file descriptor.
type jobFD struct {
	kind        fdKind
	node        *fsNode // fdStdin: the stdin pseudo-file; fdDir, fdFile: the node
	pos         int64
	read, write bool
	flags       uint16 // fdflags
	rights      uint64
	inherit     uint64
	preopen     string
	listing     []string // fdDir: the sorted names fd_readdir walks
	listVersion uint64
}

// jobFS is the file system and descriptor table of one run.
type jobFS struct {
	s        *jobState
	in, out  *fsNode
	fds      []*jobFD
	open     int
	nextIno  uint64
	outLimit uint64
	outUsed  uint64 // bytes of /out files, those unlinked but still open included
	outFiles int
	outDirs  int
}

// WASI rights (only those the file system enforces or reports).
const (
	rightFdRead  = 1 << 1
	rightFdWrite = 1 << 6
	rightsAll    = 1<<30 - 1
)

// WASI fdflags, oflags and filetypes.
const (
	fdflagAppend = 1 << 0
	fdflagsAll   = 1<<5 - 1
	oflagCreat   = 1 << 0
	oflagDir     = 1 << 1
	oflagExcl    = 1 << 2
	oflagTrunc   = 1 << 3

	filetypeCharDevice = 2
	filetypeDirectory  = 3
	filetypeRegular    = 4
)

// maxPathBytes bounds a path argument (PATH_MAX).
const maxPathBytes = 4096

func newJobFS(s *jobState, spec *JobSpec) *jobFS {
	fs := &jobFS{s: s, outLimit: spec.OutputLimit}
	t := s.realBase
	fs.in = fs.newNode(true, "", false, t)
	fs.in.root, fs.in.linked = true, true
	for i := range spec.Inputs {
		in := &spec.Inputs[i]
		n := fs.newNode(false, in.Name, false, t)
		n.input, n.parent, n.linked = in, fs.in, true
		fs.in.children[in.Name] = n
	}
	fs.out = fs.newNode(true, "", true, t)
	fs.out.root, fs.out.linked = true, true
	stdin := &fsNode{input: &spec.Stdin}
	fs.fds = []*jobFD{
		{kind: fdStdin, node: stdin, read: true, rights: rightsAll},
		{kind: fdStdout, write: true, rights: rightsAll},
		{kind: fdStderr, write: true, rights: rightsAll},
		{kind: fdDir, node: fs.in, read: true, rights: rightsAll, inherit: rightsAll, preopen: "/in"},
		{kind: fdDir, node: fs.out, read: true, rights: rightsAll, inherit: rightsAll, preopen: "/out"},
	}
	fs.in.open, fs.out.open, fs.open = 1, 1, len(fs.fds)
	return fs
}

func (fs *jobFS) newNode(dir bool, name string, out bool, t int64) *fsNode {
	fs.nextIno++
	n := &fsNode{dir: dir, name: name, out: out, ino: fs.nextIno, mtim: t, atim: t}
	if dir {
		n.children = map[string]*fsNode{}
	}
	return n
}

// now is the virtual realtime clock, in nanoseconds.
func (fs *jobFS) now() int64 { return fs.s.realBase + fs.s.advance }

// fd returns an open descriptor.
func (fs *jobFS) fd(fd uint32) (*jobFD, uint16) {
	if int(fd) >= len(fs.fds) || fs.fds[fd] == nil {
		return nil, errnoBadf
	}
	return fs.fds[fd], errnoSuccess
}

// dirFD returns an open directory descriptor.
func (fs *jobFS) dirFD(fd uint32) (*fsNode, uint16) {
	f, e := fs.fd(fd)
	if e != errnoSuccess {
		return nil, e
	}
	if f.kind != fdDir {
		return nil, errnoNotdir
	}
	return f.node, errnoSuccess
}

// alloc installs f at the lowest free descriptor.
func (fs *jobFS) alloc(f *jobFD) (uint32, uint16) {
	if fs.open >= MaxJobOpenFiles {
		return 0, errnoMfile
	}
	fs.open++
	if f.node != nil {
		f.node.open++
	}
	for i, g := range fs.fds {
		if g == nil {
			fs.fds[i] = f
			return uint32(i), errnoSuccess
		}
	}
	fs.fds = append(fs.fds, f)
	return uint32(len(fs.fds) - 1), errnoSuccess
}

// close releases descriptor fd, which must be open.
func (fs *jobFS) close(fd uint32) {
	f := fs.fds[fd]
	fs.fds[fd] = nil
	fs.open--
	if f.node != nil {
		f.node.open--
		fs.release(f.node)
	}
	fs.trim()
}

// renumber moves descriptor from to to, closing to first; both must be
// open.
func (fs *jobFS) renumber(from, to uint32) {
	if from == to {
		return
	}
	f := fs.fds[from]
	fs.fds[from] = nil
	fs.open--
	old := fs.fds[to]
	fs.fds[to] = f
	if old.node != nil {
		old.node.open--
		fs.release(old.node)
	}
	fs.trim()
}

func (fs *jobFS) trim() {
	for len(fs.fds) > 0 && fs.fds[len(fs.fds)-1] == nil {
		fs.fds = fs.fds[:len(fs.fds)-1]
	}
}

// release frees the bytes of an /out file nothing refers to any more.
func (fs *jobFS) release(n *fsNode) {
	if n.linked || n.open > 0 || n.dir || !n.out {
		return
	}
	fs.outUsed -= uint64(len(n.data))
	n.data = nil
}

// resolved is where a path leads.
type resolved struct {
	parent *fsNode // directory holding name; nil when the path names a directory itself
	name   string  // last component; "" when the path ends in ".", ".." or names its start
	node   *fsNode // the node the path names, nil if it does not exist
	slash  bool    // the path ends with "/"
}

// resolve walks path from dir. Every component before the last must be
// an existing directory; ".." may not climb above a preopen.
func (fs *jobFS) resolve(dir *fsNode, path []byte) (resolved, uint16) {
	switch {
	case len(path) == 0:
		return resolved{}, errnoNoent
	case len(path) > maxPathBytes:
		return resolved{}, errnoNametoolong
	case path[0] == '/':
		return resolved{}, errnoNotcapable
	case slices.Contains(path, 0):
		return resolved{}, errnoInval
	}
	r := resolved{node: dir, slash: path[len(path)-1] == '/'}
	cur := dir
	comps := strings.Split(strings.Trim(string(path), "/"), "/")
	for i, c := range comps {
		last := i == len(comps)-1
		fs.s.charge(GasJobLookup)
		switch c {
		case "", ".":
		case "..":
			if cur.root {
				return resolved{}, errnoNotcapable
			}
			if cur.parent == nil {
				return resolved{}, errnoNoent
			}
			cur = cur.parent
		default:
			if len(c) > MaxJobNameBytes {
				return resolved{}, errnoNametoolong
			}
			if last {
				return resolved{parent: cur, name: c, node: cur.children[c], slash: r.slash}, errnoSuccess
			}
			next := cur.children[c]
			if next == nil {
				return resolved{}, errnoNoent
			}
			if !next.dir {
				return resolved{}, errnoNotdir
			}
			cur = next
		}
	}
	r.node = cur
	return r, errnoSuccess
}

// relPathLen is the length of n's path relative to /out ("" for /out).
func relPathLen(n *fsNode) int {
	l := 0
	for ; n != nil && !n.root; n = n.parent {
		if l > 0 {
			l++
		}
		l += len(n.name)
	}
	return l
}

// subtreeDepth is the length of the longest path below directory n,
// relative to n ("" when n is empty).
func subtreeDepth(n *fsNode) int {
	d := 0
	for name, c := range n.children {
		l := len(name)
		if c.dir {
			if sub := subtreeDepth(c); sub > 0 {
				l += 1 + sub
			}
		}
		d = max(d, l)
	}
	return d
}

// canCreate checks that a file or directory named name may be created in
// parent.
func (fs *jobFS) canCreate(parent *fsNode, name string, dir bool) uint16 {
	switch {
	case !parent.out:
		return errnoRofs
	case !parent.linked:
		return errnoNoent
	case !utf8.ValidString(name):
		return errnoIlseq
	}
	if e := fs.checkPath(parent, name, 0); e != errnoSuccess {
		return e
	}
	if dir && fs.outDirs >= MaxJobOutputDirs {
		fs.s.refused("output limit: a directory beyond the %d allowed under /out was refused", MaxJobOutputDirs)
		return errnoDquot
	}
	if !dir && fs.outFiles >= MaxJobOutputFiles {
		fs.s.refused("output limit: a file beyond the %d allowed under /out was refused", MaxJobOutputFiles)
		return errnoDquot
	}
	return errnoSuccess
}

// checkPath checks that name in parent, with a subtree of depth below it,
// stays within MaxJobPathBytes.
func (fs *jobFS) checkPath(parent *fsNode, name string, below int) uint16 {
	l := relPathLen(parent)
	if l > 0 {
		l++
	}
	l += len(name)
	if below > 0 {
		l += 1 + below
	}
	if l > MaxJobPathBytes {
		return errnoNametoolong
	}
	return errnoSuccess
}

// link adds n to parent under name.
func (fs *jobFS) link(parent, n *fsNode, name string) {
	n.name, n.parent, n.linked = name, parent, true
	parent.children[name] = n
	parent.version++
	parent.mtim = fs.now()
	if n.dir {
		fs.outDirs++
	} else {
		fs.outFiles++
	}
}

// unlink removes n from its directory.
func (fs *jobFS) unlink(n *fsNode) {
	p := n.parent
	delete(p.children, n.name)
	p.version++
	p.mtim = fs.now()
	n.parent, n.linked = nil, false
	if n.dir {
		fs.outDirs--
	} else {
		fs.outFiles--
		fs.release(n)
	}
}

// open implements path_open.
func (fs *jobFS) openPath(dir *fsNode, path []byte, oflags uint32, rights, inherit uint64, fdflags uint32) (uint32, uint16) {
	if oflags&^(oflagCreat|oflagDir|oflagExcl|oflagTrunc) != 0 || fdflags&^fdflagsAll != 0 {
		return 0, errnoInval
	}
	r, e := fs.resolve(dir, path)
	if e != errnoSuccess {
		return 0, e
	}
	write := rights&rightFdWrite != 0
	read := rights&rightFdRead != 0 || !write
	n := r.node
	switch {
	case n != nil && oflags&oflagCreat != 0 && oflags&oflagExcl != 0:
		return 0, errnoExist
	case n != nil && n.dir:
		if write || oflags&oflagTrunc != 0 {
			return 0, errnoIsdir
		}
		return fs.alloc(&jobFD{kind: fdDir, node: n, read: true, flags: uint16(fdflags), rights: rights, inherit: inherit})
	case n != nil:
		if r.slash || oflags&oflagDir != 0 {
			return 0, errnoNotdir
		}
		if !n.out && (write || oflags&oflagTrunc != 0) {
			return 0, errnoRofs
		}
		if oflags&oflagTrunc != 0 && len(n.data) > 0 {
			fs.outUsed -= uint64(len(n.data))
			n.data = n.data[:0]
			n.mtim = fs.now()
		}
	case oflags&oflagCreat == 0:
		return 0, errnoNoent
	case oflags&oflagDir != 0:
		return 0, errnoInval
	case r.slash:
		return 0, errnoIsdir
	default:
		if e := fs.canCreate(r.parent, r.name, false); e != errnoSuccess {
			return 0, e
		}
		fs.s.charge(GasJobOpen)
		n = fs.newNode(false, r.name, true, fs.now())
		fs.link(r.parent, n, r.name)
	}
	return fs.alloc(&jobFD{kind: fdFile, node: n, read: read, write: write, flags: uint16(fdflags), rights: rights, inherit: inherit})
}

// mkdir implements path_create_directory.
func (fs *jobFS) mkdir(dir *fsNode, path []byte) uint16 {
	r, e := fs.resolve(dir, path)
	switch {
	case e != errnoSuccess:
		return e
	case r.node != nil:
		return errnoExist
	}
	if e := fs.canCreate(r.parent, r.name, true); e != errnoSuccess {
		return e
	}
	fs.s.charge(GasJobOpen)
	fs.link(r.parent, fs.newNode(true, r.name, true, fs.now()), r.name)
	return errnoSuccess
}

// unlinkFile implements path_unlink_file.
func (fs *jobFS) unlinkFile(dir *fsNode, path []byte) uint16 {
	r, e := fs.resolve(dir, path)
	switch {
	case e != errnoSuccess:
		return e
	case r.node == nil:
		return errnoNoent
	case r.node.dir:
		return errnoIsdir
	case r.slash:
		return errnoNotdir
	case !r.node.out:
		return errnoRofs
	}
	fs.unlink(r.node)
	return errnoSuccess
}

// rmdir implements path_remove_directory.
func (fs *jobFS) rmdir(dir *fsNode, path []byte) uint16 {
	r, e := fs.resolve(dir, path)
	switch {
	case e != errnoSuccess:
		return e
	case r.node == nil:
		return errnoNoent
	case r.name == "":
		return errnoBusy // ".", ".." or a preopen
	case !r.node.dir:
		return errnoNotdir
	case !r.node.out:
		return errnoRofs
	case len(r.node.children) > 0:
		return errnoNotempty
	}
	fs.unlink(r.node)
	return errnoSuccess
}

// rename implements path_rename.
func (fs *jobFS) rename(oldDir *fsNode, oldPath []byte, newDir *fsNode, newPath []byte) uint16 {
	o, e := fs.resolve(oldDir, oldPath)
	if e != errnoSuccess {
		return e
	}
	n, e := fs.resolve(newDir, newPath)
	if e != errnoSuccess {
		return e
	}
	switch {
	case o.node == nil:
		return errnoNoent
	case o.name == "" || n.name == "":
		return errnoBusy
	case o.parent.out != n.parent.out:
		return errnoXdev
	case !o.parent.out:
		return errnoRofs
	case !n.parent.linked:
		return errnoNoent
	case o.node == n.node:
		return errnoSuccess
	case !utf8.ValidString(n.name):
		return errnoIlseq
	}
	src, dst := o.node, n.node
	if src.dir {
		switch {
		case dst != nil && !dst.dir:
			return errnoNotdir
		case dst != nil && len(dst.children) > 0:
			return errnoNotempty
		}
		for p := n.parent; p != nil; p = p.parent {
			if p == src {
				return errnoInval // into itself
			}
		}
	} else {
		switch {
		case o.slash || n.slash:
			return errnoNotdir
		case dst != nil && dst.dir:
			return errnoIsdir
		}
	}
	below := 0
	if src.dir {
		below = subtreeDepth(src)
	}
	if e := fs.checkPath(n.parent, n.name, below); e != errnoSuccess {
		return e
	}
	if dst != nil {
		fs.unlink(dst)
	}
	// Move src: out of its directory and into the new one, without
	// releasing it or changing the counts.
	op := src.parent
	delete(op.children, src.name)
	op.version++
	op.mtim = fs.now()
	src.name, src.parent = n.name, n.parent
	n.parent.children[n.name] = src
	n.parent.version++
	n.parent.mtim = fs.now()
	return errnoSuccess
}

// readAt reads from a file or stdin at off into p and returns the count:
// fewer than len(p) only at the end of the file.
func (fs *jobFS) readAt(n *fsNode, p []byte, off int64) int {
	size := n.size()
	if off >= size || len(p) == 0 {
		return 0
	}
	k := int(min(int64(len(p)), size-off))
	if n.input == nil {
		return copy(p, n.data[off:off+int64(k)])
	}
	got, err := 0, error(nil)
	if _, fire := failpoint.Eval(failpoint.JobInputRead); fire {
		err = errors.New("failpoint " + failpoint.JobInputRead)
	} else {
		got, err = n.input.Data.ReadAt(p[:k], off)
	}
	if got < k {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%d bytes at offset %d of a %d-byte file: %w", got, off, size, io.ErrUnexpectedEOF)
		}
		what := "stdin"
		if n.parent != nil || n.name != "" {
			what = "input " + n.name
		}
		fs.s.fail(fmt.Errorf("%w: %s: %w", ErrJobInput, what, err))
	}
	fs.s.bytesRead += uint64(k)
	return k
}

// room returns how many bytes an /out file may grow by.
func (fs *jobFS) room() uint64 { return fs.outLimit - min(fs.outUsed, fs.outLimit) }

// writeAt writes p to an /out file at off and returns the count: fewer
// than len(p) when the output limit is reached (errnoNospc when not even
// one byte fits).
func (fs *jobFS) writeAt(n *fsNode, p []byte, off int64) (int, uint16) {
	if len(p) == 0 {
		return 0, errnoSuccess
	}
	size := int64(len(n.data))
	room := int64(min(fs.room(), 1<<40))
	if off >= size+room { // not one byte fits (and end cannot overflow)
		fs.s.refused("output limit: a write beyond the %d bytes allowed under /out was refused", fs.outLimit)
		return 0, errnoNospc
	}
	end := off + int64(len(p))
	if end > size {
		if end > size+room {
			p = p[:size+room-off]
			end = size + room
		}
		if off > size {
			fs.s.charge(uint64(off-size) * GasJobGrowPerByte)
		}
		fs.resize(n, end)
	}
	copy(n.data[off:], p)
	n.mtim = fs.now()
	return len(p), errnoSuccess
}

// setSize truncates or extends an /out file with zeros.
func (fs *jobFS) setSize(n *fsNode, size int64) uint16 {
	cur := int64(len(n.data))
	if size > cur {
		if uint64(size-cur) > fs.room() {
			fs.s.refused("output limit: growing a file beyond the %d bytes allowed under /out was refused", fs.outLimit)
			return errnoNospc
		}
		fs.s.charge(uint64(size-cur) * GasJobGrowPerByte)
	}
	fs.resize(n, size)
	n.mtim = fs.now()
	return errnoSuccess
}

// resize sets the length of an /out file (within the output limit),
// zeroing new bytes, and accounts for it.
func (fs *jobFS) resize(n *fsNode, size int64) {
	cur := int64(len(n.data))
	switch {
	case size < cur:
		n.data = n.data[:size]
		fs.outUsed -= uint64(cur - size)
	case size > cur:
		if size > int64(cap(n.data)) {
			nd := make([]byte, cur, min(max(size, 2*int64(cap(n.data))), cur+int64(fs.room())))
			copy(nd, n.data)
			n.data = nd
		}
		n.data = n.data[:size]
		clear(n.data[cur:])
		fs.outUsed += uint64(size - cur)
	}
}

// list returns the sorted names of directory n's entries.
func (fs *jobFS) list(f *jobFD) []string {
	n := f.node
	if f.listing == nil || f.listVersion != n.version {
		fs.s.charge(uint64(len(n.children)) * GasJobEntry)
		f.listing = f.listing[:0]
		for name := range n.children {
			f.listing = append(f.listing, name)
		}
		slices.Sort(f.listing)
		if f.listing == nil {
			f.listing = []string{}
		}
		f.listVersion = n.version
	}
	return f.listing
}

// outputs lists the files under /out, sorted by path.
func (fs *jobFS) outputs() []JobOutput {
	var outs []JobOutput
	var walk func(n *fsNode, prefix string)
	walk = func(n *fsNode, prefix string) {
		for name, c := range n.children {
			if c.dir {
				walk(c, prefix+name+"/")
			} else {
				outs = append(outs, JobOutput{Path: prefix + name, Data: c.data})
			}
		}
	}
	walk(fs.out, "")
	slices.SortFunc(outs, func(a, b JobOutput) int { return strings.Compare(a.Path, b.Path) })
	return outs
}
