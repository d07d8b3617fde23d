package linalg

import (
	"gonum.org/v1/gonum/blas"
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

// gramAccumulateBLAS computes XᵀX with blas64.Syrk on blocks of rows converted
// to float64; the BLAS's own threads do the work, workers only converts.
func gramAccumulateBLAS(x *Matrix32, workers int) (c []float64, ldc int, err error) {
	n, d := x.Rows, x.Cols
	c = make([]float64, d*d)
	kc := min(gramBLASRows, n)
	buf := make([]float64, kc*d)
	out := blas64.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: c}
	for r0 := 0; r0 < n; r0 += kc {
		kb := min(kc, n-r0)
		if err := gramConvert(buf[:kb*d], x.Data[r0*d:(r0+kb)*d], workers); err != nil {
			return nil, 0, x.Check()
		}
		a := blas64.General{Rows: kb, Cols: d, Stride: d, Data: buf[:kb*d]}
		blas64.Syrk(blas.Trans, 1, a, 1, out)
	}
	return c, d, nil
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
