//go:build !unix

package kernel

import "time"

// cpuTime is unknown here: modeled energy is then 0.
func cpuTime() time.Duration { return 0 }
