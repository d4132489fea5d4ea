//go:build !unix

package kernel

// openFileLimit is unknown here: the API's default connection limit takes
// its maximum.
func openFileLimit() int { return 1 << 30 }
