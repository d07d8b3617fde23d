package linalg

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// A NotPositiveDefiniteError reports a matrix that a factorisation or solve
// needed to be positive definite, with the numbers that show it is not. It
// wraps ErrNotPositiveDefinite. A caller can retry with a ridge larger than
// −MinEigenvalue.
type NotPositiveDefiniteError struct {
	Op            string  // "Cholesky" or "CG"
	N             int     // dimension of the matrix
	MinEigenvalue float64 // smallest eigenvalue, or NaN if not computed
	Cond          float64 // condition number estimate (+Inf if the factorisation failed)
}

// Error implements error.
func (e *NotPositiveDefiniteError) Error() string {
	return fmt.Sprintf("linalg: %s of a %d×%d matrix: smallest eigenvalue %.6g, condition number %.3g: %v",
		e.Op, e.N, e.N, e.MinEigenvalue, e.Cond, ErrNotPositiveDefinite)
}

// Unwrap returns ErrNotPositiveDefinite.
func (e *NotPositiveDefiniteError) Unwrap() error { return ErrNotPositiveDefinite }

// notPD builds a NotPositiveDefiniteError, computing the smallest eigenvalue
// of a (a d³ cost paid only on failure).
func notPD(op string, a *mat.SymDense, cond float64) error {
	e := &NotPositiveDefiniteError{Op: op, N: a.SymmetricDim(), MinEigenvalue: math.NaN(), Cond: cond}
	if values, _, err := EigenSym(a); err == nil {
		e.MinEigenvalue = values[0]
	}
	return e
}

// Cholesky is the factorisation a = UᵀU of a symmetric positive definite
// matrix, made once and used for many solves (as DP-FC's preconditioner is).
// NewCholesky factorises with gonum's lapack64 (Dpotrf, Dpocon), whose
// blocked steps run on the installed blas64, or, after UseOpenBLAS, with
// OpenBLAS's own LAPACK routines dpotrf and dpocon; Solve runs the two
// triangular solves of Dpotrs through blas64 (Dtrsm) either way.
//
// A Cholesky is safe for concurrent Solve calls once made.
type Cholesky struct {
	u    blas64.Triangular // U, upper triangular, row-major
	n    int
	cond float64
}

// maxCond is the largest condition number NewCholesky accepts: beyond it,
// solutions have no correct digits in float64 (mat.ConditionTolerance).
const maxCond = mat.ConditionTolerance

// NewCholesky factorises a. It returns an error wrapping ErrEmpty or
// ErrNonFinite for an empty a or one with a NaN or ±Inf entry, and a
// *NotPositiveDefiniteError (wrapping ErrNotPositiveDefinite) if a is not
// positive definite or its condition number exceeds 1e16.
func NewCholesky(a *mat.SymDense) (*Cholesky, error) {
	if err := checkSym("A", a); err != nil {
		return nil, err
	}
	raw := a.RawSymmetric()
	n := raw.N
	// The upper triangle of a, row-major with stride n: U overwrites it. Read
	// as a Fortran column-major array it is the lower triangle, L = Uᵀ.
	u := make([]float64, n*n)
	for i := range n {
		copy(u[i*n+i:(i+1)*n], raw.Data[i*raw.Stride+i:i*raw.Stride+n])
	}
	sym := blas64.Symmetric{Uplo: blas.Upper, N: n, Stride: n, Data: u}
	// The 1-norm of a, which the condition estimate needs (as gonum's
	// mat.Cholesky computes it).
	anorm := lapack64.Lansy(lapack.MaxRowSum, sym, make([]float64, n))
	var ok bool
	var rcond float64
	if lp := activeLAPACK(n); lp != nil {
		if ok = lp.dpotrf(n, u, n) == 0; ok {
			rcond = lp.dpocon(n, u, n, anorm)
		}
	} else {
		if _, ok = lapack64.Potrf(sym); ok {
			rcond = lapack64.Pocon(sym, anorm, make([]float64, 3*n), make([]int, n))
		}
	}
	if !ok {
		return nil, notPD("Cholesky", a, math.Inf(1))
	}
	cond := 1 / rcond
	if !(cond <= maxCond) {
		return nil, notPD("Cholesky", a, cond)
	}
	return &Cholesky{
		u:    blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: n, Stride: n, Data: u},
		n:    n,
		cond: cond,
	}, nil
}

// Dim returns the dimension of the factorised matrix.
func (c *Cholesky) Dim() int { return c.n }

// Cond returns the estimated condition number (1-norm) of the factorised
// matrix.
func (c *Cholesky) Cond() float64 { return c.cond }

// Solve returns X = A⁻¹B for the d×m right-hand sides B, one per column. It
// returns an error wrapping ErrEmpty, ErrShape or ErrNonFinite for an empty
// B, one with other than d rows, or with a NaN or ±Inf entry.
func (c *Cholesky) Solve(b *mat.Dense) (*mat.Dense, error) {
	if err := checkDense("B", b); err != nil {
		return nil, err
	}
	if r, m := b.Dims(); r != c.n {
		return nil, fmt.Errorf("linalg: solve with a %d×%d matrix and %d×%d right-hand sides: %w", c.n, c.n, r, m, ErrShape)
	}
	x := mat.DenseCopyOf(b)
	lapack64.Potrs(c.u, x.RawMatrix()) // Uᵀ·Y = B, then U·X = Y
	return x, nil
}

// CholeskySolve factorises a and returns A⁻¹B, with the errors of
// NewCholesky and Solve.
func CholeskySolve(a *mat.SymDense, b *mat.Dense) (*mat.Dense, error) {
	c, err := NewCholesky(a)
	if err != nil {
		return nil, err
	}
	return c.Solve(b)
}

// CGResult is the outcome of CG.
type CGResult struct {
	X          *mat.Dense // d×m solutions, column j for right-hand side j
	Iterations []int      // iterations taken by each column
	Residuals  []float64  // ‖b_j − A·x_j‖ / ‖b_j‖ computed afresh at the end (0 for b_j = 0)
}

// CG solves A·X = B for a symmetric positive definite A and the d×m
// right-hand sides B by the conjugate gradient method (Hestenes and Stiefel,
// "Methods of conjugate gradients for solving linear systems", J. Res. Nat.
// Bur. Standards 49, 1952), started from X = 0, one independent recurrence
// per column. The columns advance together: every iteration does one
// multiplication of A by all still-active search directions through blas64
// (Dsymm), so an installed BLAS speeds it up; a column stops once its
// recurrence residual satisfies ‖r_j‖ ≤ tol·‖b_j‖.
//
// tol must be positive and finite; maxIter ≥ 0 bounds the iterations of each
// column, 0 meaning 2·d. If a column has not converged after maxIter
// iterations, CG returns the result so far together with an error wrapping
// ErrNotConverged. It returns a *NotPositiveDefiniteError if it meets a
// direction p with pᵀAp ≤ 0, and errors wrapping ErrEmpty, ErrShape or
// ErrNonFinite for empty, mismatched or non-finite inputs.
func CG(a *mat.SymDense, b *mat.Dense, tol float64, maxIter int) (*CGResult, error) {
	if err := checkSym("A", a); err != nil {
		return nil, err
	}
	if err := checkDense("B", b); err != nil {
		return nil, err
	}
	d := a.SymmetricDim()
	r, m := b.Dims()
	if r != d {
		return nil, fmt.Errorf("linalg: CG with a %d×%d matrix and %d×%d right-hand sides: %w", d, d, r, m, ErrShape)
	}
	if !(tol > 0) || math.IsInf(tol, 1) {
		return nil, fmt.Errorf("linalg: CG tolerance %v, want positive and finite: %w", tol, ErrParam)
	}
	if maxIter < 0 {
		return nil, fmt.Errorf("linalg: CG iteration limit %d, want ≥ 0 (0 means 2·d): %w", maxIter, ErrParam)
	}
	if maxIter == 0 {
		maxIter = 2 * d
	}

	// Vectors are stored as rows (m×d, contiguous) so that A times all of
	// them is one Dsymm from the right: (A·P)ᵀ = Pᵀ·A for symmetric A.
	av := a.RawSymmetric()
	x := make([]float64, m*d)
	res := make([]float64, m*d) // r_j
	p := make([]float64, m*d)
	ap := make([]float64, m*d)
	bt := mat.DenseCopyOf(b.T())
	bn := make([]float64, m)
	rr := make([]float64, m)
	for j := range m {
		copy(res[j*d:(j+1)*d], bt.RawRowView(j))
		bn[j] = floats.Norm(res[j*d:(j+1)*d], 2)
		rr[j] = floats.Dot(res[j*d:(j+1)*d], res[j*d:(j+1)*d])
	}
	out := &CGResult{Iterations: make([]int, m), Residuals: make([]float64, m)}

	// active lists the unconverged columns; their search directions and A·p
	// occupy the first len(active) rows of p and ap.
	var active []int
	for j := range m {
		if math.Sqrt(rr[j]) > tol*bn[j] {
			copy(p[len(active)*d:], res[j*d:(j+1)*d])
			active = append(active, j)
		}
	}
	var err error
	for it := 0; len(active) > 0; it++ {
		if it == maxIter {
			worst := 0.0
			for _, j := range active {
				worst = max(worst, math.Sqrt(rr[j])/bn[j])
			}
			err = fmt.Errorf("linalg: CG on %d of %d right-hand sides after %d iterations, relative residual up to %.3g > %.3g: %w",
				len(active), m, maxIter, worst, tol, ErrNotConverged)
			break
		}
		na := len(active)
		pg := blas64.General{Rows: na, Cols: d, Stride: d, Data: p[:na*d]}
		apg := blas64.General{Rows: na, Cols: d, Stride: d, Data: ap[:na*d]}
		blas64.Symm(blas.Right, 1, av, pg, 0, apg)
		next := active[:0]
		for s, j := range active {
			pj, apj := p[s*d:(s+1)*d], ap[s*d:(s+1)*d]
			xj, rj := x[j*d:(j+1)*d], res[j*d:(j+1)*d]
			pap := floats.Dot(pj, apj)
			if !(pap > 0) {
				return nil, notPD("CG", a, math.NaN())
			}
			alpha := rr[j] / pap
			floats.AddScaled(xj, alpha, pj)
			floats.AddScaled(rj, -alpha, apj)
			rrNew := floats.Dot(rj, rj)
			out.Iterations[j]++
			if math.Sqrt(rrNew) <= tol*bn[j] {
				rr[j] = rrNew
				continue
			}
			beta := rrNew / rr[j]
			rr[j] = rrNew
			// p_j ← r_j + β·p_j, moved to slot len(next) (≤ s, so no overlap issue).
			dst := p[len(next)*d : (len(next)+1)*d]
			for i := range d {
				dst[i] = rj[i] + beta*pj[i]
			}
			next = append(next, j)
		}
		active = next
	}

	// X and fresh residuals B − A·X.
	xg := blas64.General{Rows: m, Cols: d, Stride: d, Data: x}
	ax := blas64.General{Rows: m, Cols: d, Stride: d, Data: make([]float64, m*d)}
	blas64.Symm(blas.Right, 1, av, xg, 0, ax)
	for j := range m {
		if bn[j] > 0 {
			floats.Sub(ax.Data[j*d:(j+1)*d], bt.RawRowView(j))
			out.Residuals[j] = floats.Norm(ax.Data[j*d:(j+1)*d], 2) / bn[j]
		}
	}
	out.X = mat.DenseCopyOf(mat.NewDense(m, d, x).T())
	return out, err
}
