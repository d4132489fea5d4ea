// Command gopolicy is a ROME-policy-shaped Go module for the adversarial
// benchmark: its allocate entry point spins on a package-level counter
// (for { counter++ }) until the policy VM stops it for lack of gas.
package main

func main() {}

var counter uint64

//go:wasmexport allocate
func allocate() int32 {
	for {
		counter++
	}
}
