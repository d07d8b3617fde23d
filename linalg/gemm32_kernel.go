package linalg

// Tiles and blocks of the Float32 products (MulXWtPrecision and
// MulRtXPrecision with Float32, without an installed float32 BLAS). The
// register tile is gemm32MR×gemm32NR = 6×16 float32 (twelve 8-lane
// accumulators), computed by gemm32KernelGo or its AVX2 version, which gives
// the same bits: each product a·b is rounded to float32, then added to its
// float32 accumulator, rounded again (no fused multiply-add). On Zen 3 the
// multiplies and adds go to separate pipes, so this runs at about the speed of
// fused multiply-adds (measured 80–92 against 88–95 GFLOP/s per core for a
// 6×16 FMA tile). A tile is summed from zero over its k steps in float32, then
// converted to float64 and added to C: k is the float32 chunk of the error
// bound.
//
//   - X·Wᵀ: A = rows of X copied (and checked) gemm32MB at a time, a chunk of
//     gemm32KC features each, B = W rounded to float32 and packed in panels
//     of 16 classes; a tile is 6 examples × 16 classes over ≤ gemm32KC
//     features.
//   - Rᵀ·X: A = R rounded to float32 and packed in groups of 6 classes per
//     block of gemmBlockRows rows, B = X copied (and checked) in panels of 16
//     features; a tile is 6 classes × 16 features over ≤ gemmBlockRows rows.
//
// As for the float64 products, the chunks are fixed and each entry is
// computed by one goroutine in one order, so results do not depend on the
// workers count.
const (
	gemm32MR = 6   // rows of a register tile (A values broadcast per step)
	gemm32NR = 16  // columns of a register tile (one packed B panel)
	gemm32KC = 256 // X·Wᵀ: features per float32 chunk (a 16 KiB W panel chunk in L1); = gemmKC, so row norms match Float64's
	gemm32MB = 96  // X·Wᵀ: rows of X per task (16 tiles), fewer for d > 682 so the task's rows (256 KiB at most) stay in L2
)

// gemm32KernelGo computes one 6×16 tile, the rows of B ldb floats apart
// (16 for a packed panel):
//
//	for i < 6, j < 16: s = float32(0); for r < k: s += float32(a[r*sa+i*ia]·b[r*ldb+j]); c[i*ldc+j] += float64(s)
//
// The explicit conversion keeps Go from fusing the multiply-add on any
// architecture, so the result is bit-identical to the AVX2 kernel's.
func gemm32KernelGo(k int, a []float32, ia, sa int, b []float32, ldb int, c []float64, ldc int) {
	_ = a[(k-1)*sa+(gemm32MR-1)*ia]
	b = b[:(k-1)*ldb+gemm32NR]
	_ = c[(gemm32MR-1)*ldc+gemm32NR-1]
	for i := 0; i < gemm32MR; i += 2 {
		for j := 0; j < gemm32NR; j += 4 {
			var s00, s01, s02, s03, s10, s11, s12, s13 float32
			ai := i * ia
			for r := range k {
				a0, a1 := a[ai], a[ai+ia]
				ai += sa
				br := b[ldb*r+j : ldb*r+j+4 : ldb*r+j+4]
				s00 += float32(a0 * br[0])
				s01 += float32(a0 * br[1])
				s02 += float32(a0 * br[2])
				s03 += float32(a0 * br[3])
				s10 += float32(a1 * br[0])
				s11 += float32(a1 * br[1])
				s12 += float32(a1 * br[2])
				s13 += float32(a1 * br[3])
			}
			c0 := c[i*ldc+j : i*ldc+j+4 : i*ldc+j+4]
			c0[0] += float64(s00)
			c0[1] += float64(s01)
			c0[2] += float64(s02)
			c0[3] += float64(s03)
			c1 := c[(i+1)*ldc+j : (i+1)*ldc+j+4 : (i+1)*ldc+j+4]
			c1[0] += float64(s10)
			c1[1] += float64(s11)
			c1[2] += float64(s12)
			c1[3] += float64(s13)
		}
	}
}

// gemm32ConvGo copies src to dst and returns the sum of the squares of src in
// float64 and whether every value is finite and at most MaxAbs in magnitude.
// The squares are summed in the order of gemmConvGo, so a row's norm is the
// same bits in both precisions.
func gemm32ConvGo(dst, src []float32) (ss float64, ok bool) {
	dst = dst[:len(src)]
	ok = true
	var p [8]float64
	n8 := len(src) &^ 7
	for t := 0; t < n8; t += 8 {
		s := src[t : t+8 : t+8]
		d := dst[t : t+8 : t+8]
		for l, v := range s {
			ok = ok && v <= maxAbs32 && v >= -maxAbs32 // false for NaN too
			d[l] = v
			f := float64(v)
			p[l] += f * f
		}
	}
	ss = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]))
	for i := n8; i < len(src); i++ {
		v := src[i]
		ok = ok && v <= maxAbs32 && v >= -maxAbs32
		dst[i] = v
		f := float64(v)
		ss += f * f
	}
	return ss, ok
}

// gemm32Conv runs gemm32ConvGo or its assembly version, which gives the
// same bits.
func gemm32Conv(useAsm bool, dst, src []float32) (float64, bool) {
	if useAsm {
		return gemm32ConvAsm(dst, src)
	}
	return gemm32ConvGo(dst, src)
}

// gemm32PackGo copies a rows×cols block of float32 values (row r at
// src[r*ld:]) into panels of 16 columns: column 16p+j of row r goes to
// dst[16r + p*stride + j], the last panel zero-padded. It reports false if a
// value is NaN, ±Inf or larger than MaxAbs in magnitude.
func gemm32PackGo(dst, src []float32, rows, cols, ld, stride int) bool {
	full := cols / gemm32NR
	ok := true
	for r := range rows {
		row := src[r*ld : r*ld+full*gemm32NR]
		for p := range full {
			out := dst[gemm32NR*r+p*stride : gemm32NR*r+p*stride+gemm32NR]
			for j, v := range row[p*gemm32NR : (p+1)*gemm32NR] {
				ok = ok && v <= maxAbs32 && v >= -maxAbs32 // false for NaN too
				out[j] = v
			}
		}
	}
	if full*gemm32NR < cols {
		ok = gemm32PackTailGo(dst, src, rows, cols, ld, stride) && ok
	}
	return ok
}

// gemm32PackTailGo packs the last, partial panel of gemm32PackGo's block.
func gemm32PackTailGo(dst, src []float32, rows, cols, ld, stride int) bool {
	full := cols / gemm32NR
	ok := true
	for r := range rows {
		out := dst[gemm32NR*r+full*stride : gemm32NR*r+full*stride+gemm32NR]
		rem := src[r*ld+full*gemm32NR : r*ld+cols]
		for j, v := range rem {
			ok = ok && v <= maxAbs32 && v >= -maxAbs32
			out[j] = v
		}
		clear(out[len(rem):])
	}
	return ok
}

// gemm32Pack runs gemm32PackGo or its assembly version.
func gemm32Pack(useAsm bool, dst, src []float32, rows, cols, ld, stride int) bool {
	if useAsm {
		return gemm32PackAsm(dst, src, rows, cols, ld, stride)
	}
	return gemm32PackGo(dst, src, rows, cols, ld, stride)
}

// gemm32Kernel runs one register tile with the selected kernel.
func gemm32Kernel(useAsm bool, k int, a []float32, ia, sa int, b []float32, c []float64, ldc int) {
	gemm32KernelLd(useAsm, k, a, ia, sa, b, gemm32NR, c, ldc)
}

// gemm32KernelLd is gemm32Kernel with the rows of B ldb floats apart, as
// ScoreGradRows reads a block's rows in place.
func gemm32KernelLd(useAsm bool, k int, a []float32, ia, sa int, b []float32, ldb int, c []float64, ldc int) {
	if useAsm {
		gemm32KernelAsm(k, a, ia, sa, b, ldb, c, ldc)
	} else {
		gemm32KernelGo(k, a, ia, sa, b, ldb, c, ldc)
	}
}
