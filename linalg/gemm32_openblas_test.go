//go:build openblas && cgo

package linalg

import (
	"fmt"
	"gonum.org/v1/netlib/blas/netlib"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/mat"
)

// TestOpenBLASGemm32 checks the Float32 products on OpenBLAS's Sgemm: within
// the bound of their float32 chunks (256 features for X·Wᵀ,
// gemm32BLASRowsRtX rows for Rᵀ·X) of the naive float64 loops, the same
// bits for any workers count, row norms equal to MulXWtNorms', errors for
// non-finite X, and the Float64 result where float32 would overflow.
func TestOpenBLASGemm32(t *testing.T) {
	UseOpenBLAS()
	blas32.Use(netlib.Implementation{}) // the Float32 paths on OpenBLAS
	defer blas64.Use(gonum.Implementation{})
	defer blas32.Use(gonum.Implementation{})
	require.True(t, gemmUseBLAS32(), "the Float32 products do not see the installed BLAS")
	for _, s := range gemm32Shapes {
		t.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(41, uint64(s.n*1000+s.d)))
			x := gemmRandX(rnd, s.n, s.d)
			w := gemmRandDense(rnd, s.k, s.d)
			r := gemmRandDense(rnd, s.n, s.k)
			wantS, absS := gemmNaiveXWt(x, w)
			wantG, absG := gemmNaiveRtX(r, x)
			var f64 mat.Dense
			f64Norms := make([]float64, s.n)
			require.NoError(t, MulXWtNorms(&f64, f64Norms, x, w, 1))
			var refS, refG *mat.Dense
			for _, workers := range []int{1, 2, 3} {
				gotS := mat.NewDense(s.n, s.k, nil)
				norms := make([]float64, s.n)
				require.NoError(t, MulXWtPrecision(gotS, norms, x, w, workers, Float32))
				worstS, medS := gemm32Errors(t, gotS, wantS, absS, gemm32Tol(min(s.d, gemm32KC)))
				require.Equal(t, f64Norms, norms, "workers=%d: norms", workers)
				gotG := mat.NewDense(s.k, s.d, nil)
				require.NoError(t, MulRtXPrecision(gotG, r, x, workers, Float32))
				worstG, medG := gemm32Errors(t, gotG, wantG, absG, gemm32Tol(min(s.n, gemm32BLASRowsRtX)))
				if refS == nil {
					refS, refG = gotS, gotG
					t.Logf("X·Wᵀ error / Σ|x·w|: max %.3g, median %.3g; Rᵀ·X error / Σ|r·x|: max %.3g, median %.3g", worstS, medS, worstG, medG)
					continue
				}
				require.True(t, mat.Equal(refS, gotS), "workers=%d: X·Wᵀ differs bitwise from workers=1", workers)
				require.True(t, mat.Equal(refG, gotG), "workers=%d: Rᵀ·X differs bitwise from workers=1", workers)
			}
		})
	}
	t.Run("non-finite", func(t *testing.T) {
		rnd := rand.New(rand.NewPCG(42, 43))
		x := gemmRandX(rnd, 600, 30)
		w, r := gemmRandDense(rnd, 4, 30), gemmRandDense(rnd, 600, 4)
		for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), 2e30} {
			x.Data[555*30+7] = v
			require.ErrorIs(t, MulXWtPrecision(&mat.Dense{}, nil, x, w, 2, Float32), ErrNonFinite)
			require.ErrorIs(t, MulRtXPrecision(&mat.Dense{}, r, x, 2, Float32), ErrNonFinite)
		}
	})
	t.Run("overflow", func(t *testing.T) {
		rnd := rand.New(rand.NewPCG(44, 45))
		x := gemmRandX(rnd, 300, 20)
		for i := range x.Data {
			x.Data[i] *= 1e29
		}
		w, r := gemmRandDense(rnd, 4, 20), gemmRandDense(rnd, 300, 4)
		w.Set(1, 3, 1e10)
		r.Set(7, 2, 1e10)
		var want, got mat.Dense
		require.NoError(t, MulXWt(&want, x, w, 1))
		require.NoError(t, MulXWtPrecision(&got, nil, x, w, 1, Float32))
		require.True(t, mat.Equal(&want, &got), "X·Wᵀ: not the Float64 result")
		want2, got2 := mat.NewDense(4, 20, nil), mat.NewDense(4, 20, nil)
		require.NoError(t, MulRtX(want2, r, x, 1))
		require.NoError(t, MulRtXPrecision(got2, r, x, 1, Float32))
		require.True(t, mat.Equal(want2, got2), "Rᵀ·X: not the Float64 result")
	})
}
