//go:build unix

package kernel

import "syscall"

// openFileLimit is the process's soft limit on open files (Go raises it to
// the hard limit at start); unknown or unlimited counts as very large.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
}
