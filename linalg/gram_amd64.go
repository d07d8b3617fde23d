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

// gramPackRowAVX2 converts panels groups of 12 float32 values at src to
// float64 at dst, dst advancing by stride values per group.
//
//go:noescape
func gramPackRowAVX2(dst *float64, src *float32, panels, stride int)

// gramBadAVX2 reports whether one of the n values at src (n a multiple of 8)
// is NaN or larger than limit in magnitude.
//
//go:noescape
func gramBadAVX2(src *float32, n int, limit float32) bool

// gramPackRowAsm is gramPackRowGo with the assembly routines.
func gramPackRowAsm(dst []float64, row []float32, stride int) bool {
	full := len(row) / gramP
	n8 := len(row) &^ 7
	bad := n8 > 0 && gramBadAVX2(&row[0], n8, maxAbs32)
	for _, v := range row[n8:] {
		bad = bad || !(v <= maxAbs32 && v >= -maxAbs32)
	}
	if full > 0 {
		_ = dst[(full-1)*stride+gramP-1]
		gramPackRowAVX2(&dst[0], &row[0], full, stride)
	}
	gramPackTail(dst, row, full, stride)
	return !bad
}
