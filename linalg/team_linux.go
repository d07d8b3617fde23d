//go:build linux

package linalg

import "syscall"

// teamYield offers the thread's CPU to other runnable threads of the
// system (sched_yield), so that a polling goroutine of a Team does not hold
// a CPU that another process, or another thread of this one, is waiting
// for. With nothing else runnable it returns at once.
func teamYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
