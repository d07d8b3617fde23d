//go:build openblas && cgo

package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/mat"
)

// TestOpenBLASGram checks that, with OpenBLAS installed, Gram runs on its
// Dsyrk (not linalg's kernel) and matches the naive loop, and that the solvers
// built on blas64 still pass.
func TestOpenBLASGram(t *testing.T) {
	UseOpenBLAS()
	defer blas64.Use(gonum.Implementation{})
	defer blas32.Use(gonum.Implementation{})
	require.True(t, gramUseBLAS(), "Gram does not see the installed BLAS")
	for _, s := range []struct{ n, d int }{{1, 1}, {gramBLASRows + 7, 33}, {3000, 130}} {
		t.Run(fmt.Sprintf("n=%d/d=%d", s.n, s.d), func(t *testing.T) {
			x := randMatrix32(rand.New(rand.NewPCG(30, uint64(s.d))), s.n, s.d)
			g, err := Gram(x, 0)
			require.NoError(t, err)
			want, abs := naiveGram(x)
			// Gram is Float64: each block of gramBLASRows rows is converted
			// to float64 (exact products) and summed by Dsyrk in its own
			// order, so the bound is that of float64 summation of n terms.
			tol := gramTol(s.n)
			var worst float64
			for i := range s.d {
				for j := range s.d {
					diff := math.Abs(g.At(i, j) - want[i*s.d+j])
					if diff > tol*abs[i*s.d+j] {
						t.Fatalf("G(%d, %d) = %v, want %v", i, j, g.At(i, j), want[i*s.d+j])
					}
					if abs[i*s.d+j] > 0 {
						worst = math.Max(worst, diff/abs[i*s.d+j])
					}
				}
			}
			t.Logf("worst error %.2g of Σ|x_i x_j| (bound %.2g)", worst, tol)
		})
	}
	t.Run("non-finite", func(t *testing.T) {
		x := randMatrix32(rand.New(rand.NewPCG(31, 32)), 100, 5)
		x.Data[77] = float32(math.Inf(1))
		_, err := Gram(x, 0)
		require.ErrorIs(t, err, ErrNonFinite)
	})
	t.Run("solvers", func(t *testing.T) {
		TestProjectPSD(t)
		TestCholeskySolve(t)
		TestCG(t)
	})
}

// TestOpenBLASLeavesFloat32 checks that UseOpenBLAS installs no float32 BLAS,
// so that the Float32 products run linalg's own kernels: the same bits as
// without OpenBLAS.
func TestOpenBLASLeavesFloat32(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 7))
	x := randMatrix32(rnd, 700, 45)
	w := mat.NewDense(6, 45, nil)
	for i := range 6 {
		for j := range 45 {
			w.Set(i, j, rnd.NormFloat64())
		}
	}
	run := func() (*mat.SymDense, *mat.Dense) {
		g, err := GramPrecision(x, 2, Float32)
		require.NoError(t, err)
		var s mat.Dense
		require.NoError(t, MulXWtPrecision(&s, nil, x, w, 2, Float32))
		return g, &s
	}
	g0, s0 := run()
	UseOpenBLAS()
	defer blas64.Use(gonum.Implementation{})
	require.False(t, gramUseBLAS32() || gemmUseBLAS32(), "UseOpenBLAS installed a float32 BLAS")
	g1, s1 := run()
	require.True(t, mat.Equal(g0, g1), "Float32 Gram changed bits under UseOpenBLAS")
	require.True(t, mat.Equal(s0, s1), "Float32 X·Wᵀ changed bits under UseOpenBLAS")
}
