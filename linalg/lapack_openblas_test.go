//go:build openblas && cgo

package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/mat"
)

// lapackCalls counts the calls of the installed LAPACK's routines.
type lapackCalls struct{ dsyevd, dpotrf, dpocon atomic.Int64 }

// withLAPACK runs f with OpenBLAS installed (blas64 and LAPACK) and the
// LAPACK wrapped so that calls are counted, then switches back to pure Go
// as a program would, with blas64.Use(gonum.Implementation{}).
func withLAPACK(t *testing.T, f func(calls *lapackCalls)) {
	t.Helper()
	UseOpenBLAS()
	defer blas64.Use(gonum.Implementation{})
	lp := lapackInstalled.Load()
	require.NotNil(t, lp, "UseOpenBLAS installed no LAPACK")
	calls := new(lapackCalls)
	lapackInstalled.Store(&lapackBackend{
		maxDim: lp.maxDim,
		dsyevd: func(n int, a []float64, lda int, w []float64) int {
			calls.dsyevd.Add(1)
			return lp.dsyevd(n, a, lda, w)
		},
		dpotrf: func(n int, a []float64, lda int) int {
			calls.dpotrf.Add(1)
			return lp.dpotrf(n, a, lda)
		},
		dpocon: func(n int, a []float64, lda int, anorm float64) float64 {
			calls.dpocon.Add(1)
			return lp.dpocon(n, a, lda, anorm)
		},
	})
	defer lapackInstalled.Store(lp)
	require.NotNil(t, activeLAPACK(10), "LAPACK installed but not active")
	f(calls)
}

// pureGo runs f with gonum's blas64, so that EigenSym, ProjectPSD and
// NewCholesky use linalg's and gonum's own code, and restores OpenBLAS.
func pureGo(t *testing.T, f func()) {
	t.Helper()
	blas64.Use(gonum.Implementation{})
	defer UseOpenBLAS()
	require.Nil(t, activeLAPACK(10), "LAPACK still active with gonum's BLAS")
	f()
}

// TestLAPACKSwitch checks that UseOpenBLAS turns the LAPACK routing on and
// blas64.Use(gonum.Implementation{}) turns it off again, and that the
// routed functions do call the LAPACK routines.
func TestLAPACKSwitch(t *testing.T) {
	require.Nil(t, activeLAPACK(10), "LAPACK active before UseOpenBLAS")
	rnd := rand.New(rand.NewPCG(40, 41))
	a := randSym(rnd, 30, -1, 4)
	spd := randSym(rnd, 30, 1, 4)
	withLAPACK(t, func(calls *lapackCalls) {
		_, _, err := EigenSym(a)
		require.NoError(t, err)
		require.EqualValues(t, 1, calls.dsyevd.Load(), "EigenSym did not call Dsyevd")
		_, err = ProjectPSD(a, 0)
		require.NoError(t, err)
		require.EqualValues(t, 2, calls.dsyevd.Load(), "ProjectPSD did not call Dsyevd")
		_, err = CholeskySolve(spd, randDense(rnd, 30, 2))
		require.NoError(t, err)
		require.EqualValues(t, 1, calls.dpotrf.Load(), "NewCholesky did not call Dpotrf")
		require.EqualValues(t, 1, calls.dpocon.Load(), "NewCholesky did not call Dpocon")
		// Too large for the backend: the pure-Go code runs instead.
		lp := lapackInstalled.Load()
		lapackInstalled.Store(&lapackBackend{maxDim: 29, dsyevd: lp.dsyevd, dpotrf: lp.dpotrf, dpocon: lp.dpocon})
		_, _, err = EigenSym(a)
		require.NoError(t, err)
		lapackInstalled.Store(lp)
		require.EqualValues(t, 2, calls.dsyevd.Load(), "Dsyevd called beyond maxDim")
		pureGo(t, func() {
			_, _, err := EigenSym(a)
			require.NoError(t, err)
			_, err = NewCholesky(spd)
			require.NoError(t, err)
		})
		require.EqualValues(t, 2, calls.dsyevd.Load(), "Dsyevd called with gonum's BLAS installed")
		require.EqualValues(t, 1, calls.dpotrf.Load(), "Dpotrf called with gonum's BLAS installed")
	})
	require.Nil(t, activeLAPACK(10), "LAPACK active after blas64.Use(gonum.Implementation{})")
}

// TestLAPACKEigenSymAccuracy holds EigenSym on Dsyevd to the tolerances of
// TestEigenSymAccuracy (see there) on the same matrices: eigenvalues against
// gonum's Dsyev and the residual at 2e-14·√d of ‖A‖, orthogonality at
// 10·d·2⁻⁵², eigenvalues ascending. It also compares with linalg's own
// eigensolver: eigenvalues to the same tolerance, and for eigenvalues
// separated from the rest by a gap g the eigenvectors to within
// 2e-14·√d·‖A‖/g in angle (the Davis–Kahan bound of either's error).
func TestLAPACKEigenSymAccuracy(t *testing.T) {
	cases := eigenCases()
	wants := make([][]float64, len(cases))
	type result struct {
		vals []float64
		v    *mat.Dense
	}
	own := make([]result, len(cases))
	for i, c := range cases {
		if testing.Short() && !c.short {
			continue
		}
		wants[i] = dsyevValues(t, c.a)
		pureGo(t, func() {
			vals, v, err := EigenSym(c.a)
			require.NoError(t, err)
			own[i] = result{vals, v}
		})
	}
	withLAPACK(t, func(calls *lapackCalls) {
		for i, c := range cases {
			if testing.Short() && !c.short {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				d := c.a.SymmetricDim()
				before := calls.dsyevd.Load()
				vals, v, err := EigenSym(c.a)
				require.NoError(t, err)
				if allZero(c.a) {
					require.Equal(t, before, calls.dsyevd.Load(), "Dsyevd called for a zero matrix")
				} else {
					require.Equal(t, before+1, calls.dsyevd.Load(), "Dsyevd not called")
				}
				for i := 1; i < d; i++ {
					if vals[i] < vals[i-1] {
						t.Fatalf("eigenvalue %d = %v < eigenvalue %d = %v: not ascending", i, vals[i], i-1, vals[i-1])
					}
				}
				dval, res, orth := eigenErrors(c.a, wants[i], vals, v)
				tol := 2e-14 * math.Sqrt(float64(d))
				orthTol := 10 * float64(d) * 0x1p-52
				t.Logf("eigenvalues %.1e, residual %.1e (tolerance %.1e), orthogonality %.1e (tolerance %.1e)", dval, res, tol, orth, orthTol)
				if dval > tol {
					t.Errorf("eigenvalues differ from Dsyev's by %.3g·‖A‖, want ≤ %.3g", dval, tol)
				}
				if res > tol {
					t.Errorf("‖AV − VΛ‖_F/‖A‖_F = %.3g, want ≤ %.3g", res, tol)
				}
				if orth > orthTol {
					t.Errorf("‖VᵀV − I‖_F = %.3g, want ≤ %.3g", orth, orthTol)
				}
				norm2 := max(math.Abs(vals[0]), math.Abs(vals[d-1]))
				for j := range d {
					if dv := math.Abs(vals[j] - own[i].vals[j]); dv > tol*norm2 {
						t.Errorf("eigenvalue %d = %v, linalg's own %v", j, vals[j], own[i].vals[j])
					}
					gap := math.Inf(1)
					if j > 0 {
						gap = vals[j] - vals[j-1]
					}
					if j < d-1 {
						gap = min(gap, vals[j+1]-vals[j])
					}
					if gap < 1e-3*norm2 {
						continue
					}
					// ‖v − ±w‖ = 2·sin(θ/2) for the angle θ between them.
					var diff mat.VecDense
					diff.ScaleVec(math.Copysign(1, mat.Dot(v.ColView(j), own[i].v.ColView(j))), own[i].v.ColView(j))
					diff.SubVec(v.ColView(j), &diff)
					if angle := mat.Norm(&diff, 2); angle > 4*tol*norm2/gap+1e-14 {
						t.Errorf("eigenvector %d at angle %.3g from linalg's own (gap %.3g·‖A‖)", j, angle, gap/norm2)
					}
				}
			})
		}
	})
}

func allZero(a *mat.SymDense) bool {
	d := a.SymmetricDim()
	for i := range d {
		for j := i; j < d; j++ {
			if a.At(i, j) != 0 {
				return false
			}
		}
	}
	return true
}

// TestLAPACKEigenSymClosedForm checks Dsyevd's eigenvalues of Q·diag(λ)·Qᵀ
// against the λ it was built from, at the sizes of the benchmarks' smaller
// shapes: the building rounds A by about d·2⁻⁵³·max|λ|, and the
// eigenvalues move by at most that (Weyl), so 1e-13·max|λ| leaves room.
func TestLAPACKEigenSymClosedForm(t *testing.T) {
	d := 400
	if testing.Short() {
		d = 120
	}
	rnd := rand.New(rand.NewPCG(42, 43))
	l := make([]float64, d)
	for i := range l {
		l[i] = float64(i%(d/2)) - float64(d)/8 // repeated, negative, zero and positive
	}
	a := withEigenvalues(rnd, l)
	withLAPACK(t, func(*lapackCalls) {
		vals, v, err := EigenSym(a)
		require.NoError(t, err)
		want := append([]float64(nil), l...)
		slices.Sort(want)
		scale := max(math.Abs(want[0]), math.Abs(want[d-1]))
		for i := range d {
			if math.Abs(vals[i]-want[i]) > 1e-13*scale {
				t.Errorf("eigenvalue %d = %v, want %v", i, vals[i], want[i])
			}
		}
		var recon mat.Dense
		recon.Mul(v, mat.NewDiagDense(d, vals))
		recon.Mul(&recon, v.T())
		require.True(t, mat.EqualApprox(&recon, a, 1e-13*scale*math.Sqrt(float64(d))), "V·Λ·Vᵀ differs from A")
	})
}

// TestLAPACKProjectPSD checks ProjectPSD with Dsyevd and Dsyrk against the
// pure-Go ProjectPSD, and against the closed form Q·diag(max(λ, floor))·Qᵀ
// of a matrix built as Q·diag(λ)·Qᵀ: both are rounded reconstructions, of
// about d·2⁻⁵³·max|λ| each, held to 1e-13·d·max|λ| in the max row sum norm
// as in TestProjectPSDLarge.
func TestLAPACKProjectPSD(t *testing.T) {
	d := 300
	if testing.Short() {
		d = 100
	}
	rnd := rand.New(rand.NewPCG(44, 45))
	l := make([]float64, d)
	for i := range l {
		l[i] = 10 * rnd.NormFloat64()
	}
	q := randOrthogonal(rnd, d)
	a := fromEigen(q, l)
	for _, floor := range []float64{0, -5, 3, 100} {
		t.Run(fmt.Sprintf("floor=%v", floor), func(t *testing.T) {
			var own *mat.SymDense
			pureGo(t, func() {
				var err error
				own, err = ProjectPSD(a, floor)
				require.NoError(t, err)
			})
			clamped := make([]float64, d)
			scale := 0.0
			for i, x := range l {
				clamped[i] = max(x, floor)
				scale = max(scale, math.Abs(x), math.Abs(clamped[i]))
			}
			want := fromEigen(q, clamped)
			withLAPACK(t, func(calls *lapackCalls) {
				p, err := ProjectPSD(a, floor)
				require.NoError(t, err)
				require.EqualValues(t, 1, calls.dsyevd.Load())
				tol := 1e-13 * float64(d) * scale
				for _, c := range []struct {
					name string
					m    *mat.SymDense
				}{{"closed form", want}, {"pure Go", own}} {
					var diff mat.Dense
					diff.Sub(p, c.m)
					if m := mat.Norm(&diff, math.Inf(1)); m > tol {
						t.Errorf("max row sum of |P − P_%s| = %.3g, want ≤ %.3g", c.name, m, tol)
					}
				}
				pv, _, err := EigenSym(p)
				require.NoError(t, err)
				if pv[0] < floor-tol {
					t.Errorf("smallest eigenvalue %v < floor %v − %.3g", pv[0], floor, tol)
				}
			})
		})
	}
	t.Run("already above the floor", func(t *testing.T) {
		withLAPACK(t, func(*lapackCalls) {
			p, err := ProjectPSD(a, l[0]-1e3)
			require.NoError(t, err)
			require.True(t, mat.Equal(p, a), "already above the floor but changed")
		})
	})
}

// randOrthogonal returns the Q of the QR factorisation of a Gaussian matrix.
func randOrthogonal(rnd *rand.Rand, d int) *mat.Dense {
	var qr mat.QR
	qr.Factorize(randDense(rnd, d, d))
	var q mat.Dense
	qr.QTo(&q)
	return &q
}

// fromEigen returns Q·diag(l)·Qᵀ, symmetrised.
func fromEigen(q *mat.Dense, l []float64) *mat.SymDense {
	d := len(l)
	var ql, full mat.Dense
	ql.Mul(q, mat.NewDiagDense(d, l))
	full.Mul(&ql, q.T())
	return symFrom(d, func(i, j int) float64 { return (full.At(i, j) + full.At(j, i)) / 2 })
}

// TestLAPACKCholesky checks NewCholesky on Dpotrf and Dpocon: solutions
// against the closed form X = Q·diag(1/λ)·Qᵀ·B and against the pure-Go
// factorisation (both within cond·d·2⁻⁵³ relative, held to 1e-13·cond·√d),
// the residual bound of TestCholeskySolve, the condition estimate against
// the pure-Go one (the same algorithm, Dlacn2, on factors that differ by
// rounding: within 1 %) and against the true 1-norm condition number (an
// estimate is at most the true value and, here, at least a tenth of it).
func TestLAPACKCholesky(t *testing.T) {
	for _, s := range []struct {
		d, m int
		cond float64
	}{{1, 1, 1}, {7, 3, 10}, {150, 100, 1e3}, {700, 10, 1e6}} {
		if testing.Short() && s.d > 200 {
			continue
		}
		t.Run(fmt.Sprintf("d=%d/m=%d/cond=%g", s.d, s.m, s.cond), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(46, uint64(s.d)))
			q := randOrthogonal(rnd, s.d)
			l := make([]float64, s.d)
			inv := make([]float64, s.d)
			for i := range l {
				l[i] = 1
				if s.d > 1 {
					l[i] = math.Pow(s.cond, float64(i)/float64(s.d-1))
				}
				inv[i] = 1 / l[i]
			}
			a := fromEigen(q, l)
			b := randDense(rnd, s.d, s.m)
			var want mat.Dense
			want.Mul(fromEigen(q, inv), b)
			var own *Cholesky
			var ownX *mat.Dense
			pureGo(t, func() {
				var err error
				own, err = NewCholesky(a)
				require.NoError(t, err)
				ownX, err = own.Solve(b)
				require.NoError(t, err)
			})
			withLAPACK(t, func(calls *lapackCalls) {
				c, err := NewCholesky(a)
				require.NoError(t, err)
				require.EqualValues(t, 1, calls.dpotrf.Load())
				require.Equal(t, s.d, c.Dim())
				x, err := c.Solve(b)
				require.NoError(t, err)
				tol := 1e-13 * s.cond * math.Sqrt(float64(s.d))
				for name, ref := range map[string]*mat.Dense{"closed form": &want, "pure Go": ownX} {
					var diff mat.Dense
					diff.Sub(x, ref)
					if e := mat.Norm(&diff, 2) / mat.Norm(ref, 2); e > tol {
						t.Errorf("‖X − X_%s‖/‖X_%[1]s‖ = %.3g, want ≤ %.3g", name, e, tol)
					}
				}
				requireResiduals(t, a, x, b, 1e-13*math.Sqrt(float64(s.d)))
				if r := c.Cond() / own.Cond(); math.Abs(r-1) > 0.01 {
					t.Errorf("Cond() = %v, pure Go %v", c.Cond(), own.Cond())
				}
				// The 1-norm condition number of a, computed from the closed form.
				var ainv mat.Dense
				ainv.CloneFrom(fromEigen(q, inv))
				exact := mat.Norm(a, 1) * mat.Norm(&ainv, 1)
				if c.Cond() > exact*(1+1e-8) || c.Cond() < exact/10 {
					t.Errorf("Cond() = %v, 1-norm condition number %v", c.Cond(), exact)
				}
			})
		})
	}
}

// TestLAPACKCholeskyErrors checks the errors of NewCholesky on Dpotrf: an
// indefinite matrix and one whose condition number exceeds 1e16 give a
// *NotPositiveDefiniteError, the first with its smallest eigenvalue (−0.5,
// computed by Dsyevd) and an infinite condition number; and the error tests
// of the pure-Go build pass as they are.
func TestLAPACKCholeskyErrors(t *testing.T) {
	rnd := rand.New(rand.NewPCG(47, 48))
	d := 60
	q := randOrthogonal(rnd, d)
	l := make([]float64, d)
	for i := range l {
		l[i] = 1 + float64(i)
	}
	l[17] = -0.5
	indef := fromEigen(q, l)
	l[17] = 1e-20 // positive, but cond = 6e21 and below rounding
	illCond := fromEigen(q, l)
	withLAPACK(t, func(calls *lapackCalls) {
		_, err := NewCholesky(indef)
		var e *NotPositiveDefiniteError
		require.ErrorAs(t, err, &e)
		require.ErrorIs(t, err, ErrNotPositiveDefinite)
		require.Equal(t, d, e.N)
		require.True(t, math.IsInf(e.Cond, 1), "Cond = %v for a failed factorisation", e.Cond)
		if math.Abs(e.MinEigenvalue+0.5) > 1e-12 {
			t.Errorf("MinEigenvalue = %v, want -0.5", e.MinEigenvalue)
		}
		require.EqualValues(t, 1, calls.dsyevd.Load(), "the smallest eigenvalue did not come from Dsyevd")
		_, err = CholeskySolve(illCond, randDense(rnd, d, 2))
		require.ErrorAs(t, err, &e)
		require.True(t, e.Cond > maxCond, "Cond = %v, want > %v", e.Cond, maxCond)
		t.Run("TestSolveErrors", TestSolveErrors)
		t.Run("TestEigenSymErrors", TestEigenSymErrors)
		t.Run("TestEigenSymExact", TestEigenSymExact)
		t.Run("TestEigenSym", TestEigenSym)
		t.Run("TestProjectPSD", TestProjectPSD)
		t.Run("TestProjectPSDLarge", TestProjectPSDLarge)
		t.Run("TestCholeskySolve", TestCholeskySolve)
		require.Positive(t, calls.dpotrf.Load())
	})
}

// TestLAPACKConcurrent runs EigenSym, ProjectPSD and Cholesky solves on
// LAPACK from several goroutines at once: the results are those of a
// single call, bit for bit (run with -race as well).
func TestLAPACKConcurrent(t *testing.T) {
	rnd := rand.New(rand.NewPCG(49, 50))
	a := noisyGram(rnd, 300, 150, 10, 3)
	spd := randSym(rnd, 150, 1, 100)
	b := randDense(rnd, 150, 20)
	withLAPACK(t, func(*lapackCalls) {
		vals, v, err := EigenSym(a)
		require.NoError(t, err)
		p, err := ProjectPSD(a, 0)
		require.NoError(t, err)
		c, err := NewCholesky(spd)
		require.NoError(t, err)
		x, err := c.Solve(b)
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 4 {
			wg.Go(func() {
				vals2, v2, err := EigenSym(a)
				if err != nil || !equalFloats(vals, vals2) || !mat.Equal(v, v2) {
					errs <- fmt.Errorf("concurrent EigenSym differs (error %v)", err)
				}
				p2, err := ProjectPSD(a, 0)
				if err != nil || !mat.Equal(p, p2) {
					errs <- fmt.Errorf("concurrent ProjectPSD differs (error %v)", err)
				}
				x2, err := c.Solve(b)
				if err != nil || !mat.Equal(x, x2) {
					errs <- fmt.Errorf("concurrent Solve differs (error %v)", err)
				}
				if _, err := NewCholesky(spd); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}
