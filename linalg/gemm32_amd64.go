//go:build amd64 && !purego

package linalg

// gemm32KernelAVX2 is the AVX2 version of gemm32KernelGo, bit for bit: each
// product and each sum is rounded to float32 (VMULPS, then VADDPS; no fused
// multiply-add). k ≥ 1. It runs when gemmHasAsm (AVX2 and FMA) is true.
//
//go:noescape
func gemm32KernelAVX2(k int, a *float32, ia, sa int, b *float32, ldb int, c *float64, ldc int)

// gemm32ConvAVX2 is the vector part of gemm32ConvGo: n is a multiple of 8.
//
//go:noescape
func gemm32ConvAVX2(dst, src *float32, n int, limit float32) (ss float64, bad bool)

// gemm32PackAVX2 is the vector part of gemm32PackGo: whole panels only.
//
//go:noescape
func gemm32PackAVX2(dst, src *float32, rows, panels, ld, stride int, limit float32) (bad bool)

// gemm32KernelAsm calls the assembly kernel on slices, checking their extent.
func gemm32KernelAsm(k int, a []float32, ia, sa int, b []float32, ldb int, c []float64, ldc int) {
	_ = a[(k-1)*sa+(gemm32MR-1)*ia]
	_ = b[(k-1)*ldb+gemm32NR-1]
	_ = c[(gemm32MR-1)*ldc+gemm32NR-1]
	gemm32KernelAVX2(k, &a[0], ia, sa, &b[0], ldb, &c[0], ldc)
}

// gemm32ConvAsm is gemm32ConvGo with the assembly routine, bit for bit.
func gemm32ConvAsm(dst, src []float32) (ss float64, ok bool) {
	n8 := len(src) &^ 7
	bad := false
	if n8 > 0 {
		_ = dst[n8-1]
		ss, bad = gemm32ConvAVX2(&dst[0], &src[0], n8, maxAbs32)
	}
	dst = dst[:len(src)]
	for i := n8; i < len(src); i++ {
		v := src[i]
		bad = bad || !(v <= maxAbs32 && v >= -maxAbs32)
		dst[i] = v
		f := float64(v)
		ss += f * f
	}
	return ss, !bad
}

// gemm32PackAsm is gemm32PackGo with the assembly routine for the whole
// panels.
func gemm32PackAsm(dst, src []float32, rows, cols, ld, stride int) bool {
	full := cols / gemm32NR
	bad := false
	if full > 0 && rows > 0 {
		_ = dst[gemm32NR*(rows-1)+(full-1)*stride+gemm32NR-1]
		_ = src[(rows-1)*ld+full*gemm32NR-1]
		bad = gemm32PackAVX2(&dst[0], &src[0], rows, full, ld, stride, maxAbs32)
	}
	if full*gemm32NR < cols {
		bad = !gemm32PackTailGo(dst, src, rows, cols, ld, stride) || bad
	}
	return !bad
}
