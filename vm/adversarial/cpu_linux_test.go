package adversarial

import "golang.org/x/sys/unix"

// uploadThreadCPU is the CPU time of the calling OS thread (lock it first):
// on a machine shared with other work it stays close to what the work
// costs, where wall time does not.
func uploadThreadCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
