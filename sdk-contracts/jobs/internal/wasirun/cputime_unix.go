//go:build unix

package wasirun

import (
	"syscall"
	"time"
)

// CPUTime is the user and system CPU time this process has used, all
// threads included. Benchmarks report it per operation next to wall time:
// on a machine shared with other work, wall time measures the others too.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
