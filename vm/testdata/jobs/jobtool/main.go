// Command jobtool is the VM's test job: a WASI command whose first argument
// picks what it does (see the switch in main). vm/job_test.go builds it with
// GOOS=wasip1 GOARCH=wasm and runs it through VM.RunJob.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: jobtool COMMAND [ARGS]")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "hello":
		fmt.Println("hello from a job")
	case "args":
		fmt.Printf("args %q\n", os.Args)
		env := os.Environ()
		sort.Strings(env)
		fmt.Printf("env %q\n", env)
		wd, err := os.Getwd()
		fmt.Printf("wd %q %v\n", wd, err)
	case "cat": // files, or stdin when none
		if len(args) == 0 {
			n, err := io.Copy(os.Stdout, os.Stdin)
			fmt.Fprintf(os.Stderr, "stdin: %d bytes, %v\n", n, err)
		}
		for _, name := range args {
			f, err := os.Open(name)
			check(err)
			_, err = io.Copy(os.Stdout, f)
			check(err)
			check(f.Close())
		}
	case "sha256": // like sha256sum, also to /out/SHA256SUMS
		var sums strings.Builder
		for _, name := range args {
			f, err := os.Open(name)
			check(err)
			h := sha256.New()
			_, err = io.Copy(h, f)
			check(err)
			f.Close()
			fmt.Fprintf(&sums, "%x  %s\n", h.Sum(nil), name)
		}
		fmt.Print(sums.String())
		check(os.WriteFile("/out/SHA256SUMS", []byte(sums.String()), 0o644))
	case "write": // write PATH SIZE: SIZE bytes of a pattern
		size, err := strconv.Atoi(args[1])
		check(err)
		f, err := os.Create(args[0])
		check(err)
		w := bufio.NewWriterSize(f, 64<<10)
		for i := 0; i < size; i++ {
			w.WriteByte(byte('a' + i%26))
		}
		check(w.Flush())
		check(f.Close())
	case "fill": // write to /out/fill until the output limit refuses, then succeed
		f, err := os.Create("/out/fill")
		check(err)
		n, chunk := 0, make([]byte, 1000)
		for {
			k, err := f.Write(chunk)
			n += k
			if err != nil {
				fmt.Printf("wrote %d bytes: %v\n", n, errors.Unwrap(err))
				break
			}
		}
		check(f.Close())
	case "exit":
		code, err := strconv.Atoi(args[0])
		check(err)
		fmt.Println("exiting with", code)
		os.Exit(code)
	case "panic":
		panic("job panics: " + strings.Join(args, " "))
	case "trap": // a nil dereference through unsafe-free code
		var m map[string]int
		m["x"] = 1
	case "loop":
		n := 0
		for {
			n++
			if n < 0 {
				fmt.Println(n)
			}
		}
	case "hog": // allocate MiB in 1 MiB chunks and keep them
		mib, err := strconv.Atoi(args[0])
		check(err)
		var keep [][]byte
		for i := 0; i < mib; i++ {
			b := make([]byte, 1<<20)
			b[0], b[len(b)-1] = 1, 1
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MiB")
	case "flood": // flood N: N bytes to stdout and N/2 to stderr
		n, err := strconv.Atoi(args[0])
		check(err)
		line := []byte(strings.Repeat("x", 63) + "\n")
		for i := 0; i < n; i += len(line) {
			os.Stdout.Write(line[:min(len(line), n-i)])
		}
		for i := 0; i < n/2; i += len(line) {
			os.Stderr.Write(line[:min(len(line), n/2-i)])
		}
	case "ls": // recursive listing
		for _, root := range args {
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					fmt.Printf("%s: error %v\n", p, err)
					return nil
				}
				info, err := d.Info()
				check(err)
				fmt.Printf("%s %v %d\n", p, info.Mode(), sizeOf(info))
				return nil
			})
			check(err)
		}
	case "rand": // nondeterminism sources: must be fixed by the executor
		b := make([]byte, 16)
		_, err := rand.Read(b)
		check(err)
		fmt.Printf("crypto/rand %x\n", b)
		fmt.Printf("math/rand %d\n", mrand.Uint64())
		m := map[int]int{}
		for i := range 20 {
			m[i] = i
		}
		var order []int
		for k := range m {
			order = append(order, k)
		}
		fmt.Printf("map order %v\n", order)
		t0 := time.Now()
		fmt.Printf("now %s unix_ms %d\n", t0.UTC().Format(time.RFC3339Nano), t0.UnixMilli())
		time.Sleep(1500 * time.Millisecond)
		fmt.Printf("slept %v\n", time.Since(t0))
		fmt.Printf("after %s\n", time.Now().UTC().Format(time.RFC3339Nano))
		fmt.Printf("goroutines %d\n", runtime.NumGoroutine())
	case "escape": // try to reach host files
		for _, p := range []string{"/etc/passwd", "/in/../etc/passwd", "/in/../../etc/passwd",
			"../etc/passwd", "/", "/tmp", "/proc/self/environ", "/out/../in", "/in/./"} {
			f, err := os.Open(p)
			if err != nil {
				fmt.Printf("open %s: %v\n", p, errors.Unwrap(err))
				continue
			}
			names, err := f.Readdirnames(-1)
			sort.Strings(names)
			fmt.Printf("open %s: ok, dir %v %v\n", p, names, err)
			f.Close()
		}
		for _, p := range []string{"/out/../../tmp/x", "/in/new", "/tmp/x", "/out/../in/x"} {
			err := os.WriteFile(p, []byte("x"), 0o644)
			fmt.Printf("create %s: %v\n", p, err)
		}
	case "mandel": // mandel W H ITER: mandelbrot PNG to /out/mandel.png
		w, _ := strconv.Atoi(args[0])
		h, _ := strconv.Atoi(args[1])
		iter, _ := strconv.Atoi(args[2])
		img := image.NewGray(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				cr := 3.0*float64(x)/float64(w) - 2.0
				ci := 2.0*float64(y)/float64(h) - 1.0
				zr, zi := 0.0, 0.0
				n := 0
				for ; n < iter && zr*zr+zi*zi < 4; n++ {
					zr, zi = zr*zr-zi*zi+cr, 2*zr*zi+ci
				}
				img.SetGray(x, y, color.Gray{Y: uint8(n * 255 / iter)})
			}
		}
		f, err := os.Create("/out/mandel.png")
		check(err)
		check(png.Encode(f, img))
		check(f.Close())
	case "fsops":
		fsops()
	case "links":
		fmt.Println("symlink:", errText(os.Symlink("/out/a", "/out/link")))
		fmt.Println("link:", errText(os.Link("/in/data.txt", "/out/hard")))
	case "recurse": // recurse N: N nested Go calls
		n, err := strconv.Atoi(args[0])
		check(err)
		fmt.Println("depth", recurse(n))
	case "many": // many N: up to N files under /out/many, then list them
		n, err := strconv.Atoi(args[0])
		check(err)
		check(os.Mkdir("/out/many", 0o755))
		code := 0
		for i := 0; i < n; i++ {
			if err := os.WriteFile(fmt.Sprintf("/out/many/%04d", i), []byte{byte(i)}, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "error:", err)
				code = 1
				break
			}
		}
		entries, err := os.ReadDir("/out/many")
		check(err)
		fmt.Printf("listed %d: %s .. %s\n", len(entries), entries[0].Name(), entries[len(entries)-1].Name())
		os.Exit(code)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

//go:noinline
func recurse(n int) int {
	if n == 0 {
		return 0
	}
	return recurse(n-1) + 1
}

func sizeOf(info fs.FileInfo) int64 {
	if info.IsDir() {
		return 0
	}
	return info.Size()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// fsops exercises the file system calls; every line it prints must be the
// same under the VM's WASI and under a POSIX file system (wazero's WASI over
// temporary directories), which vm/job_test.go compares.
func fsops() {
	say := func(what string, err error) { fmt.Printf("%s: %v\n", what, errText(err)) }
	say("mkdir /out/a", os.Mkdir("/out/a", 0o755))
	say("mkdir /out/a again", os.Mkdir("/out/a", 0o755))
	say("mkdirall /out/a/b/c", os.MkdirAll("/out/a/b/c", 0o755))
	say("write /out/a/b/f", os.WriteFile("/out/a/b/f", []byte("hello world"), 0o644))
	b, err := os.ReadFile("/out/a/b/f")
	say(fmt.Sprintf("read /out/a/b/f %q", b), err)

	f, err := os.OpenFile("/out/a/b/f", os.O_RDWR, 0)
	say("open rw", err)
	n, err := f.WriteAt([]byte("WORLD"), 6)
	say(fmt.Sprintf("pwrite %d", n), err)
	buf := make([]byte, 5)
	n, err = f.ReadAt(buf, 0)
	say(fmt.Sprintf("pread %d %q", n, buf[:n]), err)
	off, err := f.Seek(-5, io.SeekEnd)
	say(fmt.Sprintf("seek end-5 %d", off), err)
	n, err = f.Read(buf)
	say(fmt.Sprintf("read %d %q", n, buf[:n]), err)
	n, err = f.Read(buf)
	say(fmt.Sprintf("read at eof %d", n), err)
	off, err = f.Seek(20, io.SeekStart)
	say(fmt.Sprintf("seek past end %d", off), err)
	n, err = f.Write([]byte("!"))
	say(fmt.Sprintf("write past end %d", n), err)
	st, err := f.Stat()
	say(fmt.Sprintf("size %d", st.Size()), err)
	say("truncate 4", f.Truncate(4))
	st, _ = f.Stat()
	fmt.Printf("size %d\n", st.Size())
	_, err = f.Seek(-1, io.SeekStart)
	say("seek negative", err)
	say("close", f.Close())
	say("close again", f.Close())

	af, err := os.OpenFile("/out/a/b/f", os.O_WRONLY|os.O_APPEND, 0)
	say("open append", err)
	af.Write([]byte("++"))
	af.Close()
	b, _ = os.ReadFile("/out/a/b/f")
	fmt.Printf("after append %q\n", b)

	_, err = os.OpenFile("/out/a/b/f", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	say("create excl existing", err)
	_, err = os.Open("/out/a/b/missing")
	say("open missing", err)
	_, err = os.Open("/out/a/b/f/x")
	say("open through file", err)
	_, err = os.OpenFile("/out/a", os.O_WRONLY, 0)
	say("open dir for write", err)
	say("remove non-empty dir", os.Remove("/out/a/b"))
	say("rmdir file", syscallRmdir("/out/a/b/f"))
	say("rename f -> g", os.Rename("/out/a/b/f", "/out/a/g"))
	say("rename missing", os.Rename("/out/a/b/f", "/out/a/h"))
	say("rename dir b -> d", os.Rename("/out/a/b", "/out/d"))
	say("rename dir into itself", os.Rename("/out/d", "/out/d/c/e"))
	say("rename file over dir", os.Rename("/out/a/g", "/out/d"))
	say("write /out/top", os.WriteFile("/out/top", []byte("top"), 0o644))
	say("rename over file", os.Rename("/out/top", "/out/a/g"))
	say("mkdir in /in", os.Mkdir("/in/newdir", 0o755))
	say("remove in /in", os.Remove("/in/data.txt"))
	_, err = os.Readlink("/out/a/g")
	say("readlink", err)
	say("remove file", os.Remove("/out/d/c"))
	say("remove empty dir", os.Remove("/out/d/c"))
	say("remove missing", os.Remove("/out/d/c"))

	for _, root := range []string{"/in", "/out"} {
		var lines []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				lines = append(lines, fmt.Sprintf("%s error %v", p, errText(err)))
				return nil
			}
			info, _ := d.Info()
			lines = append(lines, fmt.Sprintf("%s %v %d", p, info.Mode().Type(), sizeOf(info)))
			return nil
		})
		fmt.Println(strings.Join(lines, "\n"))
	}
	entries, err := os.ReadDir("/out")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	say(fmt.Sprintf("readdir /out %v", names), err)
	data, err := os.ReadFile("data.txt") // relative to the working directory
	say(fmt.Sprintf("read relative %d bytes", len(data)), err)
}

// errText strips the path from an error so that lines compare across
// runtimes.
func errText(err error) string {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &pe):
		return pe.Op + ": " + pe.Err.Error()
	case errors.As(err, &le):
		return le.Op + ": " + le.Err.Error()
	}
	return err.Error()
}
