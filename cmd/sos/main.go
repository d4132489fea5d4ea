// Command sos runs and drives a node of the SOS spatial operating system
// kernel: init a home, manage keys, run the node, send transactions, query
// the chain, generate load, and inspect it live.
package main

import (
	"fmt"
	"os"
)

func main() {
	g := newGlobals()
	root := newRoot(g)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", g.explain(err))
		os.Exit(1)
	}
}
