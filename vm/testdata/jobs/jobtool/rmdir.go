package main

import "syscall"

func syscallRmdir(p string) error { return syscall.Rmdir(p) }
