package losses

import (
	"fmt"
	"math"

	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// fusedMaxScratch bounds the scratch of the fused path of EvalClipSum
// (linalg.ScoreGradScratch, in float64s): 2²⁰ float64s, 8 MiB, which admits a
// selection of up to about 7 000 rows at d = 784, K = 10 and 700 rows at
// d = 768, K = 100. Larger selections go through Eval and ClipSum, whose
// scratch does not grow with the rows.
const fusedMaxScratch = 1 << 20

// FusedRows returns the largest selection of rows, with d features and K
// classes, that EvalClipSum computes in its fused minibatch pass (the one
// that runs on a Batch's Team) for a loss it can fuse; larger selections go
// through Eval and ClipSum. A solver uses it to decide whether its steps
// will use a Team.
func FusedRows(d, k int) int {
	lo, hi := 0, 1
	for linalg.ScoreGradScratch(hi, d, k) <= fusedMaxScratch {
		lo, hi = hi, 2*hi
	}
	for lo+1 < hi { // ScoreGradScratch grows with the rows
		if mid := (lo + hi) / 2; linalg.ScoreGradScratch(mid, d, k) <= fusedMaxScratch {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// rowser is implemented by the losses of this package: rows validates the
// loss's parameters and returns its per-example function and the fixed score
// offset added when no bias is trained.
type rowser interface {
	rows(bias []float64) (f rowLoss, offset, alpha float64, err error)
}

// rowFunc returns loss's per-example function, offset and α if loss is one
// of this package's losses, by value or pointer — not a type embedding one,
// whose Eval may differ. A nil pointer is an error.
func rowFunc(loss Loss, bias []float64) (f rowLoss, offset, alpha float64, ok bool, err error) {
	var r rowser
	switch l := loss.(type) {
	case Softmax, Sigmoid, Squared:
		r = l.(rowser)
	case *Softmax:
		if l != nil {
			r = l
		}
	case *Sigmoid:
		if l != nil {
			r = l
		}
	case *Squared:
		if l != nil {
			r = l
		}
	default:
		return nil, 0, 0, false, nil
	}
	if r == nil {
		return nil, 0, 0, false, paramErr("loss", 0, "must not be a nil pointer")
	}
	f, offset, alpha, err = r.rows(bias)
	return f, offset, alpha, err == nil, err
}

// EvalClipSum computes the clipped gradient sum of a DP-SGD step on a
// selection of examples: it is loss.Eval on the examples rows[0], rows[1], …
// of (x, labels) — all rows in order if rows is nil — followed by ClipSum with
// norm clip, without gathering the rows into a block. On success dst holds
// what that Eval and ClipSum leave in it (Loss, R, Norms, XNorms, Curvature,
// Bias, Factors; row j of each for the example rows[j]) and gradW, gradB the
// clipped sum Σ_j c_j r_j x_jᵀ and Σ_j c_j r_j, with c_j = min(1,
// C/‖g_j‖), C as in ClipSum (clip, or clip·(1 − 2⁻²⁰) in Float32). The privacy properties are ClipSum's: every clipped
// per-example gradient, bias included, has norm ≤ clip, so the sum has L2
// sensitivity clip under add/remove-one adjacency.
//
// labels has length x.Rows (the labels of every row; only the selected ones
// are read and checked); rows are indices in [0, x.Rows), and may repeat.
// w, bias and workers are as for Eval; gradW and gradB as for ClipSum. Grad
// and ClipSum cannot be called on dst afterwards (they return an error)
// until the next Eval, as dst holds no block of rows.
//
// For Softmax, Sigmoid and Squared, when the scratch it needs is at most 8
// MiB (linalg.ScoreGradScratch: a minibatch of up to a few thousand rows for
// K·d ≈ 10⁴), the step is fused (linalg.ScoreGradRows): each selected row is
// read once, and its scores, residuals, gradient norm, clip factor and
// contribution to the gradient are computed while it is in cache, in the
// precision dst.Precision (linalg.ScoreGradRowsPrecision). Everything in dst
// is then bit-identical to Eval's on the gathered rows in the same precision
// (when no BLAS is installed with linalg.UseOpenBLAS, and unless a float32
// overflow made the fused call fall back to Float64); gradW differs from
// ClipSum's by rounding only (its sums are grouped by 32 and 64 rows instead
// of 256: with linalg.Float32, float32 sums over at most 32 rows, an error of
// at most about 2·10⁻⁶ of Σ_j |c_j r_jl x_jf|), and gradB is bit-identical.
// Other losses and larger selections are gathered and go through Eval and
// ClipSum. Either way the result does not depend on workers.
//
// Errors are those of Eval and ClipSum, plus an error wrapping
// linalg.ErrShape for a selected index out of range and linalg.ErrEmpty for
// an empty selection; on error dst, gradW and gradB are unspecified.
func EvalClipSum(dst *Batch, loss Loss, x *linalg.Matrix32, labels []int, rows []int, w *mat.Dense, bias []float64,
	clip float64, gradW *mat.Dense, gradB []float64, workers int) error {
	invalidate(dst)
	if loss == nil {
		return paramErr("loss", 0, "must be a non-nil Loss")
	}
	if dst == nil {
		return paramErr("dst", 0, "must be a non-nil *Batch")
	}
	if !(clip > 0) || math.IsInf(clip, 0) {
		return paramErr("ClipNorm", clip, "must be positive and finite")
	}
	if _, err := resolveWorkers(workers); err != nil {
		return err
	}
	k, err := checkModel(x, w, bias)
	if err != nil {
		return err
	}
	if len(labels) != x.Rows {
		return fmt.Errorf("losses: %d labels for %d rows: %w", len(labels), x.Rows, linalg.ErrShape)
	}
	m := x.Rows
	if rows != nil {
		m = len(rows)
		for j, i := range rows {
			if i < 0 || i >= x.Rows {
				return fmt.Errorf("losses: selected row %d is row %d of %d: %w", j, i, x.Rows, linalg.ErrShape)
			}
			if y := labels[i]; y < 0 || y >= k {
				return fmt.Errorf("losses: label %d of row %d, want [0, %d): %w", y, i, k, linalg.ErrLabel)
			}
		}
	} else if err := checkLabels(labels, k); err != nil {
		return err
	}
	if m == 0 {
		return fmt.Errorf("losses: no rows selected: %w", linalg.ErrEmpty)
	}
	if err := checkGradShapes(gradW, gradB, k, x.Cols, bias != nil); err != nil {
		return err
	}
	f, offset, alpha, fused, err := rowFunc(loss, bias)
	if err != nil {
		return err
	}
	if fused && linalg.ScoreGradScratch(m, x.Cols, k) <= fusedMaxScratch {
		return evalClipSumFused(dst, f, offset, alpha, x, labels, rows, w, bias, clip, gradW, gradB, workers)
	}

	// The general path: gather, Eval, ClipSum.
	xb, yb := x, labels
	if rows != nil {
		d := x.Cols
		gx := dst.gx[:0]
		if cap(gx) < m*d {
			gx = make([]float32, 0, m*d)
		}
		gy := dst.gy[:0]
		for _, i := range rows {
			gx = append(gx, x.Data[i*d:(i+1)*d]...)
			gy = append(gy, labels[i])
		}
		dst.gx, dst.gy = gx, gy
		xb = &linalg.Matrix32{Rows: m, Cols: d, Data: gx}
		yb = gy
	}
	if err := loss.Eval(dst, xb, yb, w, bias, workers); err != nil {
		return err
	}
	err = dst.ClipSum(gradW, gradB, clip, workers)
	invalidate(dst)
	return err
}

// evalClipSumFused is EvalClipSum's fused path, on checked arguments.
func evalClipSumFused(dst *Batch, f rowLoss, offset, alpha float64, x *linalg.Matrix32, labels []int, rows []int,
	w *mat.Dense, bias []float64, clip float64, gradW *mat.Dense, gradB []float64, workers int) error {
	m := x.Rows
	if rows != nil {
		m = len(rows)
	}
	k, _ := w.Dims()
	dst.Bias = bias != nil
	dst.R = denseFor(dst.R, &dst.rBuf, m, k)
	if dst.NoCurvature {
		dst.Curvature = nil
	} else {
		dst.Curvature = denseFor(dst.Curvature, &dst.cBuf, m, k)
	}
	dst.XNorms = grow(&dst.xnBuf, m)
	dst.Norms = grow(&dst.normsBuf, m)
	dst.Factors = grow(&dst.fBuf, m)
	losses := grow(&dst.rowLoss, m)
	rr := dst.R.RawMatrix()
	var cr blas64.General
	if dst.Curvature != nil {
		cr = dst.Curvature.RawMatrix()
	}
	if dst.rowsFunc == nil {
		dst.rowsFunc = dst.fusedBlock
	}
	dst.fused = fusedArgs{f: f, offset: offset, alpha: alpha, rows: rows, labels: labels, bias: bias, clip: clip, k: k,
		r: rr, c: cr, losses: losses, clipEff: effectiveClip(clip, dst.Precision)}
	dst.work.Team = dst.Team
	err := linalg.ScoreGradRowsPrecision(gradW, x, rows, w, dst.rowsFunc, &dst.work, workers, dst.Precision)
	dst.fused = fusedArgs{}
	if err != nil {
		return fmt.Errorf("losses: %w", err)
	}
	// The loss summed as eval sums it: rows in order within chunks of
	// chunkRows, chunk sums in order.
	var total float64
	for c0 := 0; c0 < m; c0 += chunkRows {
		var sum float64
		for _, v := range losses[c0:min(c0+chunkRows, m)] {
			sum += v
		}
		total += sum
	}
	if math.IsInf(total, 0) || math.IsNaN(total) {
		return fmt.Errorf("losses: summed loss = %v overflows: %w", total, linalg.ErrNonFinite)
	}
	dst.Loss = total
	if bias != nil {
		// Σ_j c_j r_j in row order, as ClipSum's column sums of c∘R.
		clear(gradB)
		for j := range m {
			fj := dst.Factors[j]
			for l, v := range rr.Data[j*rr.Stride : j*rr.Stride+k] {
				gradB[l] += float64(fj * v)
			}
		}
	}
	return nil
}

// fusedArgs carries EvalClipSum's arguments to fusedBlock, so that the
// callback is a method value made once per Batch rather than a closure made
// once per call.
type fusedArgs struct {
	f             rowLoss
	offset, alpha float64
	rows          []int
	labels        []int
	bias          []float64
	clip          float64
	clipEff       float64 // effectiveClip(clip, Precision)
	k             int
	r, c          blas64.General
	losses        []float64
}

// fusedBlock is the linalg.RowsFunc of the fused path: for each row of the
// block it adds the bias or offset to the scores, evaluates the loss, stores
// the residuals, curvature, norms and clip factor in dst, and leaves the
// clipped residuals c_j·r_j in s for the gradient.
func (dst *Batch) fusedBlock(first int, s []float64, stride int, norms []float64) error {
	a := &dst.fused
	k := a.k
	var scratch []float64 // one row's curvatures, when dst.NoCurvature
	for i, xn := range norms {
		j := first + i
		y := j
		if a.rows != nil {
			y = a.rows[j]
		}
		y = a.labels[y]
		si := s[i*stride : i*stride+k]
		if a.bias != nil {
			for l, b := range a.bias {
				si[l] += b
			}
		} else if a.offset != 0 {
			for l := range si {
				si[l] += a.offset
			}
		}
		for l, v := range si {
			if !(math.Abs(v) <= math.MaxFloat64) { // NaN or ±Inf
				return fmt.Errorf("score (%d, %d) = %v overflows: %w", j, l, v, linalg.ErrNonFinite)
			}
		}
		var curv []float64
		if a.c.Data != nil {
			curv = a.c.Data[j*a.c.Stride : j*a.c.Stride+k]
		} else {
			if cap(scratch) < k {
				scratch = make([]float64, k)
			}
			curv = scratch[:k]
		}
		a.losses[j] = a.f(si, curv, y, a.alpha)
		dst.XNorms[j] = xn
		xn2 := xn * xn
		if a.bias != nil {
			xn2++
		}
		g := norm(si) * math.Sqrt(xn2)
		dst.Norms[j] = g
		fac := 1.0
		if g > a.clipEff {
			fac = a.clipEff / g // g = +Inf gives 0
		}
		dst.Factors[j] = fac
		copy(a.r.Data[j*a.r.Stride:j*a.r.Stride+k], si)
		for l, v := range si {
			si[l] = fac * v
		}
	}
	return nil
}
