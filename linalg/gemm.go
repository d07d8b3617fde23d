package linalg

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// gemmBlockRows is the number of rows of a Matrix32 converted to float64 and
// handed to one blas64.Gemm call by MulXWt and MulRtX. The partition of rows
// into blocks depends on this constant and the row count alone, never on the
// number of workers, which is what makes results bit-identical for any
// workers count. 256 rows keep a converted block of a d = 1664 matrix at
// 3.4 MB and the per-block reduction of MulRtX (K·d additions) at 1/512 of
// the block's multiply-adds.
const gemmBlockRows = 256

// gemmResolveWorkers maps the workers argument to a goroutine count no larger
// than the number of tasks: 0 means GOMAXPROCS, negative is an error.
func gemmResolveWorkers(workers, tasks int) (int, error) {
	if workers < 0 {
		return 0, fmt.Errorf("linalg: workers = %d, want ≥ 0 (0 means GOMAXPROCS)", workers)
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return max(1, min(workers, tasks)), nil
}

// gemmParallel runs task(t, worker) for t in [0, tasks) on the given number of
// goroutines and returns the error of the lowest-numbered failing task, so the
// error reported does not depend on scheduling. After a failure the remaining
// tasks are skipped.
func gemmParallel(tasks, workers int, task func(t, worker int) error) error {
	errs := make([]error, tasks)
	if workers <= 1 {
		for t := range tasks {
			if errs[t] = task(t, 0); errs[t] != nil {
				return errs[t]
			}
		}
		return nil
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for !failed.Load() {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				if errs[t] = task(t, g); errs[t] != nil {
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
	return nil
}

// gemmConvertRows converts rows [i0, i1) of x into buf (row-major, stride
// x.Cols) and reports a non-finite or too large entry.
func gemmConvertRows(buf []float64, x *Matrix32, i0, i1 int) error {
	src := x.Data[i0*x.Cols : i1*x.Cols]
	buf = buf[:len(src)]
	for j, v := range src {
		f := float64(v)
		if !(math.Abs(f) <= MaxAbs) { // also catches NaN
			return fmt.Errorf("linalg: entry (%d, %d) = %v: %w", i0+j/x.Cols, j%x.Cols, v, ErrNonFinite)
		}
		buf[j] = f
	}
	return nil
}

// gemmCheckMatrix32 checks that x is non-empty and consistent.
func gemmCheckMatrix32(name string, x *Matrix32) error {
	if x == nil || x.Rows <= 0 || x.Cols <= 0 {
		return fmt.Errorf("linalg: %s has no rows or columns: %w", name, ErrEmpty)
	}
	if len(x.Data) != x.Rows*x.Cols {
		return fmt.Errorf("linalg: %s is %d×%d with %d values: %w", name, x.Rows, x.Cols, len(x.Data), ErrShape)
	}
	return nil
}

// gemmCheckDense checks that a is non-empty and has only finite entries, and
// returns its raw storage.
func gemmCheckDense(name string, a *mat.Dense) (blas64.General, error) {
	if a == nil || a.IsEmpty() {
		return blas64.General{}, fmt.Errorf("linalg: %s has no rows or columns: %w", name, ErrEmpty)
	}
	raw := a.RawMatrix()
	for i := range raw.Rows {
		for j, v := range raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return raw, fmt.Errorf("linalg: %s(%d, %d) = %v: %w", name, i, j, v, ErrNonFinite)
			}
		}
	}
	return raw, nil
}

// gemmPrepareDst checks dst is r×c, or empty, in which case it is resized.
func gemmPrepareDst(dst *mat.Dense, r, c int, inputs ...*mat.Dense) (blas64.General, error) {
	if dst == nil {
		return blas64.General{}, fmt.Errorf("linalg: nil dst: %w", ErrEmpty)
	}
	for _, in := range inputs {
		if dst == in {
			return blas64.General{}, fmt.Errorf("linalg: dst is also an input: %w", ErrShape)
		}
	}
	if dst.IsEmpty() {
		dst.ReuseAs(r, c)
	} else if dr, dc := dst.Dims(); dr != r || dc != c {
		return blas64.General{}, fmt.Errorf("linalg: dst is %d×%d, want %d×%d: %w", dr, dc, r, c, ErrShape)
	}
	return dst.RawMatrix(), nil
}

// MulXWt sets dst = X·Wᵀ, the n×K matrix of scores of a linear model with
// weights W (K×d, one row per class) on the float32 rows of X (n×d).
//
// X is converted to float64 gemmBlockRows rows at a time and each block is
// multiplied by one blas64.Gemm call, so a faster BLAS installed with
// blas64.Use speeds MulXWt up. Blocks are spread over workers goroutines
// (0 means GOMAXPROCS); every row of dst is computed by the same call for any
// workers count, so the result is bit-identical for all of them (given a
// BLAS that is deterministic for fixed shapes, as gonum's is).
//
// dst must be n×K or empty (then it is resized); it is overwritten and must
// not share memory with w. MulXWt returns an error wrapping ErrEmpty,
// ErrShape or ErrNonFinite for empty inputs, mismatched dimensions or a NaN,
// ±Inf or over-large (|x| > MaxAbs) entry of X or W; dst is then unspecified.
func MulXWt(dst *mat.Dense, x *Matrix32, w *mat.Dense, workers int) error {
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
	dr, err := gemmPrepareDst(dst, n, k, w)
	if err != nil {
		return err
	}
	blocks := (n + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	bufs := make([][]float64, nw)
	return gemmParallel(blocks, nw, func(b, g int) error {
		i0 := b * gemmBlockRows
		i1 := min(i0+gemmBlockRows, n)
		if bufs[g] == nil {
			bufs[g] = make([]float64, min(gemmBlockRows, n)*d)
		}
		if err := gemmConvertRows(bufs[g], x, i0, i1); err != nil {
			return err
		}
		xb := blas64.General{Rows: i1 - i0, Cols: d, Stride: d, Data: bufs[g]}
		cb := blas64.General{Rows: i1 - i0, Cols: k, Stride: dr.Stride, Data: dr.Data[i0*dr.Stride:]}
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, xb, wr, 0, cb)
		return nil
	})
}

// MulRtX sets dst = Rᵀ·X, the K×d matrix Σ_i r_i x_iᵀ: with R (n×K) the
// residuals of a linear model's loss on the float32 rows of X (n×d), it is
// the gradient of the summed loss with respect to the weights.
//
// Rows are taken gemmBlockRows at a time: each block's product R_bᵀ·X_b is
// computed by one blas64.Gemm call into its own buffer, and the partial
// products are added into dst strictly in block order. Blocks are spread over
// workers goroutines (0 means GOMAXPROCS), up to workers at a time, so the
// extra memory is about workers·(K·d + gemmBlockRows·d) float64s; the result
// is bit-identical for any workers count (given a BLAS that is deterministic
// for fixed shapes, as gonum's is).
//
// dst must be K×d or empty (then it is resized); it is overwritten and must
// not share memory with r. Errors are as for MulXWt, with R in place of W.
func MulRtX(dst *mat.Dense, r *mat.Dense, x *Matrix32, workers int) error {
	if err := gemmCheckMatrix32("X", x); err != nil {
		return err
	}
	if r == nil || r.IsEmpty() {
		return fmt.Errorf("linalg: R has no rows or columns: %w", ErrEmpty)
	}
	rr := r.RawMatrix()
	n, d, k := x.Rows, x.Cols, rr.Cols
	if rr.Rows != n {
		return fmt.Errorf("linalg: Rᵀ·X with R %d×%d and X %d×%d: %w", rr.Rows, rr.Cols, n, d, ErrShape)
	}
	dr, err := gemmPrepareDst(dst, k, d, r)
	if err != nil {
		return err
	}
	blocks := (n + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	xbufs := make([][]float64, nw)
	partials := make([][]float64, nw) // K×d, stride d
	for g := range partials {
		partials[g] = make([]float64, k*d)
	}
	for start := 0; start < blocks; start += nw {
		end := min(start+nw, blocks)
		// Slot j of this round holds block start+j, whichever goroutine runs it.
		err := gemmParallel(end-start, nw, func(j, g int) error {
			i0 := (start + j) * gemmBlockRows
			i1 := min(i0+gemmBlockRows, n)
			for i := i0; i < i1; i++ {
				for l, v := range rr.Data[i*rr.Stride : i*rr.Stride+k] {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						return fmt.Errorf("linalg: R(%d, %d) = %v: %w", i, l, v, ErrNonFinite)
					}
				}
			}
			if xbufs[g] == nil {
				xbufs[g] = make([]float64, min(gemmBlockRows, n)*d)
			}
			if err := gemmConvertRows(xbufs[g], x, i0, i1); err != nil {
				return err
			}
			rb := blas64.General{Rows: i1 - i0, Cols: k, Stride: rr.Stride, Data: rr.Data[i0*rr.Stride:]}
			xb := blas64.General{Rows: i1 - i0, Cols: d, Stride: d, Data: xbufs[g]}
			pb := blas64.General{Rows: k, Cols: d, Stride: d, Data: partials[j]}
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, rb, xb, 0, pb)
			return nil
		})
		if err != nil {
			return err
		}
		// Reduce: each row of dst gets the round's partials added in block
		// order. Rows are independent, so splitting them over goroutines
		// changes nothing in the arithmetic.
		first := start == 0
		rounds := end - start
		_ = gemmParallel(k, nw, func(l, _ int) error {
			drow := dr.Data[l*dr.Stride : l*dr.Stride+d]
			j0 := 0
			if first {
				copy(drow, partials[0][l*d:(l+1)*d])
				j0 = 1
			}
			for j := j0; j < rounds; j++ {
				prow := partials[j][l*d : (l+1)*d]
				for c, v := range prow {
					drow[c] += v
				}
			}
			return nil
		})
	}
	return nil
}

// RowNorms sets dst[i] to the Euclidean norm of row i of x, accumulated in
// float64. dst must have length x.Rows. Rows are spread over workers
// goroutines (0 means GOMAXPROCS); each row's norm is computed by one
// goroutine in a fixed order, so the result does not depend on workers.
// RowNorms returns an error wrapping ErrEmpty, ErrShape or ErrNonFinite for
// an empty x, a dst of the wrong length or a NaN, ±Inf or over-large
// (|x| > MaxAbs) entry; dst is then unspecified.
func RowNorms(dst []float64, x *Matrix32, workers int) error {
	if err := gemmCheckMatrix32("X", x); err != nil {
		return err
	}
	if len(dst) != x.Rows {
		return fmt.Errorf("linalg: row norms of %d rows into %d values: %w", x.Rows, len(dst), ErrShape)
	}
	blocks := (x.Rows + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	return gemmParallel(blocks, nw, func(b, _ int) error {
		i0 := b * gemmBlockRows
		i1 := min(i0+gemmBlockRows, x.Rows)
		for i := i0; i < i1; i++ {
			var s float64
			for j, v := range x.Row(i) {
				f := float64(v)
				if !(math.Abs(f) <= MaxAbs) {
					return fmt.Errorf("linalg: entry (%d, %d) = %v: %w", i, j, v, ErrNonFinite)
				}
				s += f * f
			}
			dst[i] = math.Sqrt(s)
		}
		return nil
	})
}
