package linalg

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"

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
// matrix, so that a = V·diag(values)·Vᵀ.
//
// a is scaled by a power of two to entries of order 1 (exactly, but for
// entries 2¹⁰²² times smaller than the largest), reduced to
// tridiagonal form a = Q·T·Qᵀ by Householder reflections, Q is formed from
// blocks of reflections with matrix products, and T is diagonalised by the
// implicit QL method whose rotations are applied to Q in batches, rows in
// parallel (see eigen_tridiag.go and eigen_ql.go). This is the algorithm of
// LAPACK's Dsyev (Dsytrd, Dorgtr, Dsteqr) with its work arranged for cache
// and vector units: eigenvalues are accurate to a small multiple of
// d·2⁻⁵³·‖a‖, and the residual ‖a·V − V·Λ‖ and the loss of orthogonality
// ‖VᵀV − I‖ are of the same order. The work runs on GOMAXPROCS goroutines
// with AVX2/FMA kernels where available (amd64 without the purego tag); the
// result does not depend on the number of goroutines, and is the same bit
// for bit on every call (the pure-Go kernels, which do not fuse
// multiply-adds, round differently). Ties among the eigenvalues keep the
// order in which the iteration found them.
//
// After UseOpenBLAS (builds with the openblas tag), EigenSym instead calls
// OpenBLAS's LAPACK Dsyevd, the divide-and-conquer routine behind numpy's
// eigh, on the same power-of-two scaling of a: the accuracy bounds above
// hold for it too, the eigenvalues still ascend, and the result is as
// reproducible as OpenBLAS is (it runs on OpenBLAS's threads).
// blas64.Use(gonum.Implementation{}) switches back to linalg's own kernels.
//
// EigenSym returns an error wrapping ErrEmpty or ErrNonFinite for an empty a,
// one with a NaN or ±Inf entry or one with an eigenvalue beyond the float64
// range (entries near math.MaxFloat64), and ErrNotConverged if the QL
// iteration fails (after 30·d sweeps, which does not happen in practice).
func EigenSym(a *mat.SymDense) (values []float64, vectors *mat.Dense, err error) {
	if err := checkSym("A", a); err != nil {
		return nil, nil, err
	}
	values, v, err := eigenSym(a, runtime.GOMAXPROCS(0), gemmUseAsm)
	if err != nil {
		return nil, nil, err
	}
	d := len(values)
	return values, mat.NewDense(d, d, v), nil
}

// eigenSym is EigenSym on a checked, non-empty a, with the eigenvectors
// returned row-major (V[i][j] at v[i*d+j]).
func eigenSym(a *mat.SymDense, workers int, useAsm bool) (values, v []float64, err error) {
	raw := a.RawSymmetric()
	d := raw.N
	amax := 0.0
	for i := range d {
		for _, x := range raw.Data[i*raw.Stride+i : i*raw.Stride+d] {
			amax = max(amax, math.Abs(x))
		}
	}
	values = make([]float64, d)
	v = make([]float64, d*d)
	if amax == 0 {
		for i := range d {
			v[i*d+i] = 1
		}
		return values, v, nil
	}
	// a·2^−e has entries below 1 in magnitude, at least one ≥ 1/2.
	_, e := math.Frexp(amax)
	scale := math.Ldexp(1, -e) // a power of two: exact but below 2⁻¹⁰²²
	if lp := activeLAPACK(d); lp != nil {
		return eigenSymLAPACK(lp, raw, scale, e, values, v)
	}
	w := make([]float64, max(d*d, rotPanelsLen(d))) // lower triangle of the scaled a, then the panels
	for j := range d {
		for i, x := range raw.Data[j*raw.Stride+j : j*raw.Stride+d] {
			w[(j+i)*d+j] = x * scale
		}
	}
	diag := make([]float64, d)
	off := make([]float64, d)
	tau := make([]float64, max(d-2, 0))
	tridiagReduce(w, d, diag, off, tau, workers, useAsm)
	tridiagFormQ(v, w, d, tau, workers, useAsm)
	z := newRotPanels(v, d, w)
	if err := tridiagQL(diag, off, z, workers, useAsm); err != nil {
		return nil, nil, fmt.Errorf("linalg: symmetric eigendecomposition of a %d×%[1]d matrix: %w", d, err)
	}
	perm := make([]int, d)
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(i, j int) int { return cmp.Compare(diag[i], diag[j]) })
	for j, p := range perm {
		values[j] = math.Ldexp(diag[p], e)
		if math.IsInf(values[j], 0) {
			return nil, nil, fmt.Errorf("linalg: eigenvalue %d of a %d×%[2]d matrix overflows float64: %w", j, d, ErrNonFinite)
		}
	}
	for i := range d {
		src := z.z[(i/4)*4*d+i%4:]
		row := v[i*d : (i+1)*d]
		for j, p := range perm {
			row[j] = src[4*p]
		}
	}
	return values, v, nil
}

// ProjectPSD returns the matrix nearest to a in Frobenius norm among the
// symmetric matrices whose eigenvalues are all at least floor: with
// a = V·diag(λ)·Vᵀ, it is V·diag(max(λ_i, floor))·Vᵀ. With floor = 0 this is
// the projection onto the positive semidefinite cone, the post-processing
// applied to a noisy Gram matrix; floor > 0 also bounds the condition number.
//
// If every eigenvalue of a is already at least floor, ProjectPSD returns an
// exact copy of a, not a rounded reconstruction. Otherwise, with the
// eigenvalues below floor (C) or above it (K), whichever are fewer, it
// returns a + Σ_{i∈C} (floor − λ_i)·v_i·v_iᵀ or floor·I + Σ_{i∈K}
// (λ_i − floor)·v_i·v_iᵀ, which are equal in exact arithmetic; the sum is
// one symmetric rank-k product, by linalg's GEMM kernel or, while a BLAS
// other than gonum's is installed, by its Dsyrk. The eigendecomposition is
// EigenSym's (on LAPACK after UseOpenBLAS). The result is symmetric by
// construction and its eigenvalues are at least floor up to rounding (about
// d·2⁻⁵³·max|λ|).
//
// ProjectPSD returns an error wrapping ErrEmpty or ErrNonFinite for an empty
// a, an a with a NaN or ±Inf entry, a non-finite floor, or a result beyond
// the float64 range, and ErrNotConverged if the eigendecomposition fails. a
// is not modified.
func ProjectPSD(a *mat.SymDense, floor float64) (*mat.SymDense, error) {
	if math.IsNaN(floor) || math.IsInf(floor, 0) {
		return nil, fmt.Errorf("linalg: PSD projection floor = %v: %w", floor, ErrNonFinite)
	}
	if err := checkSym("A", a); err != nil {
		return nil, err
	}
	workers := runtime.GOMAXPROCS(0)
	values, v, err := eigenSym(a, workers, gemmUseAsm)
	if err != nil {
		return nil, err
	}
	d := len(values)
	out := mat.NewSymDense(d, nil)
	if values[0] >= floor {
		out.CopySym(a)
		return out, nil
	}
	// Eigenvalues ascend: [0, nc) are below floor, [nk0, d) above it.
	nc := sort.SearchFloat64s(values, floor)
	nk0 := nc
	for nk0 < d && values[nk0] <= floor {
		nk0++
	}
	cols, sign := make([]int, 0, d), 1.0
	if nc <= d-nk0 {
		for i := range nc {
			cols = append(cols, i)
		}
		out.CopySym(a)
	} else {
		for i := nk0; i < d; i++ {
			cols = append(cols, i)
		}
		sign = -1
		for i := range d {
			out.SetSym(i, i, floor)
		}
	}
	// W (d×k): column t is v_i·√(sign·(floor − λ_i)) for i = cols[t].
	k := len(cols)
	c := out.RawSymmetric()
	if k == 0 {
		return out, nil
	}
	wm := make([]float64, d*k)
	for t, i := range cols {
		f := math.Sqrt(sign * (floor - values[i]))
		for r := range d {
			wm[r*k+t] = v[r*d+i] * f
		}
	}
	if float64BLASInstalled() {
		addSyrkBLAS(c, wm, d, k) // the installed BLAS's Dsyrk
	} else {
		ww := v // V is no longer needed: W·Wᵀ goes in its place
		clear(ww)
		dgemm(d, d, k, wm, k, 1, wm, 1, k, ww, d, triUpper, workers, gemmUseAsm)
		for i := range d {
			row := c.Data[i*c.Stride+i : i*c.Stride+d]
			for j, x := range ww[i*d+i : (i+1)*d] {
				row[j] += x
			}
		}
	}
	for i := range d {
		for j, x := range c.Data[i*c.Stride+i : i*c.Stride+d] {
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, fmt.Errorf("linalg: PSD projection entry (%d, %d) overflows float64: %w", i, i+j, ErrNonFinite)
			}
		}
	}
	return out, nil
}
