//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// gemmHasAsm reports whether this CPU and OS support the assembly GEMM
// kernels: AVX2 and FMA, with the YMM state saved by the OS.
var gemmHasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// gemmKernelAVX2 is the AVX2/FMA version of gemmKernelGo, fusing each
// multiply-add (see gemmKernelGo). k ≥ 1.
//
//go:noescape
func gemmKernelAVX2(k int, a *float64, ia, sa int, b, c *float64, ldc int)

// gemmConvAVX2 is the vector part of gemmConvGo: n is a multiple of 8.
//
//go:noescape
func gemmConvAVX2(dst *float64, src *float32, n int, limit float32) (ss float64, bad bool)

// gemmPackAVX2 is the vector part of gemmPackGo: whole panels only.
//
//go:noescape
func gemmPackAVX2(dst *float64, src *float32, rows, panels, ld, stride int, limit float32) (bad bool)

// gemmPackAsm is gemmPackGo with the assembly routine for the whole panels.
func gemmPackAsm(dst []float64, src []float32, rows, cols, ld, stride int) bool {
	full := cols / gemmNR
	bad := false
	if full > 0 && rows > 0 {
		_ = dst[gemmNR*(rows-1)+(full-1)*stride+gemmNR-1]
		_ = src[(rows-1)*ld+full*gemmNR-1]
		bad = gemmPackAVX2(&dst[0], &src[0], rows, full, ld, stride, maxAbs32)
	}
	if full*gemmNR < cols {
		bad = !gemmPackTailGo(dst, src, rows, cols, ld, stride) || bad
	}
	return !bad
}

// gemmKernelAsm calls the assembly kernel on slices, checking their extent.
func gemmKernelAsm(k int, a []float64, ia, sa int, b, c []float64, ldc int) {
	_ = a[(k-1)*sa+3*ia]
	_ = b[gemmNR*k-1]
	_ = c[(gemmMR-1)*ldc+gemmNR-1]
	gemmKernelAVX2(k, &a[0], ia, sa, &b[0], &c[0], ldc)
}

// gemmConvAsm is gemmConvGo with the assembly routine, bit for bit.
func gemmConvAsm(dst []float64, src []float32) (ss float64, ok bool) {
	n8 := len(src) &^ 7
	bad := false
	if n8 > 0 {
		_ = dst[n8-1]
		ss, bad = gemmConvAVX2(&dst[0], &src[0], n8, maxAbs32)
	}
	dst = dst[:len(src)]
	for i := n8; i < len(src); i++ {
		v := src[i]
		bad = bad || !(v <= maxAbs32 && v >= -maxAbs32)
		f := float64(v)
		dst[i] = f
		ss += f * f
	}
	return ss, !bad
}
