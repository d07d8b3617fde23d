package linalg

import (
	"fmt"
	"math"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// lapackBackend is a LAPACK that EigenSym, ProjectPSD and NewCholesky call
// instead of linalg's own eigensolver and gonum's Cholesky factorisation.
// UseOpenBLAS installs OpenBLAS's (linalg/internal/lapack); no other build
// has one. Matrices are column-major and symmetric ones are read from their
// lower triangle, as in Fortran: a row-major upper triangle, as
// mat.SymDense stores it, is passed as it is.
type lapackBackend struct {
	maxDim int                                                      // largest n accepted
	dsyevd func(n int, a []float64, lda int, w []float64) int       // eigenvalues ascending in w, vectors in the columns of a; info
	dpotrf func(n int, a []float64, lda int) int                    // a = L·Lᵀ, L in the lower triangle; info
	dpocon func(n int, a []float64, lda int, anorm float64) float64 // 1/cond₁ from Dpotrf's factor
}

// lapackInstalled is the LAPACK installed by UseOpenBLAS, or nil.
var lapackInstalled atomic.Pointer[lapackBackend]

// activeLAPACK returns the installed LAPACK if EigenSym, ProjectPSD and
// NewCholesky should use it for an n×n matrix: one was installed, the
// float64 BLAS installed with it is still in place (so that
// blas64.Use(gonum.Implementation{}) switches both back to pure Go), and n
// is within its limit. Otherwise it returns nil.
func activeLAPACK(n int) *lapackBackend {
	lp := lapackInstalled.Load()
	if lp == nil || n > lp.maxDim || !float64BLASInstalled() {
		return nil
	}
	return lp
}

// float64BLASInstalled reports whether a float64 BLAS other than gonum's has
// been installed with blas64.Use (UseOpenBLAS does).
func float64BLASInstalled() bool {
	switch blas64.Implementation().(type) {
	case gonum.Implementation, *gonum.Implementation:
		return false
	}
	return true
}

// eigenSymLAPACK is eigenSym on LAPACK's Dsyevd (divide and conquer, the
// routine behind numpy's eigh): raw (d×d, upper triangle, not all zero) is
// scaled by the power of two scale = 2^−e as eigenSym scales it, so that
// Dsyevd sees entries of order 1 and the eigenvalues are unscaled exactly.
// The eigenvectors come back as columns (Fortran) and are transposed to
// eigenSym's row-major layout. values (d) and v (d×d) are filled and
// returned.
func eigenSymLAPACK(lp *lapackBackend, raw blas64.Symmetric, scale float64, e int, values, v []float64) ([]float64, []float64, error) {
	d := raw.N
	z := make([]float64, d*d)
	for i := range d {
		row := z[i*d+i : (i+1)*d]
		for j, x := range raw.Data[i*raw.Stride+i : i*raw.Stride+d] {
			row[j] = x * scale
		}
	}
	if info := lp.dsyevd(d, z, d, values); info != 0 {
		return nil, nil, fmt.Errorf("linalg: symmetric eigendecomposition of a %d×%[1]d matrix: LAPACK Dsyevd info %d: %w", d, info, ErrNotConverged)
	}
	for j, x := range values {
		values[j] = math.Ldexp(x, e)
		if math.IsInf(values[j], 0) {
			return nil, nil, fmt.Errorf("linalg: eigenvalue %d of a %d×%[2]d matrix overflows float64: %w", j, d, ErrNonFinite)
		}
		if math.IsNaN(x) || j > 0 && values[j] < values[j-1] {
			// Dsyevd returns finite eigenvalues in ascending order for
			// finite input; anything else is a failure, not a result.
			return nil, nil, fmt.Errorf("linalg: symmetric eigendecomposition of a %d×%[1]d matrix: LAPACK Dsyevd returned eigenvalue %d = %v out of order: %w", d, j, values[j], ErrNotConverged)
		}
	}
	const tile = 32
	bad := false
	for i0 := 0; i0 < d; i0 += tile {
		for j0 := 0; j0 < d; j0 += tile {
			for j := j0; j < min(j0+tile, d); j++ {
				col := z[j*d : (j+1)*d]
				for i := i0; i < min(i0+tile, d); i++ {
					x := col[i]
					bad = bad || math.IsNaN(x)
					v[i*d+j] = x
				}
			}
		}
	}
	if bad {
		return nil, nil, fmt.Errorf("linalg: symmetric eigendecomposition of a %d×%[1]d matrix: LAPACK Dsyevd returned NaN eigenvectors: %w", d, ErrNotConverged)
	}
	return values, v, nil
}

// addSyrkBLAS adds W·Wᵀ, for the d×k row-major W, to the upper triangle of
// c by the installed float64 BLAS's Dsyrk. It is ProjectPSD's reconstruction
// when a BLAS other than gonum's is installed.
func addSyrkBLAS(c blas64.Symmetric, w []float64, d, k int) {
	blas64.Syrk(blas.NoTrans, 1, blas64.General{Rows: d, Cols: k, Stride: k, Data: w[:d*k]}, 1, c)
}
