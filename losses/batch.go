package losses

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// A Loss is a per-example loss of a linear classifier, evaluated on a block
// of examples at a time.
type Loss interface {
	// Name is a short identifier: "softmax", "sigmoid" or "squared".
	Name() string
	// Eval evaluates the loss of the model (w, bias) on the rows of x with the
	// given labels and stores the result in dst, reusing dst's storage when
	// it fits. w is K×d with K ≥ 2 and d = x.Cols; labels has length x.Rows,
	// each in [0, K); bias is nil (no trained bias) or has length K. Work is
	// spread over workers goroutines (0 means GOMAXPROCS); the result does
	// not depend on workers. On error dst's contents are unspecified.
	Eval(dst *Batch, x *linalg.Matrix32, labels []int, w *mat.Dense, bias []float64, workers int) error
}

// A Batch holds the evaluation of a Loss on a block of n examples with K
// classes. A zero Batch is ready for use; Eval resizes it and reuses its
// storage (R, Curvature, Norms, XNorms, and the scaled residuals of ClipSum)
// across calls when the shapes fit, so a Batch kept across the steps of a
// solver allocates no n×K matrices after the first step. (The GEMMs still
// take per-call scratch of about workers·(256·d + K·d) float64s.)
// Not safe for concurrent use.
type Batch struct {
	// Loss is Σ_i loss_i over the block.
	Loss float64
	// R holds the residuals r_il = ∂loss_i/∂s_il (n×K): the gradient of Loss
	// is Rᵀ·X for the weights and the column sums of R for the bias.
	R *mat.Dense
	// Norms holds ‖g_i‖_F, the Frobenius norm of each example's gradient:
	// ‖r_i‖·‖x_i‖, or ‖r_i‖·√(‖x_i‖² + 1) when Bias is set.
	Norms []float64
	// Curvature holds c_il = ∂²loss_i/∂s_il² (n×K); see the package
	// documentation and each loss for what it gives of the Hessian.
	Curvature *mat.Dense
	// NoCurvature, set before Eval or EvalClipSum, makes them skip
	// Curvature (it is then nil): a first-order solver saves writing and
	// reading n×K values, a fifth of the memory traffic of a
	// CIFAR-100-shape gradient step.
	NoCurvature bool
	// XNorms holds ‖x_i‖, accumulated in float64.
	XNorms []float64
	// Bias records whether Eval was given a trained bias, so that Norms,
	// Grad and ClipSum include the bias gradient.
	Bias bool
	// Factors holds the clip factors min(1, C/‖g_i‖) of the last ClipSum.
	Factors []float64
	// Precision is the arithmetic of the two GEMMs, the scores X·Wᵀ of Eval
	// and the gradients Rᵀ·X of Grad and ClipSum: linalg.Float64 (the zero
	// value; exact products of float32 features, float64 sums) or
	// linalg.Float32 (W and R rounded to float32, float32 products and sums
	// within blocks, float64 across them; about half the CPU time, about
	// 10⁻⁶ relative; see linalg.Precision). Row norms, residuals,
	// curvatures, clip factors and losses are float64 in both. Set it before
	// Eval; results do not depend on workers in either. EvalClipSum's fused
	// minibatch path follows it too (linalg.ScoreGradRowsPrecision).
	Precision linalg.Precision
	// Team, if not nil, runs the segments of EvalClipSum's fused path (see
	// linalg.RowsWork), in place of fresh goroutines: for a DP-SGD loop of
	// sub-millisecond steps, whose noise can run on the same Team
	// (linalg.Team.Go). EvalClipSum's workers argument then applies to its
	// other paths only. Results do not depend on it.
	Team *linalg.Team

	x                     *linalg.Matrix32 // the block of the last Eval
	rBuf, cBuf, sBuf      []float64
	scaled                *mat.Dense // c∘R for ClipSum
	normsBuf, xnBuf, fBuf []float64
	chunkLoss             []float64

	// EvalClipSum's state: gathered rows (general path), per-row losses,
	// the fused path's callback, arguments and scratch.
	gx       []float32
	gy       []int
	rowLoss  []float64
	rowsFunc linalg.RowsFunc
	fused    fusedArgs
	work     linalg.RowsWork
}

// chunkRows is the number of rows per task in the element-wise part of Eval
// and in ClipSum. Fixed, so that per-chunk loss sums, added in chunk order,
// do not depend on the number of workers.
const chunkRows = 512

// rowLoss evaluates one example: on entry s holds the scores s_i (length K),
// on return the residuals r_i; curv receives the curvature weights. It
// returns loss_i. alpha is the loss's parameter (Sigmoid's α; unused by the
// others), passed rather than captured so that no closure is allocated.
type rowLoss func(s, curv []float64, y int, alpha float64) float64

func paramErr(param string, v float64, reason string) error {
	return fmt.Errorf("losses: %w", &accountant.ParamError{Param: param, Value: v, Reason: reason})
}

// grow returns (*buf)[:n], reallocating when the capacity is too small.
func grow(buf *[]float64, n int) []float64 {
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	return (*buf)[:n]
}

// denseFor returns m if it is r×c, else an r×c Dense over buf: m itself,
// reset and resized over buf, when m was made here before (so that a Batch
// whose block size changes from step to step does not allocate).
func denseFor(m *mat.Dense, buf *[]float64, r, c int) *mat.Dense {
	if m != nil && !m.IsEmpty() {
		if mr, mc := m.Dims(); mr == r && mc == c {
			return m
		}
		if raw := m.RawMatrix(); cap(*buf) >= r*c && len(raw.Data) > 0 && &raw.Data[0] == &(*buf)[:1][0] {
			m.Reset()
			m.ReuseAs(r, c)
			return m
		}
	}
	return mat.NewDense(r, c, grow(buf, r*c))
}

func resolveWorkers(workers int) (int, error) {
	if workers < 0 {
		return 0, paramErr("workers", float64(workers), "must be ≥ 0 (0 means GOMAXPROCS)")
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return workers, nil
}

// parallel runs task(t) for t in [0, tasks) on up to workers goroutines and
// returns the error of the lowest-numbered failing task.
func parallel(tasks, workers int, task func(t int) error) error {
	errs := make([]error, tasks)
	workers = max(1, min(workers, tasks))
	if workers == 1 {
		for t := range tasks {
			if errs[t] = task(t); errs[t] != nil {
				return errs[t]
			}
		}
		return nil
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				if errs[t] = task(t); errs[t] != nil {
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

// checkInputs validates the arguments common to every Eval and returns K.
func checkInputs(dst *Batch, x *linalg.Matrix32, labels []int, w *mat.Dense, bias []float64) (int, error) {
	if dst == nil {
		return 0, paramErr("dst", 0, "must be a non-nil *Batch")
	}
	k, err := checkModel(x, w, bias)
	if err != nil {
		return 0, err
	}
	if len(labels) != x.Rows {
		return 0, fmt.Errorf("losses: %d labels for %d rows: %w", len(labels), x.Rows, linalg.ErrShape)
	}
	return k, checkLabels(labels, k)
}

// checkLabels reports the first label outside [0, k).
func checkLabels(labels []int, k int) error {
	for i, y := range labels {
		if y < 0 || y >= k {
			return fmt.Errorf("losses: label %d of row %d, want [0, %d): %w", y, i, k, linalg.ErrLabel)
		}
	}
	return nil
}

// checkModel checks the shapes of x, w and bias and that bias is finite, and
// returns K.
func checkModel(x *linalg.Matrix32, w *mat.Dense, bias []float64) (int, error) {
	if x == nil || x.Rows <= 0 || x.Cols <= 0 {
		return 0, fmt.Errorf("losses: X has no rows or columns: %w", linalg.ErrEmpty)
	}
	if len(x.Data) != x.Rows*x.Cols {
		return 0, fmt.Errorf("losses: X is %d×%d with %d values: %w", x.Rows, x.Cols, len(x.Data), linalg.ErrShape)
	}
	if w == nil || w.IsEmpty() {
		return 0, fmt.Errorf("losses: W has no rows or columns: %w", linalg.ErrEmpty)
	}
	k, d := w.Dims()
	if k < 2 {
		return 0, fmt.Errorf("losses: W has %d rows, want K ≥ 2 classes: %w", k, linalg.ErrShape)
	}
	if d != x.Cols {
		return 0, fmt.Errorf("losses: W is %d×%d for X with %d columns: %w", k, d, x.Cols, linalg.ErrShape)
	}
	if bias != nil {
		if len(bias) != k {
			return 0, fmt.Errorf("losses: bias of length %d for K = %d: %w", len(bias), k, linalg.ErrShape)
		}
		for l, b := range bias {
			if math.IsNaN(b) || math.IsInf(b, 0) {
				return 0, fmt.Errorf("losses: bias[%d] = %v: %w", l, b, linalg.ErrNonFinite)
			}
		}
	}
	return k, nil
}

// eval is the shared body of every Eval: validate, compute ‖x_i‖ and the
// scores, then apply f row by row. offset is added to every score (a fixed,
// untrained bias) when bias is nil.
func eval(dst *Batch, x *linalg.Matrix32, labels []int, w *mat.Dense, bias []float64, offset, alpha float64, workers int, f rowLoss) error {
	invalidate(dst)
	k, err := checkInputs(dst, x, labels, w, bias)
	if err != nil {
		return err
	}
	nw, err := resolveWorkers(workers)
	if err != nil {
		return err
	}
	n := x.Rows
	dst.Bias = bias != nil
	dst.Factors = nil
	dst.R = denseFor(dst.R, &dst.rBuf, n, k)
	if dst.NoCurvature {
		dst.Curvature = nil
	} else {
		dst.Curvature = denseFor(dst.Curvature, &dst.cBuf, n, k)
	}
	dst.XNorms = grow(&dst.xnBuf, n)
	dst.Norms = grow(&dst.normsBuf, n)
	// One pass over X for the scores and the row norms.
	if err := linalg.MulXWtPrecision(dst.R, dst.XNorms, x, w, nw, dst.Precision); err != nil {
		return fmt.Errorf("losses: scores: %w", err)
	}
	rr := dst.R.RawMatrix()
	var cr blas64.General
	if dst.Curvature != nil {
		cr = dst.Curvature.RawMatrix()
	}
	chunks := (n + chunkRows - 1) / chunkRows
	sums := grow(&dst.chunkLoss, chunks)
	err = parallel(chunks, nw, func(c int) error {
		var sum float64
		var scratch []float64 // the curvatures of one row, when not kept
		if cr.Data == nil {
			scratch = make([]float64, k)
		}
		for i := c * chunkRows; i < min((c+1)*chunkRows, n); i++ {
			s := rr.Data[i*rr.Stride : i*rr.Stride+k]
			if bias != nil {
				for l, b := range bias {
					s[l] += b
				}
			} else if offset != 0 {
				for l := range s {
					s[l] += offset
				}
			}
			for l, v := range s {
				if !(math.Abs(v) <= math.MaxFloat64) { // NaN or ±Inf
					return fmt.Errorf("losses: score (%d, %d) = %v overflows: %w", i, l, v, linalg.ErrNonFinite)
				}
			}
			curv := scratch
			if curv == nil {
				curv = cr.Data[i*cr.Stride : i*cr.Stride+k]
			}
			sum += f(s, curv, labels[i], alpha)
			xn2 := dst.XNorms[i] * dst.XNorms[i]
			if bias != nil {
				xn2++
			}
			dst.Norms[i] = norm(s) * math.Sqrt(xn2)
		}
		sums[c] = sum
		return nil
	})
	if err != nil {
		return err
	}
	var total float64
	for _, s := range sums {
		total += s
	}
	if math.IsInf(total, 0) || math.IsNaN(total) {
		return fmt.Errorf("losses: summed loss = %v overflows: %w", total, linalg.ErrNonFinite)
	}
	dst.Loss = total
	dst.x = x
	return nil
}

// invalidate marks dst as holding no successful Eval, so that Grad and
// ClipSum refuse it until an Eval succeeds.
func invalidate(dst *Batch) {
	if dst != nil {
		dst.x = nil
	}
}

// norm returns the Euclidean norm of v, rescaling when the plain sum of
// squares overflows.
func norm(v []float64) float64 {
	var s float64
	for _, a := range v {
		s += a * a
	}
	if !math.IsInf(s, 0) {
		return math.Sqrt(s)
	}
	var scale float64
	for _, a := range v {
		scale = max(scale, math.Abs(a))
	}
	s = 0
	for _, a := range v {
		a /= scale
		s += a * a
	}
	return scale * math.Sqrt(s)
}

// checkGradDst checks the destinations of Grad and ClipSum.
func (b *Batch) checkGradDst(gradW *mat.Dense, gradB []float64) error {
	if b == nil || b.x == nil {
		return fmt.Errorf("losses: Batch holds no successful Eval: %w", linalg.ErrEmpty)
	}
	_, k := b.R.Dims()
	return checkGradShapes(gradW, gradB, k, b.x.Cols, b.Bias)
}

// checkGradShapes checks that gradW is K×d or empty and that gradB has
// length K if the bias is trained and is nil otherwise.
func checkGradShapes(gradW *mat.Dense, gradB []float64, k, d int, bias bool) error {
	if gradW == nil {
		return fmt.Errorf("losses: nil gradW: %w", linalg.ErrEmpty)
	}
	if !gradW.IsEmpty() {
		if r, c := gradW.Dims(); r != k || c != d {
			return fmt.Errorf("losses: gradW is %d×%d, want %d×%d: %w", r, c, k, d, linalg.ErrShape)
		}
	}
	switch {
	case bias && len(gradB) != k:
		return fmt.Errorf("losses: bias gradient of length %d, want K = %d (the bias is trained): %w", len(gradB), k, linalg.ErrShape)
	case !bias && gradB != nil:
		return fmt.Errorf("losses: bias gradient given but Eval had no trained bias: %w", linalg.ErrShape)
	}
	return nil
}

// Grad sets gradW = Rᵀ·X, the gradient of Loss with respect to the weights,
// and, when the bias is trained, gradB = Σ_i r_i, for the block of the last
// successful Eval (which must not have been modified since). gradW must be
// K×d or empty (then it is resized); gradB must have length K if Bias is set
// and be nil otherwise. Both are overwritten. The result does not depend on
// workers (0 means GOMAXPROCS).
func (b *Batch) Grad(gradW *mat.Dense, gradB []float64, workers int) error {
	if err := b.checkGradDst(gradW, gradB); err != nil {
		return err
	}
	nw, err := resolveWorkers(workers)
	if err != nil {
		return err
	}
	if err := linalg.MulRtXPrecision(gradW, b.R, b.x, nw, b.Precision); err != nil {
		return fmt.Errorf("losses: gradient: %w", err)
	}
	if b.Bias {
		colSums(gradB, b.R)
	}
	return nil
}

// colSums sets dst to the column sums of a, adding rows in order.
// effectiveClip is the clip norm ClipSum and EvalClipSum scale to: clip
// itself in Float64, clip·(1 − 2⁻²⁰) in Float32. In Float32 the clipped
// residuals c_i·r_il are rounded to float32 and multiplied by x_if in
// float32, two roundings of at most 2⁻²⁴ relative each, so a contribution
// clipped to exactly clip could come out up to about 2⁻²³ above it; clipped
// to clip·(1 − 2⁻²⁰) it stays below clip, and the sensitivity clip holds for
// every example's contribution as computed. (Rounding in the sums over
// examples is a separate matter; see the optim package's Privacy notes.)
func effectiveClip(clip float64, p linalg.Precision) float64 {
	if p == linalg.Float32 {
		return clip * (1 - 0x1p-20)
	}
	return clip
}

func colSums(dst []float64, a *mat.Dense) {
	raw := a.RawMatrix()
	clear(dst)
	for i := range raw.Rows {
		for l, v := range raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols] {
			dst[l] += v
		}
	}
}

// ClipSum sets gradW and gradB to the sum of the per-example gradients of the
// last successful Eval, each clipped to Frobenius norm at most clip:
// with c_i = min(1, C/Norms[i]) (1 for a zero gradient), C = clip in Float64
// and clip·(1 − 2⁻²⁰) in Float32 (effectiveClip), it computes
// gradW = Σ_i c_i r_i x_iᵀ = (c∘R)ᵀ·X in one GEMM and, when the bias is
// trained, gradB = Σ_i c_i r_i, and stores the c_i in Factors. The clipped
// gradient of each example, bias included, then has norm ≤ clip, so the sum
// has L2 sensitivity clip under add/remove-one adjacency.
//
// The block X of the last Eval must not have been modified since. clip must be
// positive and finite, else ClipSum returns an *accountant.ParamError.
// Destinations are as for Grad and are overwritten; R is left unchanged. The
// result does not depend on workers (0 means GOMAXPROCS).
func (b *Batch) ClipSum(gradW *mat.Dense, gradB []float64, clip float64, workers int) error {
	if err := b.checkGradDst(gradW, gradB); err != nil {
		return err
	}
	if !(clip > 0) || math.IsInf(clip, 0) {
		return paramErr("ClipNorm", clip, "must be positive and finite")
	}
	nw, err := resolveWorkers(workers)
	if err != nil {
		return err
	}
	n, k := b.R.Dims()
	clip = effectiveClip(clip, b.Precision)
	b.Factors = grow(&b.fBuf, n)
	b.scaled = denseFor(b.scaled, &b.sBuf, n, k)
	rr, sr := b.R.RawMatrix(), b.scaled.RawMatrix()
	chunks := (n + chunkRows - 1) / chunkRows
	_ = parallel(chunks, nw, func(c int) error {
		for i := c * chunkRows; i < min((c+1)*chunkRows, n); i++ {
			f := 1.0
			if g := b.Norms[i]; g > clip {
				f = clip / g // g = +Inf gives 0
			}
			b.Factors[i] = f
			src, dst := rr.Data[i*rr.Stride:i*rr.Stride+k], sr.Data[i*sr.Stride:i*sr.Stride+k]
			for l, v := range src {
				dst[l] = f * v
			}
		}
		return nil
	})
	if err := linalg.MulRtXPrecision(gradW, b.scaled, b.x, nw, b.Precision); err != nil {
		return fmt.Errorf("losses: clipped gradient: %w", err)
	}
	if b.Bias {
		colSums(gradB, b.scaled)
	}
	return nil
}
