//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// gramKernelAVX2 is the AVX2/FMA assembly version of gramKernelGo, with the
// same contract and bit-identical results (see gramKernelGo). k ≥ 1; a, b and
// c point to at least 6k, 8k and 5·ldc+8 float64 values.
//
//go:noescape
func gramKernelAVX2(k int, a, b, c *float64, ldc int)

// gramHasAsm reports whether this CPU and OS support the assembly kernel:
// AVX2 and FMA instructions, with the YMM state saved by the OS (checked by
// x/sys/cpu).
var gramHasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// gramKernelAsm calls the assembly kernel on slices.
func gramKernelAsm(k int, a, b, c []float64, ldc int) {
	_ = a[6*k-1]
	_ = b[8*k-1]
	_ = c[5*ldc+7]
	gramKernelAVX2(k, &a[0], &b[0], &c[0], ldc)
}
