//go:build !linux

package linalg

// teamYield is a no-op where sched_yield is not at hand: a Team's polling
// goroutines then yield only to the Go scheduler.
func teamYield() {}
