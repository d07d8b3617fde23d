package linalg

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// randSym returns a symmetric d×d matrix with eigenvalues spread evenly over
// [lo, hi] and random eigenvectors (from the QR of a Gaussian matrix).
func randSym(rnd *rand.Rand, d int, lo, hi float64) *mat.SymDense {
	g := mat.NewDense(d, d, nil)
	for i := range d {
		for j := range d {
			g.Set(i, j, rnd.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	a := mat.NewSymDense(d, nil)
	for k := range d {
		l := lo
		if d > 1 {
			l = lo + (hi-lo)*float64(k)/float64(d-1)
		}
		for i := range d {
			for j := i; j < d; j++ {
				a.SetSym(i, j, a.At(i, j)+l*q.At(i, k)*q.At(j, k))
			}
		}
	}
	return a
}

func randDense(rnd *rand.Rand, r, c int) *mat.Dense {
	b := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			b.Set(i, j, rnd.NormFloat64())
		}
	}
	return b
}

func TestEigenSym(t *testing.T) {
	rnd := rand.New(rand.NewPCG(20, 21))
	a := randSym(rnd, 9, -3, 5)
	vals, vecs, err := EigenSym(a)
	require.NoError(t, err)
	for k, want := range []float64{-3, -2, -1, 0, 1, 2, 3, 4, 5} {
		// Eigenvalues of a symmetric matrix are perfectly conditioned: the
		// error is a few ulps of ‖A‖ = 5 from building A and from Dsyev.
		if math.Abs(vals[k]-want) > 1e-13 {
			t.Errorf("eigenvalue %d = %v, want %v", k, vals[k], want)
		}
	}
	var recon mat.Dense
	recon.Mul(vecs, mat.NewDiagDense(9, vals))
	recon.Mul(&recon, vecs.T())
	require.True(t, mat.EqualApprox(&recon, a, 1e-13), "V·Λ·Vᵀ differs from A")
}

func TestProjectPSD(t *testing.T) {
	for _, c := range []struct {
		name   string
		d      int
		lo, hi float64
		floor  float64
	}{
		{"indefinite", 12, -4, 7, 0},
		{"floor", 12, -4, 7, 0.5},
		{"negative definite", 6, -5, -1, 0},
		{"negative floor", 8, -6, 3, -2},
		{"d=1", 1, -2, -2, 0},
		{"already PSD", 10, 1, 3, 0.5},
	} {
		t.Run(c.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(22, uint64(c.d)))
			a := randSym(rnd, c.d, c.lo, c.hi)
			p, err := ProjectPSD(a, c.floor)
			require.NoError(t, err)
			require.Equal(t, c.d, p.SymmetricDim())
			// Symmetric by type; a = V·Λ·Vᵀ costs rounding of about d·2⁻⁵³·max|λ|
			// ≈ 1e-14 here, so eigenvalues are compared at 1e-12.
			const tol = 1e-12
			vals, _, err := EigenSym(p)
			require.NoError(t, err)
			if vals[0] < c.floor-tol {
				t.Errorf("smallest eigenvalue %v < floor %v", vals[0], c.floor)
			}
			if c.lo >= c.floor {
				require.True(t, mat.Equal(p, a), "already above the floor but changed")
				return
			}
			// Closed form of the distance: ‖A − A₊‖²_F = Σ (floor − λ_i)² over λ_i < floor.
			av, _, err := EigenSym(a)
			require.NoError(t, err)
			want := 0.0
			for _, l := range av {
				if l < c.floor {
					want += (c.floor - l) * (c.floor - l)
				}
			}
			var diff mat.Dense
			diff.Sub(a, p)
			dist := mat.Norm(&diff, 2)
			if math.Abs(dist*dist-want) > tol*max(1, want) {
				t.Errorf("‖A − A₊‖²_F = %v, want %v", dist*dist, want)
			}
			// Nearest: random matrices with eigenvalues ≥ floor are no closer.
			for range 50 {
				q := randSym(rnd, c.d, c.floor, c.floor+rnd.Float64()*10)
				var dq mat.Dense
				dq.Sub(a, q)
				if mat.Norm(&dq, 2) < dist-tol {
					t.Fatalf("a matrix with eigenvalues ≥ floor is closer: %v < %v", mat.Norm(&dq, 2), dist)
				}
			}
		})
	}
}

func TestCholeskySolve(t *testing.T) {
	for _, s := range []struct{ d, m int }{{1, 1}, {5, 3}, {40, 17}, {100, 1}} {
		t.Run(fmt.Sprintf("d=%d/m=%d", s.d, s.m), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(23, uint64(s.d)))
			a := randSym(rnd, s.d, 0.1, 10) // condition number 100
			b := randDense(rnd, s.d, s.m)
			x, err := CholeskySolve(a, b)
			require.NoError(t, err)
			// Backward stable: ‖b − A·x‖ ≤ c·d·2⁻⁵³·‖A‖·‖x‖; 1e-13 leaves a
			// factor ≥ 10 for d ≤ 100 with ‖A‖ = 10.
			requireResiduals(t, a, x, b, 1e-13)
		})
	}
}

// requireResiduals checks ‖b_j − A·x_j‖ ≤ tol·‖A‖·‖x_j‖ for every column.
func requireResiduals(t *testing.T, a *mat.SymDense, x, b *mat.Dense, tol float64) {
	t.Helper()
	var r mat.Dense
	r.Mul(a, x)
	r.Sub(b, &r)
	na := mat.Norm(a, 2)
	_, m := b.Dims()
	for j := range m {
		rn, xn := mat.Norm(r.ColView(j), 2), mat.Norm(x.ColView(j), 2)
		if rn > tol*na*xn {
			t.Errorf("column %d: ‖b − Ax‖ = %g > %g·‖A‖·‖x‖ = %g", j, rn, tol, tol*na*xn)
		}
	}
}

func TestCG(t *testing.T) {
	for _, s := range []struct {
		d, m int
		cond float64
	}{{1, 1, 1}, {6, 3, 10}, {50, 8, 100}, {200, 5, 1000}} {
		t.Run(fmt.Sprintf("d=%d/m=%d/cond=%g", s.d, s.m, s.cond), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(24, uint64(s.d)))
			a := randSym(rnd, s.d, 1, s.cond)
			b := randDense(rnd, s.d, s.m)
			for i := range s.d { // a zero right-hand side converges at once
				b.Set(i, s.m-1, 0)
			}
			const tol = 1e-10
			res, err := CG(a, b, tol, 0)
			require.NoError(t, err)
			for j, r := range res.Residuals {
				// The recurrence residual drifts from the true one by about
				// cond·2⁻⁵³ per iteration; 100·tol leaves room for cond ≤ 1e3.
				if r > 100*tol {
					t.Errorf("column %d: relative residual %g", j, r)
				}
			}
			require.Equal(t, 0, res.Iterations[s.m-1], "zero right-hand side")
			want, err := CholeskySolve(a, b)
			require.NoError(t, err)
			// ‖x − x*‖ ≤ cond·‖r‖/‖b‖·‖x*‖.
			require.True(t, mat.EqualApprox(res.X, want, 100*tol*s.cond*mat.Norm(want, math.Inf(1))),
				"CG solution differs from Cholesky's")
		})
	}
	t.Run("not converged", func(t *testing.T) {
		rnd := rand.New(rand.NewPCG(25, 26))
		a := randSym(rnd, 60, 1, 1e4)
		b := randDense(rnd, 60, 2)
		res, err := CG(a, b, 1e-12, 3)
		require.ErrorIs(t, err, ErrNotConverged)
		require.NotNil(t, res)
		require.Equal(t, []int{3, 3}, res.Iterations)
	})
}

func TestSolveErrors(t *testing.T) {
	rnd := rand.New(rand.NewPCG(27, 28))
	spd := randSym(rnd, 4, 1, 2)
	b := randDense(rnd, 4, 2)
	nan := mat.NewSymDense(4, nil)
	nan.CopySym(spd)
	nan.SetSym(1, 2, math.NaN())
	inf := mat.DenseCopyOf(b)
	inf.Set(3, 1, math.Inf(-1))
	indef := randSym(rnd, 4, -1, 2)
	singular := randSym(rnd, 4, 0, 2)
	cases := []struct {
		name string
		a    *mat.SymDense
		b    *mat.Dense
		want error
	}{
		{"nil A", nil, b, ErrEmpty},
		{"empty A", &mat.SymDense{}, b, ErrEmpty},
		{"nil B", spd, nil, ErrEmpty},
		{"shape", spd, randDense(rnd, 3, 2), ErrShape},
		{"NaN A", nan, b, ErrNonFinite},
		{"Inf B", spd, inf, ErrNonFinite},
		{"indefinite", indef, b, ErrNotPositiveDefinite},
		{"singular", singular, b, ErrNotPositiveDefinite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CholeskySolve(c.a, c.b)
			if !errors.Is(err, c.want) {
				t.Errorf("CholeskySolve: error %v, want %v", err, c.want)
			}
			if c.name == "singular" {
				return // CG may converge on a consistent singular system
			}
			_, err = CG(c.a, c.b, 1e-10, 0)
			if !errors.Is(err, c.want) {
				t.Errorf("CG: error %v, want %v", err, c.want)
			}
		})
	}
	t.Run("min eigenvalue reported", func(t *testing.T) {
		_, err := NewCholesky(indef)
		var e *NotPositiveDefiniteError
		require.ErrorAs(t, err, &e)
		// indef has eigenvalues spread over [-1, 2]: the smallest is -1.
		if math.Abs(e.MinEigenvalue+1) > 1e-12 {
			t.Errorf("MinEigenvalue = %v, want -1", e.MinEigenvalue)
		}
	})
	t.Run("parameters", func(t *testing.T) {
		for _, tol := range []float64{0, -1, math.NaN(), math.Inf(1)} {
			if _, err := CG(spd, b, tol, 0); err == nil {
				t.Errorf("CG tolerance %v: no error", tol)
			}
		}
		if _, err := CG(spd, b, 1e-8, -1); err == nil {
			t.Error("CG maxIter -1: no error")
		}
		for _, f := range []float64{math.NaN(), math.Inf(-1)} {
			if _, err := ProjectPSD(spd, f); !errors.Is(err, ErrNonFinite) {
				t.Errorf("ProjectPSD floor %v: error %v, want ErrNonFinite", f, err)
			}
		}
		if _, err := ProjectPSD(nan, 0); !errors.Is(err, ErrNonFinite) {
			t.Errorf("ProjectPSD of NaN matrix: error %v", err)
		}
		if _, _, err := EigenSym(nil); !errors.Is(err, ErrEmpty) {
			t.Errorf("EigenSym(nil): error %v", err)
		}
	})
}
