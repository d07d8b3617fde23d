package linalg

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"
)

// Blocks of ScoreGradRows. A block of rowsBlock rows is converted, scored,
// handed to the callback and accumulated into the gradient while it is in
// cache; the gradient of each segment of rowsSegment rows is summed into its
// own partial, and the partials are added in segment order. Both sizes are
// fixed, so the arithmetic of every entry depends on the number of rows alone,
// never on the number of workers.
const (
	rowsBlock   = 32 // rows per block: 32·d float64s (200 KiB at d = 784) stay in L2
	rowsSegment = 64 // rows per gradient partial (a task of the parallel loop)
)

// A RowsFunc receives one block of ScoreGradRows' scores and returns, in
// place, the block's residual weights. On entry s[i*stride+l] is the score
// x_jᵀw_l of class l (l < K) for the example j = first+i of the selection
// (i < len(norms)), and norms[i] is ‖x_j‖, accumulated in float64. On return
// s[i*stride+l] must hold the weight r_jl of x_j in row l of the gradient.
// Entries of s past K in a row are ignored and may be overwritten. A non-nil
// error stops ScoreGradRows, which returns the error of the lowest failing
// block. A RowsFunc may be called concurrently for different blocks; each
// call must write only what belongs to its rows.
type RowsFunc func(first int, s []float64, stride int, norms []float64) error

// RowsWork holds the scratch of ScoreGradRows. Keeping one across calls (as a
// DP-SGD loop keeps it across steps) means a call allocates nothing once the
// shapes have been seen. The zero value is ready to use. Not safe for
// concurrent use.
type RowsWork struct {
	wp   []float64     // W in panels of 12 classes, feature-major
	part []float64     // per-segment gradient partials, each lda×ldc (transposed)
	bufs []rowsScratch // per worker
	errs []error       // per segment
	job  rowsJob       // the arguments of the current call
}

// rowsJob holds one ScoreGradRows call's arguments, so that its segments run
// as a method rather than a closure (which would be allocated per call).
type rowsJob struct {
	x                *Matrix32
	rows             []int
	f                RowsFunc
	ws               *RowsWork
	m, d, k          int
	kp, ldc, lda, mp int
	useAsm           bool
}

type rowsScratch struct {
	a     []float64 // rowsBlock×lda converted rows, row-major, zero-padded
	c     []float64 // rowsBlock×ldc scores, then residual weights
	rp    []float64 // residual weights in panels of 12 classes (K > 12)
	norms []float64
}

// rowsGrow returns (*buf)[:n], reallocating when the capacity is too small.
func rowsGrow(buf *[]float64, n int) []float64 {
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	return (*buf)[:n]
}

// ScoreGradScratch returns the number of float64s of scratch ScoreGradRows
// holds in its RowsWork for m selected rows, d features and K classes, most
// of it the per-segment gradient partials. Callers use it to choose between
// ScoreGradRows and the two GEMMs MulXWtNorms and MulRtX.
func ScoreGradScratch(m, d, k int) int {
	lda := (d + gemmMR - 1) / gemmMR * gemmMR
	kp := (k + gemmNR - 1) / gemmNR
	segs := (m + rowsSegment - 1) / rowsSegment
	return segs*lda*kp*gemmNR + kp*gemmNR*d
}

// ScoreGradRows computes, in one pass over the selected rows of X, the scores
// of a linear model and a gradient whose residuals depend on them: the
// forward and backward products of a minibatch step, fused.
//
// The selection is the rows rows[0], rows[1], … of X (n×d, float32), or all
// n rows in order if rows is nil; a row may be selected more than once. For
// each block of 32 consecutive selected rows X_b, ScoreGradRows computes
// the scores S_b = X_b·Wᵀ (W is K×d) and the row norms, calls f with them,
// and adds R_bᵀ·X_b to the gradient, where R_b is what f left in S_b. On
// return dst (K×d, or empty and then resized; overwritten) holds Σ_b R_bᵀ·X_b
// = Rᵀ·X_sel.
//
// Each row is read from X once and converted to float64 once; products and
// sums are float64. The scores are computed exactly as MulXWt computes them
// (chunks of 256 features, each a chain of fused multiply-adds in feature
// order, added in chunk order), so they equal MulXWt's bit for bit when both
// use the same kernel (not an installed BLAS: ScoreGradRows always uses
// dpopt's own kernels). The gradient sums each block's rows in order, the
// blocks of a 64-row segment in order, and the segments' partials in order,
// so its error is that of float64 summation of m terms; it differs from
// MulRtX's (which sums 256-row blocks) in rounding only.
//
// Segments are spread over workers goroutines (0 means GOMAXPROCS); the
// result, and every value f sees, is bit-identical for any workers count.
// Scratch of ScoreGradScratch(m, d, K) float64s is kept in ws (nil means
// fresh scratch for this call), so this is meant for minibatches: for
// thousands of rows and large K·d, MulXWtNorms and MulRtX use less memory.
//
// ScoreGradRows returns an error wrapping ErrEmpty for an empty X, W or
// selection or a nil f, ErrShape for mismatched dimensions, a selected index
// outside [0, n) or a dst that is also W, ErrNonFinite for a NaN, ±Inf or
// over-large (|x| > MaxAbs) entry of a selected row of X, of W or of the
// residual weights, and ErrParam for negative workers; or f's error. dst is
// then unspecified.
func ScoreGradRows(dst *mat.Dense, x *Matrix32, rows []int, w *mat.Dense, f RowsFunc, ws *RowsWork, workers int) error {
	if err := gemmCheckMatrix32("X", x); err != nil {
		return err
	}
	wr, err := gemmCheckDense("W", w)
	if err != nil {
		return err
	}
	n, d, k := x.Rows, x.Cols, wr.Rows
	if wr.Cols != d {
		return fmt.Errorf("linalg: X·Wᵀ with X %d×%d and W %d×%d: %w", n, d, wr.Rows, wr.Cols, ErrShape)
	}
	if f == nil {
		return fmt.Errorf("linalg: nil RowsFunc: %w", ErrEmpty)
	}
	m := n
	if rows != nil {
		m = len(rows)
		for j, i := range rows {
			if i < 0 || i >= n {
				return fmt.Errorf("linalg: selected row %d is row %d of %d: %w", j, i, n, ErrShape)
			}
		}
	}
	if m == 0 {
		return fmt.Errorf("linalg: no rows selected: %w", ErrEmpty)
	}
	if workers < 0 {
		return fmt.Errorf("linalg: workers = %d, want ≥ 0 (0 means GOMAXPROCS): %w", workers, ErrParam)
	}
	dr, err := gemmPrepareDst(dst, k, d, w)
	if err != nil {
		return err
	}
	if ws == nil {
		ws = new(RowsWork)
	}
	useAsm := gemmUseAsm

	// W packed in panels of 12 classes, feature-major, as MulXWt packs it.
	kp := (k + gemmNR - 1) / gemmNR
	ldc := kp * gemmNR
	wp := rowsGrow(&ws.wp, kp*gemmNR*d)
	clear(wp)
	for l := range k {
		p, j := l/gemmNR, l%gemmNR
		panel := wp[p*gemmNR*d:]
		for r, v := range wr.Data[l*wr.Stride : l*wr.Stride+d] {
			panel[gemmNR*r+j] = v
		}
	}

	lda := (d + gemmMR - 1) / gemmMR * gemmMR // features, padded for 4-wide tiles
	segs := (m + rowsSegment - 1) / rowsSegment
	nw := workers
	if nw == 0 {
		nw = runtime.GOMAXPROCS(0)
	}
	nw = max(1, min(nw, segs))
	part := rowsGrow(&ws.part, segs*lda*ldc)
	if len(ws.bufs) < nw {
		ws.bufs = append(ws.bufs, make([]rowsScratch, nw-len(ws.bufs))...)
	}
	if cap(ws.errs) < segs {
		ws.errs = make([]error, segs)
	}
	errs := ws.errs[:segs]
	clear(errs)
	mp := (rowsBlock + gemmMR - 1) / gemmMR * gemmMR

	ws.job = rowsJob{x: x, rows: rows, f: f, ws: ws, m: m, d: d, k: k, kp: kp, ldc: ldc, lda: lda, mp: mp, useAsm: useAsm}
	defer func() { ws.job = rowsJob{} }()
	j := &ws.job
	if nw == 1 {
		for sg := range segs {
			if err := j.segment(sg, 0); err != nil {
				return err
			}
		}
	} else {
		var next atomic.Int64
		var failed atomic.Bool
		var wg sync.WaitGroup
		for g := range nw {
			wg.Go(func() {
				for !failed.Load() {
					sg := int(next.Add(1) - 1)
					if sg >= segs {
						return
					}
					if errs[sg] = j.segment(sg, g); errs[sg] != nil {
						failed.Store(true)
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	}

	// dst = Σ_segments partialᵀ, in segment order.
	for l := range k {
		out := dr.Data[l*dr.Stride : l*dr.Stride+d]
		for j := range out {
			v := part[j*ldc+l]
			for sg := 1; sg < segs; sg++ {
				v += part[sg*lda*ldc+j*ldc+l]
			}
			out[j] = v
		}
	}
	return nil
}

// segment computes the scores, the callback and the gradient partial of
// segment sg on worker g's scratch.
func (j *rowsJob) segment(sg, g int) error {
	ws, x, rows, f := j.ws, j.x, j.rows, j.f
	m, d, k, kp, ldc, lda, mp, useAsm := j.m, j.d, j.k, j.kp, j.ldc, j.lda, j.mp, j.useAsm
	wp, part := ws.wp, ws.part
	s := &ws.bufs[g]
	a := rowsGrow(&s.a, mp*lda)
	c := rowsGrow(&s.c, mp*ldc)
	norms := rowsGrow(&s.norms, rowsBlock)
	var rp []float64
	if kp > 1 {
		rp = rowsGrow(&s.rp, kp*gemmNR*rowsBlock)
	}
	gt := part[sg*lda*ldc : (sg+1)*lda*ldc]
	clear(gt)
	end := min((sg+1)*rowsSegment, m)
	for b0 := sg * rowsSegment; b0 < end; b0 += rowsBlock {
		mb := min(rowsBlock, end-b0)
		mbp := (mb + gemmMR - 1) / gemmMR * gemmMR
		// Gather and convert, with the squared norms in MulXWt's order.
		// (Software prefetching of the next selected rows was tried and
		// measured no faster: the conversion's own loads keep enough misses
		// in flight.)
		for i := range mb {
			ri := b0 + i
			if rows != nil {
				ri = rows[ri]
			}
			src := x.Data[ri*d : ri*d+d]
			ai := a[i*lda : (i+1)*lda]
			var ss float64
			for c0 := 0; c0 < d; c0 += gemmKC {
				kc := min(gemmKC, d-c0)
				v, ok := gemmConv(useAsm, ai[c0:c0+kc], src[c0:c0+kc])
				if !ok {
					return rowsBadRow(x, ri)
				}
				ss += v
			}
			clear(ai[d:])
			norms[i] = math.Sqrt(ss)
		}
		clear(a[mb*lda : mbp*lda])
		// Scores: chunks of gemmKC features outside, as MulXWt.
		cb := c[:mbp*ldc]
		clear(cb)
		for c0 := 0; c0 < d; c0 += gemmKC {
			kc := min(gemmKC, d-c0)
			for p := range kp {
				b := wp[p*gemmNR*d+gemmNR*c0:]
				for i := 0; i < mbp; i += gemmMR {
					gemmKernel(useAsm, kc, a[i*lda+c0:], lda, 1, b, cb[i*ldc+p*gemmNR:], ldc)
				}
			}
		}
		if err := f(b0, cb[:mb*ldc], ldc, norms[:mb]); err != nil {
			return err
		}
		for i := range mb {
			ci := cb[i*ldc : (i+1)*ldc]
			for l, v := range ci[:k] {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("linalg: residual weight (%d, %d) = %v: %w", b0+i, l, v, ErrNonFinite)
				}
			}
			clear(ci[k:])
		}
		// Gradient, transposed: gt (lda×ldc) += X_bᵀ·R_b, 4 features ×
		// 12 classes per tile, the block's rows summed in order.
		bp := cb
		for p := range kp {
			if kp > 1 {
				bp = rp[p*gemmNR*mb : (p+1)*gemmNR*mb]
				for i := range mb {
					copy(bp[i*gemmNR:(i+1)*gemmNR], cb[i*ldc+p*gemmNR:i*ldc+(p+1)*gemmNR])
				}
			}
			for f0 := 0; f0 < lda; f0 += gemmMR {
				gemmKernel(useAsm, mb, a[f0:], 1, lda, bp, gt[f0*ldc+p*gemmNR:], ldc)
			}
		}
	}
	return nil
}

// rowsBadRow reports the first bad entry of row i of x.
func rowsBadRow(x *Matrix32, i int) error {
	for j, v := range x.Row(i) {
		if f := float64(v); math.IsNaN(f) || math.Abs(f) > MaxAbs {
			return fmt.Errorf("linalg: entry (%d, %d) = %v: %w", i, j, v, ErrNonFinite)
		}
	}
	return fmt.Errorf("linalg: internal: row %d reported bad but is finite", i)
}
