//go:build openblas && cgo && unix

package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestOpenBLASGramBlocks checks the float32 path's block handling on
// OpenBLAS: the pipelined accumulation gives the same bits for any workers
// count; a block with an entry above gramFloat32Max is computed in float64
// (its diagonal entry is then exact to float64's precision, not float32's);
// NaN, ±Inf and entries above MaxAbs in any block are ErrNonFinite.
func TestOpenBLASGramBlocks(t *testing.T) {
	UseOpenBLAS()
	defer blas64.Use(gonum.Implementation{})
	defer blas32.Use(gonum.Implementation{})
	const n, d = 3*gramBLASRows + 7, 40
	newX := func() *Matrix32 { return randMatrix32(rand.New(rand.NewPCG(40, 41)), n, d) }
	t.Run("workers", func(t *testing.T) {
		x := newX()
		g1, err := Gram(x, 1)
		require.NoError(t, err)
		for _, w := range []int{2, 3, 8} {
			gw, err := Gram(x, w)
			require.NoError(t, err)
			require.Equal(t, g1.RawSymmetric().Data, gw.RawSymmetric().Data, "workers = %d", w)
		}
	})
	t.Run("large entry", func(t *testing.T) {
		x := newX()
		const r, col = gramBLASRows + 100, 7 // in the second block
		x.Data[r*d+col] = 3e15
		for _, w := range []int{1, 2} {
			g, err := Gram(x, w)
			require.NoError(t, err)
			want, abs := naiveGram(x)
			tol := float64(gramBLASRows+1)*0x1p-24 + gramTol(n)
			for i := range d {
				for j := range d {
					require.LessOrEqual(t, math.Abs(g.At(i, j)-want[i*d+j]), tol*abs[i*d+j], "G(%d, %d)", i, j)
				}
			}
			// 9e30 plus O(n) in float64: float32 would be off by ~5e23.
			rel := math.Abs(g.At(col, col)-want[col*d+col]) / want[col*d+col]
			require.Less(t, rel, 1e-14, "G(%d, %d) not computed in float64", col, col)
		}
	})
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 2e30, -2e30} {
		for _, r := range []int{0, gramBLASRows - 1, 2*gramBLASRows + 3, n - 1} {
			t.Run(fmt.Sprintf("value=%g/row=%d", v, r), func(t *testing.T) {
				x := newX()
				x.Data[r*d+d-1] = v
				for _, w := range []int{1, 2} {
					_, err := Gram(x, w)
					require.ErrorIs(t, err, ErrNonFinite)
				}
			})
		}
	}
}

// rusageCPU returns the process's CPU time (user + system, all threads).
func rusageCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGramOpenBLAS splits the time of Gram on OpenBLAS at n = 50 000,
// d = 768 (uniform [−1, 1) float32): Gram itself on 1 worker (no overlap of
// the float64 accumulation with Ssyrk) and 2, bare Sgemm calls (full d×d) per
// block of rows, bare Ssyrk calls per block (no float64 accumulation) at
// several block sizes, and one Ssyrk over all rows. It reports CPU seconds per
// operation (all threads) next to wall time.
func BenchmarkGramOpenBLAS(b *testing.B) {
	UseOpenBLAS()
	const n, d = 50000, 768
	rnd := rand.New(rand.NewPCG(1, 2))
	x := NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(2*rnd.Float64() - 1)
	}
	cpu := func(b *testing.B, f func()) {
		c0 := rusageCPU()
		for b.Loop() {
			f()
		}
		b.ReportMetric((rusageCPU()-c0).Seconds()/float64(b.N), "cpu-s/op")
	}
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("Gram/workers=%d", w), func(b *testing.B) {
			cpu(b, func() {
				if _, err := Gram(x, w); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	c32 := make([]float32, d*d)
	out := blas32.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: c32}
	full := make([]float32, d*d)
	for _, rows := range []int{gramBLASRows, 8192} {
		b.Run(fmt.Sprintf("Sgemm/rows=%d", rows), func(b *testing.B) {
			cpu(b, func() {
				for r0 := 0; r0 < n; r0 += rows {
					kb := min(rows, n-r0)
					a := blas32.General{Rows: kb, Cols: d, Stride: d, Data: x.Data[r0*d : (r0+kb)*d]}
					blas32.Gemm(blas.Trans, blas.NoTrans, 1, a, a, 0, blas32.General{Rows: d, Cols: d, Stride: d, Data: full})
				}
			})
		})
	}
	for _, rows := range []int{1024, gramBLASRows, 8192, n} {
		b.Run(fmt.Sprintf("Ssyrk/rows=%d", rows), func(b *testing.B) {
			cpu(b, func() {
				for r0 := 0; r0 < n; r0 += rows {
					kb := min(rows, n-r0)
					a := blas32.General{Rows: kb, Cols: d, Stride: d, Data: x.Data[r0*d : (r0+kb)*d]}
					blas32.Syrk(blas.Trans, 1, a, 0, out)
				}
			})
		})
	}
}
