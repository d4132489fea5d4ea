//go:build !linux

package main

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's.
func dieWithParent(c *exec.Cmd) {}
