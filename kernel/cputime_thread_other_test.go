//go:build !linux

package kernel

import "time"

// threadCPU is not measured here (benchmarks then report 0).
func threadCPU() time.Duration { return 0 }
