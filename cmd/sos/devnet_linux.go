package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a devnet node process receive SIGTERM when the devnet
// process dies, even by kill -9, so no orphaned nodes keep running. The
// node gets its own process group, so the terminal's Ctrl-C reaches only
// the devnet, which then stops the nodes itself (and does not mistake
// their exit for a crash).
func dieWithParent(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}
