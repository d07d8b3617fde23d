//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// gram32KernelAVX2 is the AVX2/FMA assembly version of gram32KernelGo, with
// the same contract and bit-identical results (VFMADD231PS rounds once, as
// fma32). k ≥ 1;
// a points to k rows of 4 values, b to k rows of 24, c to 3·ldc+24 values.
//
//go:noescape
func gram32KernelAVX2(k int, a, b *float32, c *float64, ldc int)

// gram32HasAsm reports whether this CPU and OS support the assembly kernel:
// AVX2 and FMA, with the YMM state saved by the OS (checked by x/sys/cpu).
var gram32HasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// gram32KernelAsm calls the assembly kernel on slices.
func gram32KernelAsm(k int, a, b []float32, c []float64, ldc int) {
	_ = a[gram32MR*k-1]
	_ = b[gram32P*k-1]
	_ = c[(gram32MR-1)*ldc+gram32NR-1]
	gram32KernelAVX2(k, &a[0], &b[0], &c[0], ldc)
}

// gram32PackPanelAVX2 is gram32PackPanelGo in assembly, with the bounds
// of gram32Class as the bit patterns maxBits, hiBits and loBits. rows ≥ 1.
//
//go:noescape
func gram32PackPanelAVX2(dst, dstA, src *float32, rows, ldx, strideA int, maxBits, hiBits, loBits uint32) (bad, wide bool)

// gram32PackPanelAsm calls the assembly routine on slices.
func gram32PackPanelAsm(dst, dstA, src []float32, rows, ldx, strideA int) (bad, wide bool) {
	if rows <= 0 {
		return false, false
	}
	_ = dst[rows*gram32P-1]
	_ = dstA[(gram32P/gram32MR-1)*strideA+rows*gram32MR-1]
	_ = src[(rows-1)*ldx+gram32P-1]
	return gram32PackPanelAVX2(&dst[0], &dstA[0], &src[0], rows, ldx, strideA, gram32MaxBits, gram32HiBits, gram32LoBits)
}
