package linalg

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// gramBLASRows is the number of rows of X converted to float64 per Dsyrk call
// when Gram runs on an installed BLAS: large enough for the BLAS to reach its
// speed, small enough (25 MB at d = 1280) to stay off the memory budget.
const gramBLASRows = 2560

// gramUseBLAS reports whether a BLAS other than gonum's pure-Go one has been
// installed with blas64.Use, in which case Gram calls its Dsyrk.
func gramUseBLAS() bool {
	switch blas64.Implementation().(type) {
	case gonum.Implementation, *gonum.Implementation:
		return false
	}
	return true
}

// gramUseBLAS32 reports whether a BLAS other than gonum's has been installed
// with blas32.Use (UseOpenBLAS does), in which case Gram computes each block
// in float32 with Ssyrk.
func gramUseBLAS32() bool {
	switch blas32.Implementation().(type) {
	case gonum.Implementation, *gonum.Implementation:
		return false
	}
	return true
}

// gramFloat32Max bounds the magnitude of the entries of a block computed in
// float32: products and their sums over gramBLASRows rows stay far below
// float32's range (3.4e38). Blocks with larger entries are computed in float64.
const gramFloat32Max = 1e15

// gramAccumulateBLAS computes XᵀX on an installed BLAS, one block of
// gramBLASRows rows at a time, each block's product added into float64.
// With a float32 BLAS installed (UseOpenBLAS) a block is computed by Ssyrk
// in float32, as numpy computes X.T @ X from float32: each entry of a block
// then carries a rounding error of at most about (gramBLASRows+1)·2⁻²⁴ of
// Σ|x_i x_j| over the block (typically √gramBLASRows times less; see
// TestOpenBLASGram), instead of float64's 2⁻⁵³ scale. Otherwise, or for a
// block with an entry above gramFloat32Max, the block is converted to float64
// and computed by Dsyrk. The BLAS's own threads do the work.
func gramAccumulateBLAS(x *Matrix32, workers int) (c []float64, ldc int, err error) {
	n, d := x.Rows, x.Cols
	c = make([]float64, d*d)
	kc := min(gramBLASRows, n)
	var buf []float64
	var c32 []float32
	use32 := gramUseBLAS32()
	if use32 {
		c32 = make([]float32, d*d)
	}
	out := blas64.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: c}
	for r0 := 0; r0 < n; r0 += kc {
		kb := min(kc, n-r0)
		block := x.Data[r0*d : (r0+kb)*d]
		if use32 {
			big, err := gramBlockMax(block, workers)
			if err != nil {
				return nil, 0, x.Check()
			}
			if big <= gramFloat32Max {
				a := blas32.General{Rows: kb, Cols: d, Stride: d, Data: block}
				blas32.Syrk(blas.Trans, 1, a, 0, blas32.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: c32})
				for i := range d {
					for j := i; j < d; j++ {
						c[i*d+j] += float64(c32[i*d+j])
					}
				}
				continue
			}
		}
		if buf == nil {
			buf = make([]float64, kc*d)
		}
		if err := gramConvert(buf[:kb*d], block, workers); err != nil {
			return nil, 0, x.Check()
		}
		a := blas64.General{Rows: kb, Cols: d, Stride: d, Data: buf[:kb*d]}
		blas64.Syrk(blas.Trans, 1, a, 1, out)
	}
	return c, d, nil
}

// gramBlockMax returns the largest magnitude in src, or ErrNonFinite if an
// entry is NaN, ±Inf or larger than MaxAbs.
func gramBlockMax(src []float32, workers int) (float64, error) {
	const chunk = 1 << 16
	tasks := (len(src) + chunk - 1) / chunk
	maxes := make([]float64, tasks)
	parallelFor(tasks, workers, func(t int) {
		m := 0.0
		for _, v := range src[t*chunk : min(len(src), (t+1)*chunk)] {
			f := math.Abs(float64(v))
			if !(f <= m) { // also catches NaN
				m = f
				if math.IsNaN(f) {
					m = math.Inf(1)
				}
			}
		}
		maxes[t] = m
	})
	big := 0.0
	for _, m := range maxes {
		big = math.Max(big, m)
	}
	if big > MaxAbs {
		return big, ErrNonFinite
	}
	return big, nil
}

// gramConvert converts src to float64 in dst on workers goroutines and
// returns ErrNonFinite if an entry is NaN, ±Inf or larger than MaxAbs.
func gramConvert(dst []float64, src []float32, workers int) error {
	const chunk = 1 << 16
	var bad bool
	tasks := (len(src) + chunk - 1) / chunk
	flags := make([]bool, tasks)
	parallelFor(tasks, workers, func(t int) {
		s := src[t*chunk : min(len(src), (t+1)*chunk)]
		dd := dst[t*chunk : t*chunk+len(s)]
		ok := true
		for i, v := range s {
			f := float64(v)
			ok = ok && f <= MaxAbs && f >= -MaxAbs
			dd[i] = f
		}
		flags[t] = !ok
	})
	for _, f := range flags {
		bad = bad || f
	}
	if bad {
		return ErrNonFinite
	}
	return nil
}
