//go:build linux

package linalg

import (
	"syscall"
	"unsafe"
)

// madvHugepage is MADV_HUGEPAGE (linux/mman.h), which package syscall does
// not name.
const madvHugepage = 14

// adviseHuge advises the whole 2 MiB pages inside s into transparent huge
// pages. Pages not touched yet (a fresh allocation's) are then faulted in as
// huge pages; errors are ignored, the advice being only that.
func adviseHuge(s []float32) {
	const page = 2 << 20
	if len(s) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(&s[0]))
	end := start + uintptr(len(s))*4
	lo, hi := (start+page-1)&^(page-1), end&^(page-1)
	if lo >= hi {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, lo, hi-lo, madvHugepage)
}
