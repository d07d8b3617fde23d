//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// gramKernelAVX2 is the AVX2/FMA assembly version of gramKernelGo, with the
// same contract and bit-identical results (see gramKernelGo). k ≥ 1; a and
// b point to k rows of stride 12 (4 and 12 values used), c to 3·ldc+12 values.
//
//go:noescape
func gramKernelAVX2(k int, a, b, c *float64, ldc int)

// gramHasAsm reports whether this CPU and OS support the assembly kernel:
// AVX2 and FMA instructions, with the YMM state saved by the OS (checked by
// x/sys/cpu).
var gramHasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// gramKernelAsm calls the assembly kernel on slices.
func gramKernelAsm(k int, a, b, c []float64, ldc int) {
	_ = a[gramP*(k-1)+gramMR-1]
	_ = b[gramP*k-1]
	_ = c[(gramMR-1)*ldc+gramNR-1]
	gramKernelAVX2(k, &a[0], &b[0], &c[0], ldc)
}
