//go:build amd64 && !purego

package linalg

// rowsPrefetchT0 issues a PREFETCHT0 for each 64-byte line of the n float32
// values at p (n ≥ 1).
//
//go:noescape
func rowsPrefetchT0(p *float32, n int)

// rowsPrefetch asks for the cache lines of row to be brought into the cache
// ahead of their use. It only hints: no value changes, and nothing faults.
func rowsPrefetch(row []float32) {
	if len(row) > 0 {
		rowsPrefetchT0(&row[0], len(row))
	}
}

// rowsConv64AVX2 is the vector part of gemmConvGo (n a multiple of 8), as
// gemmConvAVX2, bit for bit.
//
//go:noescape
func rowsConv64AVX2(dst *float64, src *float32, n int, limit float32) (ss float64, bad bool)

// rowsConv32AVX2 is the vector part of gemm32ConvGo (n a multiple of 8), as
// gemm32ConvAVX2, bit for bit.
//
//go:noescape
func rowsConv32AVX2(dst, src *float32, n int, limit float32) (ss float64, bad bool)

// rowsConv64 is gemmConv for the fused step: gemmConvGo, or its assembly
// version, which gives the same bits.
func rowsConv64(useAsm bool, dst []float64, src []float32) (ss float64, ok bool) {
	if !useAsm {
		return gemmConvGo(dst, src)
	}
	n8 := len(src) &^ 7
	bad := false
	if n8 > 0 {
		_ = dst[n8-1]
		ss, bad = rowsConv64AVX2(&dst[0], &src[0], n8, maxAbs32)
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

// rowsConv32 is gemm32Conv for the fused step: gemm32ConvGo, or its
// assembly version, which gives the same bits.
func rowsConv32(useAsm bool, dst, src []float32) (ss float64, ok bool) {
	if !useAsm {
		return gemm32ConvGo(dst, src)
	}
	n8 := len(src) &^ 7
	bad := false
	if n8 > 0 {
		_ = dst[n8-1]
		ss, bad = rowsConv32AVX2(&dst[0], &src[0], n8, maxAbs32)
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
