//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// gram32KernelAVX2 is the AVX2 assembly version of gram32KernelGo, with the
// same contract and bit-identical results (unfused VMULPS and VADDPS). k ≥ 1;
// a and b point to k rows of stride 24 (4 and 24 values used), c to
// 3·ldc+24 values.
//
//go:noescape
func gram32KernelAVX2(k int, a, b *float32, c *float64, ldc int)

// gram32HasAsm reports whether this CPU and OS support the assembly kernel:
// AVX2, with the YMM state saved by the OS (checked by x/sys/cpu).
var gram32HasAsm = cpu.X86.HasAVX2

// gram32KernelAsm calls the assembly kernel on slices.
func gram32KernelAsm(k int, a, b []float32, c []float64, ldc int) {
	_ = a[gram32P*(k-1)+gram32MR-1]
	_ = b[gram32P*k-1]
	_ = c[(gram32MR-1)*ldc+gram32NR-1]
	gram32KernelAVX2(k, &a[0], &b[0], &c[0], ldc)
}

// gram32PackRowAVX2 copies panels groups of 24 float32 values from src to
// dst, dst advancing by stride values per group, and reports whether one of
// them has its magnitude's bits (sign cleared) above maxBits (bad), and
// whether one is above hiBits or nonzero below loBits (wide).
//
//go:noescape
func gram32PackRowAVX2(dst, src *float32, panels, stride int, maxBits, hiBits, loBits uint32) (bad, wide bool)

// gram32PackRowAsm is gram32PackRowGo with the assembly routine.
func gram32PackRowAsm(dst, row []float32, stride int) (bad, wide bool) {
	full := len(row) / gram32P
	if full > 0 {
		_ = dst[(full-1)*stride+gram32P-1]
		bad, wide = gram32PackRowAVX2(&dst[0], &row[0], full, stride, gram32MaxBits, gram32HiBits, gram32LoBits)
	}
	for _, v := range row[full*gram32P:] {
		b, w := gram32Class(v)
		bad, wide = bad || b, wide || w
	}
	gram32PackTail(dst, row, full, stride)
	return bad, wide
}
