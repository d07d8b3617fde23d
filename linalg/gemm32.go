package linalg

import (
	"math"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// gemm32RoundBytes bounds the float32 copy of R that MulRtXPrecision's
// Float32 kernel path holds at a time: R is rounded to float32 a round of
// row blocks at a time (all workers then share it), 4 MiB at most, but at
// least one block of gemmBlockRows rows.
var gemm32RoundBytes = 4 << 20 // a variable so tests can force several rounds

// MulXWtPrecision sets dst = X·Wᵀ, the n×K scores of a linear model with
// weights W (K×d) on the float32 rows of X (n×d), in precision p, and, if
// norms is not nil, sets norms[i] to ‖x_i‖ as MulXWtNorms does (float64,
// bit-identical to MulXWtNorms' for either precision).
//
// With Float64 it is MulXWt (or MulXWtNorms), bit for bit. With Float32 the
// entries of W are rounded to float32 (relative error 2⁻²⁴), and each score
// is summed over chunks of at most 256 features: within a chunk the products
// and their sum are float32 (each rounded, not fused), and the chunk sums are
// added in float64 in feature order. The error of a score s_il is then at
// most 258·2⁻²⁴ ≈ 1.5·10⁻⁵ of Σ_j |x_ij·w_lj| (measured: at most 3·10⁻⁷,
// median 10⁻⁸–5·10⁻⁸ of it, on Gaussian data),
// plus, for products or weights below float32's normal range (2⁻¹²⁶), an
// absolute 2⁻¹⁴⁹ per underflowing operation. The kernel is AVX2 assembly on
// amd64 and pure Go elsewhere or with the purego build tag; both give the
// same bits, and the result is bit-identical for every workers count (row
// blocks are spread over workers goroutines, 0 means GOMAXPROCS).
//
// If a float32 BLAS has been installed with blas32.Use (UseOpenBLAS does),
// Float32 calls its Sgemm on blocks of rows of X in place (no conversion),
// one call per chunk of at most 256 features, and adds the chunks in float64:
// the same error bound, with the BLAS's own summation order (results are then
// reproducible as far as that BLAS is).
//
// Float32 never overflows silently: a weight beyond float32's range, or a
// float32 product or sum that overflows, makes the whole product computed
// again in Float64. Errors wrap ErrNonFinite for a NaN, ±Inf or over-large
// (|x| > MaxAbs) entry of X or a NaN or ±Inf entry of W, ErrEmpty for empty
// inputs, ErrShape for mismatched dimensions or a norms slice of the wrong
// length, and ErrParam for an unknown precision or negative workers. dst
// must be n×K or empty (then it is resized); it is overwritten and must not
// share memory with w; on error it is unspecified.
func MulXWtPrecision(dst *mat.Dense, norms []float64, x *Matrix32, w *mat.Dense, workers int, p Precision) error {
	if err := p.check(); err != nil {
		return err
	}
	dr, wr, err := mulXWtPrepare(dst, norms, x, w)
	if err != nil {
		return err
	}
	if p == Float64 {
		return mulXWt64(dr, norms, x, wr, workers)
	}
	var over bool
	if gemmUseBLAS32() {
		over, err = mulXWtBLAS32(dr, norms, x, wr, workers)
	} else {
		over, err = mulXWt32(dr, norms, x, wr, workers)
	}
	if err != nil || !over {
		return err
	}
	return mulXWt64(dr, norms, x, wr, workers)
}

// MulRtXPrecision sets dst = Rᵀ·X, the K×d matrix Σ_i r_i x_iᵀ (the gradient
// of a summed loss whose residuals on the float32 rows of X, n×d, are R,
// n×K), in precision p.
//
// With Float64 it is MulRtX, bit for bit. With Float32 the entries of R are
// rounded to float32 (relative error 2⁻²⁴) one block of rows at a time, and
// each entry is summed over the fixed blocks of 256 rows (gemmBlockRows):
// within a block the products and their sum are float32 (each rounded, not
// fused), and the block sums are added in float64 in block order. The error
// of an entry g_lj is then at most 258·2⁻²⁴ ≈ 1.5·10⁻⁵ of Σ_i |r_il·x_ij|
// (measured: at most 3·10⁻⁷, median 10⁻⁸–5·10⁻⁸ of it, on Gaussian data),
// plus an absolute 2⁻¹⁴⁹ per operation that
// underflows float32's normal range (2⁻¹²⁶). The kernel is AVX2 assembly on
// amd64 and pure Go elsewhere or with the purego build tag; both give the
// same bits, and the result is bit-identical for every workers count (the
// columns of dst are spread over workers goroutines, 0 means GOMAXPROCS).
//
// If a float32 BLAS has been installed with blas32.Use (UseOpenBLAS does),
// Float32 calls its Sgemm once per block of 256 rows, on a float32 copy of
// R's block and X's block in place, and adds the blocks in float64 in block
// order: the same bound, with the BLAS's own order within a block (results
// are then reproducible as far as that BLAS is).
//
// Float32 never overflows silently: an entry of R beyond float32's range, or
// a float32 product or sum that overflows, makes the whole product computed
// again in Float64. Errors are as for MulXWtPrecision, with R in place of W;
// dst must be K×d or empty, is overwritten and must not share memory with r.
func MulRtXPrecision(dst *mat.Dense, r *mat.Dense, x *Matrix32, workers int, p Precision) error {
	if err := p.check(); err != nil {
		return err
	}
	dr, rr, err := mulRtXPrepare(dst, r, x)
	if err != nil {
		return err
	}
	if p == Float64 {
		if err := gemmCheckR(rr, workers); err != nil {
			return err
		}
		return mulRtX64(dr, rr, x, workers)
	}
	// The Float32 paths check R as they round it to float32: an entry that
	// does not fit (NaN, ±Inf or beyond float32's range) sends them here.
	var over bool
	if gemmUseBLAS32() {
		over, err = mulRtXBLAS32(dr, rr, x, workers)
	} else {
		over, err = mulRtX32(dr, rr, x, workers)
	}
	if err != nil || !over {
		return err
	}
	if err := gemmCheckR(rr, workers); err != nil {
		return err
	}
	return mulRtX64(dr, rr, x, workers)
}

// gemm32Fits reports whether v can be rounded to float32 without overflow
// (false for NaN and ±Inf too).
func gemm32Fits(v float64) bool { return math.Abs(v) <= math.MaxFloat32 }

// gemmFinite64 reports whether every value of v is finite.
func gemmFinite64(v []float64) bool {
	for _, f := range v {
		if f-f != 0 { // NaN for ±Inf and NaN
			return false
		}
	}
	return true
}

// mulXWt32 is MulXWtPrecision's Float32 path on linalg's kernels, on checked
// arguments. It reports over = true, with dst unspecified, if W does not fit
// float32 or a float32 sum overflowed; the caller then computes in Float64.
func mulXWt32(dr blas64.General, norms []float64, x *Matrix32, wr blas64.General, workers int) (over bool, err error) {
	n, d, k := x.Rows, x.Cols, wr.Rows
	// Rows per task: gemm32MB, fewer for wide rows, so that a task's rows,
	// copied whole, stay within 256 KiB (in L2).
	mbTask := max(gemm32MR, min(gemm32MB, (1<<16)/d/gemm32MR*gemm32MR))
	tasks := (n + mbTask - 1) / mbTask
	nw, err := gemmResolveWorkers(workers, tasks)
	if err != nil {
		return false, err
	}
	useAsm := gemmUseAsm

	// W rounded to float32 and packed in panels of 16 classes,
	// feature-major: wp[p*16*d + 16r + j] = W[16p+j, r], zero past K.
	kp := (k + gemm32NR - 1) / gemm32NR
	ldc := kp * gemm32NR
	wpp := gemm32Get(kp * gemm32NR * d)
	defer gemm32Put(wpp)
	wp := *wpp
	clear(wp)
	for l := range k {
		p, j := l/gemm32NR, l%gemm32NR
		panel := wp[p*gemm32NR*d:]
		for r, v := range wr.Data[l*wr.Stride : l*wr.Stride+d] {
			if !gemm32Fits(v) {
				return true, nil
			}
			panel[gemm32NR*r+j] = float32(v)
		}
	}

	type scratch struct {
		a     []float32
		c, ss []float64
	}
	bufs := make([]scratch, nw)
	held32 := make([]*[]float32, 0, nw)
	held := make([]*[]float64, 0, 2*nw)
	defer func() { gemm32Put(held32...); gemmPut(held...) }()
	mbMax := min(mbTask, n)
	mbPad := (mbMax + gemm32MR - 1) / gemm32MR * gemm32MR
	var bad, overflow atomic.Bool
	var mu sync.Mutex
	_ = gemmParallel(tasks, nw, func(t, g int) error {
		s := &bufs[g]
		if s.a == nil {
			pa, pc, ps := gemm32Get(mbPad*d), gemmGet(mbPad*ldc), gemmGet(mbPad)
			s.a, s.c, s.ss = *pa, *pc, *ps
			mu.Lock()
			held32 = append(held32, pa)
			held = append(held, pc, ps)
			mu.Unlock()
		}
		i0 := t * mbTask
		mb := min(mbTask, n-i0)
		mp := (mb + gemm32MR - 1) / gemm32MR * gemm32MR
		c := s.c[:mp*ldc]
		clear(c)
		// The task's rows, copied (and checked, and their squares summed
		// chunk by chunk, as MulXWtNorms does) in one sequential pass over
		// X; chunk c0 of row i goes to a[c0*mp + i*kc:], so that each
		// chunk's rows are contiguous, zero rows padding the last tile.
		a := s.a[:mp*d]
		for i := range mb {
			var ss float64
			for c0 := 0; c0 < d; c0 += gemm32KC {
				kc := min(gemm32KC, d-c0)
				row := x.Data[(i0+i)*d+c0 : (i0+i)*d+c0+kc]
				v, ok := gemm32Conv(useAsm, a[c0*mp+i*kc:c0*mp+(i+1)*kc], row)
				if !ok {
					bad.Store(true)
				}
				ss += v
			}
			s.ss[i] = ss
		}
		for c0 := 0; c0 < d; c0 += gemm32KC {
			kc := min(gemm32KC, d-c0)
			a := a[c0*mp : c0*mp+mp*kc]
			clear(a[mb*kc:]) // zero rows padding the last register tile
			for p := range kp {
				b := wp[p*gemm32NR*d+gemm32NR*c0:]
				for i := 0; i < mp; i += gemm32MR {
					gemm32Kernel(useAsm, kc, a[i*kc:], kc, 1, b, c[i*ldc+p*gemm32NR:], ldc)
				}
			}
		}
		for i := range mb {
			row := c[i*ldc : i*ldc+k]
			if !gemmFinite64(row) {
				overflow.Store(true)
			}
			copy(dr.Data[(i0+i)*dr.Stride:(i0+i)*dr.Stride+k], row)
			if norms != nil {
				norms[i0+i] = math.Sqrt(s.ss[i])
			}
		}
		return nil
	})
	if bad.Load() {
		return false, x.Check() // reports the first bad entry, whichever goroutine met one
	}
	return overflow.Load(), nil
}

// mulRtX32 is MulRtXPrecision's Float32 path on linalg's kernels, on checked
// arguments (except R's values). It reports over = true, with dst
// unspecified, if an entry of R does not fit float32 (NaN, ±Inf or beyond
// float32's range) or a float32 sum overflowed; the caller then checks R and
// computes in Float64.
//
// Rows go in rounds of whole blocks of gemmBlockRows rows: first R's rows of
// the round are rounded to float32 and packed in groups of 6 classes (block
// by block, over the workers), then the feature panels of dst are spread
// over the workers, each of which packs its panels of X's rows block by block
// and adds each block's 6×16 float32 tiles into a float64 buffer. How rows
// are grouped into rounds and panels into tasks changes nothing in the
// arithmetic of any entry.
func mulRtX32(dr, rr blas64.General, x *Matrix32, workers int) (over bool, err error) {
	n, d, k := x.Rows, x.Cols, rr.Cols
	useAsm := gemmUseAsm
	kg := (k + gemm32MR - 1) / gemm32MR
	np := (d + gemm32NR - 1) / gemm32NR
	nw, err := gemmResolveWorkers(workers, np)
	if err != nil {
		return false, err
	}
	pp := min(16, max(1, (np+4*nw-1)/(4*nw)))
	tasks := (np + pp - 1) / pp
	nwTasks := min(nw, tasks)
	ldc := np * gemm32NR
	cpp := gemmGet(kg * gemm32MR * ldc)
	defer gemmPut(cpp)
	cp := *cpp
	clear(cp)

	blocks := (n + gemmBlockRows - 1) / gemmBlockRows
	const groupLen = gemmBlockRows * gemm32MR
	blockLen := kg * groupLen
	roundBlocks := max(1, min(blocks, gemm32RoundBytes/(4*blockLen)))
	rap := gemm32Get(roundBlocks * blockLen)
	defer gemm32Put(rap)
	ra := *rap

	kcMax := min(gemmBlockRows, n)
	packs := make([]*[]float32, nwTasks) // packs[g] is worker g's
	defer func() { gemm32Put(packs...) }()
	var bad, overflow atomic.Bool
	for b0 := 0; b0 < blocks; b0 += roundBlocks {
		b1 := min(b0+roundBlocks, blocks)
		// R's blocks of the round, rounded to float32: group gi of block j
		// at ra[j*blockLen + gi*groupLen:], row r's 6 classes at 6r.
		_ = gemmParallel(b1-b0, min(nw, b1-b0), func(j, _ int) error {
			i0 := (b0 + j) * gemmBlockRows
			kb := min(gemmBlockRows, n-i0)
			out := ra[j*blockLen : (j+1)*blockLen]
			ok := true
			for r := range kb {
				row := rr.Data[(i0+r)*rr.Stride : (i0+r)*rr.Stride+k]
				for gi := range kg {
					src := row[gi*gemm32MR : min(gi*gemm32MR+gemm32MR, k)]
					dst := out[gi*groupLen+gemm32MR*r : gi*groupLen+gemm32MR*r+gemm32MR]
					for i, v := range src {
						ok = ok && v <= math.MaxFloat32 && v >= -math.MaxFloat32 // false for NaN too
						dst[i] = float32(v)
					}
					clear(dst[len(src):])
				}
			}
			if !ok {
				overflow.Store(true)
			}
			return nil
		})
		if overflow.Load() {
			return true, nil
		}
		_ = gemmParallel(tasks, nwTasks, func(t, g int) error {
			if packs[g] == nil {
				packs[g] = gemm32Get(pp * gemm32NR * kcMax)
			}
			pack := *packs[g]
			p0 := t * pp
			p1 := min(p0+pp, np)
			c0, c1 := p0*gemm32NR, min(p1*gemm32NR, d)
			for j := range b1 - b0 {
				i0 := (b0 + j) * gemmBlockRows
				kb := min(gemmBlockRows, n-i0)
				stride := gemm32NR * kb
				if !gemm32Pack(useAsm, pack, x.Data[i0*d+c0:], kb, c1-c0, d, stride) {
					bad.Store(true)
				}
				// Class groups outside, panels inside, as in MulRtX: the
				// group's 6 columns of R (6 KiB) stay in L1 while the
				// task's panels stream from L2.
				for gi := range kg {
					a := ra[j*blockLen+gi*groupLen:]
					for q := range p1 - p0 {
						b := pack[q*stride : (q+1)*stride]
						gemm32Kernel(useAsm, kb, a, 1, gemm32MR, b, cp[gi*gemm32MR*ldc+c0+q*gemm32NR:], ldc)
					}
				}
			}
			return nil
		})
		if bad.Load() {
			return false, x.Check()
		}
	}
	for l := range k {
		row := cp[l*ldc : l*ldc+d]
		if !gemmFinite64(row) {
			return true, nil
		}
		copy(dr.Data[l*dr.Stride:l*dr.Stride+d], row)
	}
	return false, nil
}
