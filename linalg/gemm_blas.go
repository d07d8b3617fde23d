package linalg

import (
	"math"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// mulXWtBLAS is MulXWt on an installed BLAS: blocks of gemmBlockRows rows
// are converted to float64 (with their norms when norms is not nil) and
// multiplied by one blas64.Gemm call each. Every row of dst is computed by
// the same call for any workers count.
func mulXWtBLAS(dr blas64.General, norms []float64, x *Matrix32, wr blas64.General, workers int) error {
	n, d, k := x.Rows, x.Cols, wr.Rows
	blocks := (n + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	bufs := make([][]float64, nw)
	var bad atomic.Bool
	_ = gemmParallel(blocks, nw, func(b, g int) error {
		i0 := b * gemmBlockRows
		i1 := min(i0+gemmBlockRows, n)
		if bufs[g] == nil {
			bufs[g] = make([]float64, min(gemmBlockRows, n)*d)
		}
		for i := i0; i < i1; i++ {
			ss, ok := gemmConv(gemmUseAsm, bufs[g][(i-i0)*d:(i-i0+1)*d], x.Row(i))
			if !ok {
				bad.Store(true)
			}
			if norms != nil {
				norms[i] = math.Sqrt(ss)
			}
		}
		xb := blas64.General{Rows: i1 - i0, Cols: d, Stride: d, Data: bufs[g]}
		cb := blas64.General{Rows: i1 - i0, Cols: k, Stride: dr.Stride, Data: dr.Data[i0*dr.Stride:]}
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, xb, wr, 0, cb)
		return nil
	})
	if bad.Load() {
		return x.Check()
	}
	return nil
}

// mulRtXBLAS is MulRtX on an installed BLAS: each block of gemmBlockRows
// rows is converted and its product R_bᵀ·X_b computed by one blas64.Gemm
// call into its own buffer; the partial products are added into dst strictly
// in block order, so the result does not depend on workers.
func mulRtXBLAS(dr, rr blas64.General, x *Matrix32, workers int) error {
	n, d, k := x.Rows, x.Cols, rr.Cols
	blocks := (n + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	xbufs := make([][]float64, nw)
	partials := make([][]float64, nw) // K×d, stride d
	for g := range partials {
		partials[g] = make([]float64, k*d)
	}
	for start := 0; start < blocks; start += nw {
		end := min(start+nw, blocks)
		var bad atomic.Bool
		// Slot j of this round holds block start+j, whichever goroutine runs it.
		_ = gemmParallel(end-start, nw, func(j, g int) error {
			i0 := (start + j) * gemmBlockRows
			i1 := min(i0+gemmBlockRows, n)
			if xbufs[g] == nil {
				xbufs[g] = make([]float64, min(gemmBlockRows, n)*d)
			}
			for i := i0; i < i1; i++ {
				if _, ok := gemmConv(gemmUseAsm, xbufs[g][(i-i0)*d:(i-i0+1)*d], x.Row(i)); !ok {
					bad.Store(true)
				}
			}
			rb := blas64.General{Rows: i1 - i0, Cols: k, Stride: rr.Stride, Data: rr.Data[i0*rr.Stride:]}
			xb := blas64.General{Rows: i1 - i0, Cols: d, Stride: d, Data: xbufs[g]}
			pb := blas64.General{Rows: k, Cols: d, Stride: d, Data: partials[j]}
			blas64.Gemm(blas.Trans, blas.NoTrans, 1, rb, xb, 0, pb)
			return nil
		})
		if bad.Load() {
			return x.Check()
		}
		// Reduce: each row of dst gets the round's partials added in block
		// order. Rows are independent, so splitting them over goroutines
		// changes nothing in the arithmetic.
		first := start == 0
		rounds := end - start
		_ = gemmParallel(k, nw, func(l, _ int) error {
			drow := dr.Data[l*dr.Stride : l*dr.Stride+d]
			j0 := 0
			if first {
				copy(drow, partials[0][l*d:(l+1)*d])
				j0 = 1
			}
			for j := j0; j < rounds; j++ {
				for c, v := range partials[j][l*d : (l+1)*d] {
					drow[c] += v
				}
			}
			return nil
		})
	}
	return nil
}
