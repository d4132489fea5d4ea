//go:build linux

package kernel

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time of the calling OS thread
// (CLOCK_THREAD_CPUTIME_ID): meaningful between two calls from a goroutine
// locked to its thread (runtime.LockOSThread), where it is that
// goroutine's own CPU time, GC assists included, and none of what other
// goroutines (background GC workers, Pebble's flushes and compactions)
// spent meanwhile.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
