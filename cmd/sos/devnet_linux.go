package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a devnet node process receive SIGTERM when the devnet
// process dies, even by kill -9, so no orphaned nodes keep running.
func dieWithParent(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
