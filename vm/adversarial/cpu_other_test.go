//go:build !linux

package adversarial

// uploadThreadCPU is not available: cpu-ns/gas reads 0.
func uploadThreadCPU() int64 { return 0 }
