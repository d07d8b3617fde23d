package linalg

import "sync"

// Tiles and blocks of MulXWt and MulRtX. The register tile is gemmMR×gemmNR
// = 4×12 float64 (twelve 4-wide accumulators), computed by gemmKernelGo or its
// AVX2/FMA version: the B operand is always a packed panel of 12 columns,
// row by row, and the four A values of a step are broadcast from any fixed
// pair of strides, so one kernel serves both products:
//
//   - MulXWt: A = rows of X converted to float64 (4 rows of a block, stride
//     along a row 1), B = W packed in panels of 12 classes; a tile is 4
//     examples × 12 classes, summed over a chunk of gemmKC features.
//   - MulRtX: A = R read in place (4 classes of one row, stride to the next
//     row), B = X converted to float64 and packed in panels of 12 features; a
//     tile is 4 classes × 12 features, summed over a block of gemmBlockRows
//     examples.
//
// The chunking of the summed dimension (gemmKC features, gemmBlockRows
// examples) is fixed, and each output entry is computed by one goroutine,
// always in the same order: the results do not depend on the number of
// workers nor on how the output is split among them.
const (
	gemmMR = 4   // rows of a register tile (A values broadcast per step)
	gemmNR = 12  // columns of a register tile (one packed B panel)
	gemmKC = 256 // MulXWt: features per chunk (a 24 KiB W panel chunk stays in L1)
	gemmMB = 64  // MulXWt: rows of X per task (a 128 KiB converted chunk stays in L2)
)

// gemmKernelGo computes one 4×12 tile:
//
//	for i < 4, j < 12: s = 0; for r < k: s += a[r*sa+i*ia]·b[12r+j]; c[i*ldc+j] += s
//
// The assembly kernel fuses each multiply-add, which the Go compiler does not
// do on amd64, so the two agree to rounding, not bit for bit; each is
// deterministic on its own.
func gemmKernelGo(k int, a []float64, ia, sa int, b, c []float64, ldc int) {
	_ = a[(k-1)*sa+3*ia]
	b = b[:gemmNR*k]
	_ = c[(gemmMR-1)*ldc+gemmNR-1]
	for i := 0; i < gemmMR; i += 2 {
		for j := 0; j < gemmNR; j += 4 {
			var s00, s01, s02, s03, s10, s11, s12, s13 float64
			ai := i * ia
			for r := range k {
				a0, a1 := a[ai], a[ai+ia]
				ai += sa
				br := b[gemmNR*r+j : gemmNR*r+j+4 : gemmNR*r+j+4]
				s00 += a0 * br[0]
				s01 += a0 * br[1]
				s02 += a0 * br[2]
				s03 += a0 * br[3]
				s10 += a1 * br[0]
				s11 += a1 * br[1]
				s12 += a1 * br[2]
				s13 += a1 * br[3]
			}
			c0 := c[i*ldc+j : i*ldc+j+4 : i*ldc+j+4]
			c0[0] += s00
			c0[1] += s01
			c0[2] += s02
			c0[3] += s03
			c1 := c[(i+1)*ldc+j : (i+1)*ldc+j+4 : (i+1)*ldc+j+4]
			c1[0] += s10
			c1[1] += s11
			c1[2] += s12
			c1[3] += s13
		}
	}
}

// gemmConvGo converts src to float64 in dst and returns the sum of the
// squares and whether every value is finite and at most MaxAbs in magnitude.
// The squares are summed in eight lanes, lane l taking src[8t+l], then
// combined as ((p0+p4)+(p1+p5))+((p2+p6)+(p3+p7)), and the values past the
// last multiple of 8 are added in order: the order of the assembly version,
// which gives the same bits (squares of float32 values are exact).
func gemmConvGo(dst []float64, src []float32) (ss float64, ok bool) {
	dst = dst[:len(src)]
	ok = true
	var p [8]float64
	n8 := len(src) &^ 7
	for t := 0; t < n8; t += 8 {
		s := src[t : t+8 : t+8]
		d := dst[t : t+8 : t+8]
		for l, v := range s {
			ok = ok && v <= maxAbs32 && v >= -maxAbs32 // false for NaN too
			f := float64(v)
			d[l] = f
			p[l] += f * f
		}
	}
	ss = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]))
	for i := n8; i < len(src); i++ {
		v := src[i]
		ok = ok && v <= maxAbs32 && v >= -maxAbs32
		f := float64(v)
		dst[i] = f
		ss += f * f
	}
	return ss, ok
}

// gemmPackGo converts a rows×cols block of float32 values (row r at
// src[r*ld:]) to float64 panels of 12 columns: column 12p+j of row r goes to
// dst[12r + p*stride + j], the last panel zero-padded. It reports false if a
// value is NaN, ±Inf or larger than MaxAbs in magnitude.
func gemmPackGo(dst []float64, src []float32, rows, cols, ld, stride int) bool {
	full := cols / gemmNR
	ok := true
	for r := range rows {
		row := src[r*ld : r*ld+full*gemmNR]
		for p := range full {
			out := dst[gemmNR*r+p*stride : gemmNR*r+p*stride+gemmNR]
			for j, v := range row[p*gemmNR : (p+1)*gemmNR] {
				ok = ok && v <= maxAbs32 && v >= -maxAbs32 // false for NaN too
				out[j] = float64(v)
			}
		}
	}
	if full*gemmNR < cols {
		ok = gemmPackTailGo(dst, src, rows, cols, ld, stride) && ok
	}
	return ok
}

// gemmPackTailGo packs the last, partial panel of gemmPackGo's block.
func gemmPackTailGo(dst []float64, src []float32, rows, cols, ld, stride int) bool {
	full := cols / gemmNR
	ok := true
	for r := range rows {
		out := dst[gemmNR*r+full*stride : gemmNR*r+full*stride+gemmNR]
		rem := src[r*ld+full*gemmNR : r*ld+cols]
		for j, v := range rem {
			ok = ok && v <= maxAbs32 && v >= -maxAbs32
			out[j] = float64(v)
		}
		clear(out[len(rem):])
	}
	return ok
}

// bufPool recycles slices of T across calls, so that the many small products
// of minibatch DP-SGD do not allocate (and zero) their buffers each time.
// Buffers come back with arbitrary contents: every user clears or overwrites
// what it reads.
type bufPool[T float32 | float64] struct{ pool sync.Pool }

// get returns a slice of length n, reused if one large enough is pooled.
func (s *bufPool[T]) get(n int) *[]T {
	if p, ok := s.pool.Get().(*[]T); ok {
		if cap(*p) >= n {
			*p = (*p)[:n]
			return p
		}
		s.pool.Put(p)
	}
	b := make([]T, n)
	return &b
}

// put returns buffers to the pool; nil entries are skipped.
func (s *bufPool[T]) put(ps ...*[]T) {
	for _, p := range ps {
		if p != nil {
			s.pool.Put(p)
		}
	}
}

// gemmScratch holds the float64 packing and accumulation buffers of the
// products, gemm32Scratch the float32 ones of the Float32 products.
var (
	gemmScratch   bufPool[float64]
	gemm32Scratch bufPool[float32]
)

// gemmGet and gemmPut take and return float64 buffers, gemm32Get and
// gemm32Put float32 ones.
func gemmGet(n int) *[]float64   { return gemmScratch.get(n) }
func gemmPut(ps ...*[]float64)   { gemmScratch.put(ps...) }
func gemm32Get(n int) *[]float32 { return gemm32Scratch.get(n) }
func gemm32Put(ps ...*[]float32) { gemm32Scratch.put(ps...) }
