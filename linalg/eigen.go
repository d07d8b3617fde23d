package linalg

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// checkSym returns an error wrapping ErrEmpty for a nil or empty a and
// ErrNonFinite for a NaN or ±Inf entry (upper triangle, as stored).
func checkSym(name string, a *mat.SymDense) error {
	if a == nil || a.IsEmpty() {
		return fmt.Errorf("linalg: %s has no rows or columns: %w", name, ErrEmpty)
	}
	raw := a.RawSymmetric()
	for i := range raw.N {
		for j, v := range raw.Data[i*raw.Stride+i : i*raw.Stride+raw.N] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("linalg: %s(%d, %d) = %v: %w", name, i, i+j, v, ErrNonFinite)
			}
		}
	}
	return nil
}

// checkDense is checkSym for a general matrix.
func checkDense(name string, a *mat.Dense) error {
	if a == nil || a.IsEmpty() {
		return fmt.Errorf("linalg: %s has no rows or columns: %w", name, ErrEmpty)
	}
	raw := a.RawMatrix()
	for i := range raw.Rows {
		for j, v := range raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("linalg: %s(%d, %d) = %v: %w", name, i, j, v, ErrNonFinite)
			}
		}
	}
	return nil
}

// EigenSym returns the eigenvalues of the symmetric matrix a in ascending
// order and the matching orthonormal eigenvectors as the columns of a d×d
// matrix, so that a = V·diag(values)·Vᵀ. It uses gonum's mat.EigenSym (LAPACK
// Dsyev through lapack64). It returns an error wrapping ErrEmpty or
// ErrNonFinite for an empty a or one with a NaN or ±Inf entry, and
// ErrNotConverged if the QL iteration fails.
func EigenSym(a *mat.SymDense) (values []float64, vectors *mat.Dense, err error) {
	if err := checkSym("A", a); err != nil {
		return nil, nil, err
	}
	var e mat.EigenSym
	if !e.Factorize(a, true) {
		return nil, nil, fmt.Errorf("linalg: symmetric eigendecomposition of a %d×%[1]d matrix: %w", a.SymmetricDim(), ErrNotConverged)
	}
	vectors = new(mat.Dense)
	e.VectorsTo(vectors)
	return e.Values(nil), vectors, nil
}

// ProjectPSD returns the matrix nearest to a in Frobenius norm among the
// symmetric matrices whose eigenvalues are all at least floor: with
// a = V·diag(λ)·Vᵀ, it is V·diag(max(λ_i, floor))·Vᵀ. With floor = 0 this is
// the projection onto the positive semidefinite cone, the post-processing
// applied to a noisy Gram matrix; floor > 0 also bounds the condition number.
//
// If every eigenvalue of a is already at least floor, ProjectPSD returns an
// exact copy of a, not a rounded reconstruction. Otherwise the result is
// rebuilt with blas64 (Dsyrk), so an installed BLAS speeds it up; it is
// symmetric by construction and its eigenvalues are at least floor up to
// rounding (about d·2⁻⁵³·max|λ|).
//
// ProjectPSD returns an error wrapping ErrEmpty or ErrNonFinite for an empty
// a, an a with a NaN or ±Inf entry, or a non-finite floor, and
// ErrNotConverged if the eigendecomposition fails. a is not modified.
func ProjectPSD(a *mat.SymDense, floor float64) (*mat.SymDense, error) {
	if math.IsNaN(floor) || math.IsInf(floor, 0) {
		return nil, fmt.Errorf("linalg: PSD projection floor = %v: %w", floor, ErrNonFinite)
	}
	values, vectors, err := EigenSym(a)
	if err != nil {
		return nil, err
	}
	d := len(values)
	out := mat.NewSymDense(d, nil)
	if values[0] >= floor {
		out.CopySym(a)
		return out, nil
	}
	// a₊ = Σ_i μ_i v_i v_iᵀ with μ_i = max(λ_i, floor), as W₊W₊ᵀ − W₋W₋ᵀ where
	// the columns of W± are v_i·√|μ_i| for μ_i of each sign.
	vr := vectors.RawMatrix()
	c := out.RawSymmetric()
	first := true
	for _, sign := range []float64{1, -1} {
		var cols []int
		for i, l := range values {
			if mu := max(l, floor); mu*sign > 0 {
				cols = append(cols, i)
			}
		}
		if len(cols) == 0 {
			continue
		}
		w := blas64.General{Rows: d, Cols: len(cols), Stride: len(cols), Data: make([]float64, d*len(cols))}
		for k, i := range cols {
			s := math.Sqrt(math.Abs(max(values[i], floor)))
			for r := range d {
				w.Data[r*w.Stride+k] = vr.Data[r*vr.Stride+i] * s
			}
		}
		beta := 1.0
		if first {
			beta = 0
		}
		blas64.Syrk(blas.NoTrans, sign, w, beta, c)
		first = false
	}
	return out, nil
}
