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

// eigenCase is a symmetric test matrix for EigenSym.
type eigenCase struct {
	name  string
	a     *mat.SymDense
	short bool // run under -short too
}

// symFrom returns the symmetric matrix with entries f(i, j), i ≤ j.
func symFrom(d int, f func(i, j int) float64) *mat.SymDense {
	a := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			a.SetSym(i, j, f(i, j))
		}
	}
	return a
}

// gaussSym returns a symmetric matrix with independent N(0, 1) entries.
func gaussSym(rnd *rand.Rand, d int) *mat.SymDense {
	return symFrom(d, func(i, j int) float64 { return rnd.NormFloat64() })
}

// withEigenvalues returns Q·diag(l)·Qᵀ for a random orthogonal Q.
func withEigenvalues(rnd *rand.Rand, l []float64) *mat.SymDense {
	d := len(l)
	var qr mat.QR
	qr.Factorize(randDense(rnd, d, d))
	var q mat.Dense
	qr.QTo(&q)
	var ql mat.Dense
	ql.Mul(&q, mat.NewDiagDense(d, l))
	var full mat.Dense
	full.Mul(&ql, q.T())
	return symFrom(d, func(i, j int) float64 { return (full.At(i, j) + full.At(j, i)) / 2 })
}

// noisyGram returns XᵀX + N for X (n×d) of rank r and N a symmetric matrix
// of N(0, σ²) entries: the noisy Gram matrix DP-LS projects.
func noisyGram(rnd *rand.Rand, n, d, r int, sigma float64) *mat.SymDense {
	u, v := randDense(rnd, n, r), randDense(rnd, r, d)
	var x mat.Dense
	x.Mul(u, v)
	var g mat.Dense
	g.Mul(x.T(), &x)
	return symFrom(d, func(i, j int) float64 { return g.At(i, j) + sigma*rnd.NormFloat64() })
}

func eigenCases() []eigenCase {
	rnd := rand.New(rand.NewPCG(30, 31))
	var cs []eigenCase
	for _, d := range []int{1, 2, 3, 4, 5, 7, 12, 13, 31, 64, 100} {
		cs = append(cs, eigenCase{fmt.Sprintf("gauss/d=%d", d), gaussSym(rnd, d), true})
	}
	for _, d := range []int{193, 257, 513, 600} {
		cs = append(cs, eigenCase{fmt.Sprintf("gauss/d=%d", d), gaussSym(rnd, d), false})
	}
	diag := make([]float64, 40)
	for i := range diag {
		diag[i] = rnd.NormFloat64() * 10
	}
	repeated := make([]float64, 60)
	clustered := make([]float64, 60)
	for i := range repeated {
		repeated[i] = float64(i % 3)
		clustered[i] = 1 + 1e-10*float64(i%7)
		if i%2 == 0 {
			clustered[i] = -1 - 1e-12*float64(i)
		}
	}
	graded := make([]float64, 50)
	for i := range graded {
		graded[i] = math.Pow(10, float64(i%17)-8) * float64(1-2*(i%2))
	}
	cs = append(cs,
		eigenCase{"diagonal", symFrom(40, func(i, j int) float64 {
			if i == j {
				return diag[i]
			}
			return 0
		}), true},
		eigenCase{"zero/d=1", mat.NewSymDense(1, nil), true},
		eigenCase{"zero/d=9", mat.NewSymDense(9, nil), true},
		eigenCase{"identity", symFrom(33, func(i, j int) float64 { return float64(b2i(i == j)) }), true},
		eigenCase{"all ones", symFrom(20, func(i, j int) float64 { return 1 }), true},
		eigenCase{"repeated", withEigenvalues(rnd, repeated), true},
		eigenCase{"clustered", withEigenvalues(rnd, clustered), true},
		eigenCase{"graded eigenvalues", withEigenvalues(rnd, graded), true},
		eigenCase{"tridiagonal Wilkinson W21+", symFrom(21, func(i, j int) float64 {
			switch {
			case i == j:
				return math.Abs(float64(i - 10))
			case j == i+1:
				return 1
			}
			return 0
		}), true},
		eigenCase{"split blocks", symFrom(30, func(i, j int) float64 {
			if i/10 != j/10 {
				return 0
			}
			return float64((i*7+j*3)%11) - 5
		}), true},
		eigenCase{"scaled 1e150", scaleSym(gaussSym(rnd, 25), 1e150), true},
		eigenCase{"scaled 1e-150", scaleSym(gaussSym(rnd, 25), 1e-150), true},
		eigenCase{"badly scaled rows", badlyScaled(rnd, 40), true},
		eigenCase{"noisy low-rank Gram/d=80", noisyGram(rnd, 200, 80, 5, 3), true},
		eigenCase{"noisy low-rank Gram/d=400", noisyGram(rnd, 1000, 400, 20, 10), false},
	)
	return cs
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scaleSym(a *mat.SymDense, f float64) *mat.SymDense {
	a.ScaleSym(f, a)
	return a
}

// badlyScaled returns D·G·D for a Gaussian G and D with entries 10^(−6…6).
func badlyScaled(rnd *rand.Rand, d int) *mat.SymDense {
	g := gaussSym(rnd, d)
	s := make([]float64, d)
	for i := range s {
		s[i] = math.Pow(10, 12*rnd.Float64()-6)
	}
	return symFrom(d, func(i, j int) float64 { return s[i] * g.At(i, j) * s[j] })
}

// dsyevValues returns the eigenvalues of a from gonum's Dsyev. (With
// vectors: without them gonum v0.17's Dsterf panics on a matrix of entries
// near 1e-150.)
func dsyevValues(t *testing.T, a *mat.SymDense) []float64 {
	t.Helper()
	var ref mat.EigenSym
	require.True(t, ref.Factorize(a, true), "gonum's EigenSym failed")
	return ref.Values(nil)
}

// eigenErrors returns, for a = V·Λ·Vᵀ claimed by (vals, v), the largest
// eigenvalue difference from want (Dsyev's) divided by ‖a‖₂, the residual
// ‖a·V − V·Λ‖_F/‖a‖_F and ‖VᵀV − I‖_F.
func eigenErrors(a *mat.SymDense, want, vals []float64, v *mat.Dense) (dval, res, orth float64) {
	d := a.SymmetricDim()
	norm2 := max(math.Abs(want[0]), math.Abs(want[d-1]))
	for i := range d {
		if vals[i] != want[i] {
			dval = max(dval, math.Abs(vals[i]-want[i])/norm2)
		}
	}
	var av, vl mat.Dense
	av.Mul(a, v)
	vl.Mul(v, mat.NewDiagDense(d, vals))
	av.Sub(&av, &vl)
	if nf := mat.Norm(a, 2); nf > 0 {
		res = mat.Norm(&av, 2) / nf
	} else {
		res = mat.Norm(&av, 2)
	}
	var vtv mat.Dense
	vtv.Mul(v.T(), v)
	for i := range d {
		vtv.Set(i, i, vtv.At(i, i)-1)
	}
	return dval, res, mat.Norm(&vtv, 2)
}

// TestEigenSymAccuracy checks EigenSym against gonum's Dsyev and by its
// residual and orthogonality, for the assembly and the pure-Go kernels.
//
// Tolerances: Householder tridiagonalisation and QL are backward stable
// with an error of a small multiple of d·2⁻⁵³·‖a‖ in the worst case and
// about √d·2⁻⁵³·‖a‖ in practice (LAPACK Working Note 41). The eigenvalues
// (against gonum's, which carry their own error) and the residual are held
// to 2e-14·√d, 20 times the largest seen for either kernel (9e-15 at
// d = 513). The loss of orthogonality grows like d·2⁻⁵³ with the number of
// rotations (1.8e-13 at d = 513, about 1.6·d·2⁻⁵²); it is held to
// 10·d·2⁻⁵², where LAPACK's own tests (xSTT21, xSYT21) pass at a ratio of 30.
// A wrong rotation or a reflection on the wrong side fails all three by
// orders of magnitude.
func TestEigenSymAccuracy(t *testing.T) {
	for _, c := range eigenCases() {
		if testing.Short() && !c.short {
			continue
		}
		want := dsyevValues(t, c.a)
		for _, useAsm := range []bool{false, true} {
			if useAsm && !gemmHasAsm {
				continue
			}
			t.Run(fmt.Sprintf("%s/asm=%v", c.name, useAsm), func(t *testing.T) {
				d := c.a.SymmetricDim()
				vals, vraw, err := eigenSym(c.a, 2, useAsm)
				require.NoError(t, err)
				for i := 1; i < d; i++ {
					if vals[i] < vals[i-1] {
						t.Fatalf("eigenvalue %d = %v < eigenvalue %d = %v: not ascending", i, vals[i], i-1, vals[i-1])
					}
				}
				v := mat.NewDense(d, d, vraw)
				dval, res, orth := eigenErrors(c.a, want, vals, v)
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
			})
		}
	}
}

// TestEigenSymExact checks cases with exact answers: a zero matrix gives
// zeros and the identity, a diagonal matrix its sorted diagonal.
func TestEigenSymExact(t *testing.T) {
	vals, v, err := EigenSym(mat.NewSymDense(5, nil))
	require.NoError(t, err)
	require.Equal(t, make([]float64, 5), vals)
	require.True(t, mat.Equal(v, eye(5)), "eigenvectors of 0 are not I")

	vals, v, err = EigenSym(mat.NewSymDense(3, []float64{2, 0, 0, 0, -1, 0, 0, 0, 5}))
	require.NoError(t, err)
	require.Equal(t, []float64{-1, 2, 5}, vals)
	want := mat.NewDense(3, 3, []float64{0, 1, 0, 1, 0, 0, 0, 0, 1})
	require.True(t, mat.Equal(v, want), "eigenvectors of a diagonal matrix: got %v", mat.Formatted(v))

	vals, _, err = EigenSym(mat.NewSymDense(1, []float64{-7.5}))
	require.NoError(t, err)
	require.Equal(t, []float64{-7.5}, vals)
}

func eye(d int) *mat.Dense {
	m := mat.NewDense(d, d, nil)
	for i := range d {
		m.Set(i, i, 1)
	}
	return m
}

// TestEigenSymDeterministic checks that the result is the same bit for bit
// on repeated calls and for any number of goroutines.
func TestEigenSymDeterministic(t *testing.T) {
	d := 300
	if testing.Short() {
		d = 130
	}
	rnd := rand.New(rand.NewPCG(32, 33))
	a := noisyGram(rnd, 2*d, d, 10, 2)
	for _, useAsm := range []bool{false, gemmHasAsm} {
		vals, v, err := eigenSym(a, 1, useAsm)
		require.NoError(t, err)
		for _, workers := range []int{1, 2, 3, 8} {
			vals2, v2, err := eigenSym(a, workers, useAsm)
			require.NoError(t, err)
			require.Equal(t, vals, vals2, "eigenvalues with %d workers", workers)
			require.Equal(t, v, v2, "eigenvectors with %d workers", workers)
		}
	}
	vals, v, err := EigenSym(a)
	require.NoError(t, err)
	vals2, v2, err := EigenSym(a)
	require.NoError(t, err)
	require.Equal(t, vals, vals2)
	require.True(t, mat.Equal(v, v2), "eigenvectors differ between calls")
}

// TestEigenSymErrors checks that NaN and ±Inf anywhere in the stored upper
// triangle, and empty input, are errors.
func TestEigenSymErrors(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, at := range [][2]int{{0, 0}, {0, 3}, {2, 4}, {4, 4}} {
			a := gaussSym(rand.New(rand.NewPCG(1, 2)), 5)
			a.SetSym(at[0], at[1], bad)
			if _, _, err := EigenSym(a); !errors.Is(err, ErrNonFinite) {
				t.Errorf("EigenSym with %v at %v: error %v, want ErrNonFinite", bad, at, err)
			}
			if _, err := ProjectPSD(a, 0); !errors.Is(err, ErrNonFinite) {
				t.Errorf("ProjectPSD with %v at %v: error %v, want ErrNonFinite", bad, at, err)
			}
		}
	}
	// Entries near MaxFloat64 are finite, but the largest eigenvalue, 3e308,
	// is not.
	huge := symFrom(3, func(i, j int) float64 { return 1e308 })
	if _, _, err := EigenSym(huge); !errors.Is(err, ErrNonFinite) {
		t.Errorf("EigenSym with eigenvalue 3e308: error %v, want ErrNonFinite", err)
	}
	if _, err := ProjectPSD(huge, 0); !errors.Is(err, ErrNonFinite) {
		t.Errorf("ProjectPSD with eigenvalue 3e308: error %v, want ErrNonFinite", err)
	}
	// Large but representable: the eigenvalues are ±1e308.
	big := mat.NewSymDense(2, []float64{0, 1e308, 1e308, 0})
	vals, _, err := EigenSym(big)
	require.NoError(t, err)
	if math.Abs(vals[0]+1e308) > 1e294 || math.Abs(vals[1]-1e308) > 1e294 {
		t.Errorf("eigenvalues of [0 1e308; 1e308 0] = %v, want ±1e308", vals)
	}
	if _, _, err := EigenSym(&mat.SymDense{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("EigenSym of an empty matrix: error %v, want ErrEmpty", err)
	}
}

// TestProjectPSDLarge checks ProjectPSD on noisy low-rank Gram matrices,
// with both forms of the sum (fewer eigenvalues below or above the floor):
// the result equals V·diag(max(λ, floor))·Vᵀ computed with gonum, to the
// rounding of that reconstruction, and its eigenvalues are at least floor.
func TestProjectPSDLarge(t *testing.T) {
	d := 250
	if testing.Short() {
		d = 90
	}
	rnd := rand.New(rand.NewPCG(34, 35))
	a := noisyGram(rnd, 2*d, d, 8, 5)
	av, _, err := EigenSym(a)
	require.NoError(t, err)
	for _, c := range []struct {
		name  string
		floor float64
	}{
		{"floor 0", 0},
		{"floor at a low quantile", av[d/5]},
		{"floor at a high quantile", av[4*d/5]},
		{"floor above all", av[d-1] + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ProjectPSD(a, c.floor)
			require.NoError(t, err)
			var ref mat.EigenSym
			require.True(t, ref.Factorize(a, true))
			vals := ref.Values(nil)
			var v mat.Dense
			ref.VectorsTo(&v)
			for i := range vals {
				vals[i] = max(vals[i], c.floor)
			}
			var vl, want mat.Dense
			vl.Mul(&v, mat.NewDiagDense(d, vals))
			want.Mul(&vl, v.T())
			// Both are rounded reconstructions: about d·2⁻⁵³·max|λ| each.
			scale := max(math.Abs(vals[0]), math.Abs(vals[d-1]))
			tol := 1e-13 * float64(d) * scale
			var diff mat.Dense
			diff.Sub(p, &want)
			if m := mat.Norm(&diff, math.Inf(1)); m > tol {
				t.Errorf("max row sum of |P − V·max(Λ, floor)·Vᵀ| = %.3g, want ≤ %.3g", m, tol)
			}
			pv, _, err := EigenSym(p)
			require.NoError(t, err)
			if pv[0] < c.floor-tol {
				t.Errorf("smallest eigenvalue %v < floor %v − %.3g", pv[0], c.floor, tol)
			}
		})
	}
}
