package main

import "os"

// main is the WASI command entry point (_start): the inputs are under /in,
// the outputs go to /out, and the exit code is run's.
func main() {
	os.Exit(run(os.Args[1:], os.Stdin, "/in", "/out", os.Stdout, os.Stderr))
}
