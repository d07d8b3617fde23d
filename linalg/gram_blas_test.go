//go:build openblas && cgo && unix

package linalg

import (
	"fmt"
	"gonum.org/v1/netlib/blas/netlib"
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
	"gonum.org/v1/gonum/mat"
)

// TestOpenBLASGramBlocks checks the Float32 path's block handling on
// OpenBLAS (Ssyrk): the pipelined accumulation gives the same bits for any
// workers count; a block with an entry above gramFloat32Max is computed in
// float64 (its diagonal entry is then exact to float64's precision, not
// float32's); NaN, ±Inf and entries above MaxAbs in any block are
// ErrNonFinite, in either precision.
func TestOpenBLASGramBlocks(t *testing.T) {
	UseOpenBLAS()
	blas32.Use(netlib.Implementation{}) // the Float32 paths on OpenBLAS
	defer blas64.Use(gonum.Implementation{})
	defer blas32.Use(gonum.Implementation{})
	const n, d = 3*gramBLASRows + 7, 40
	newX := func() *Matrix32 { return randMatrix32(rand.New(rand.NewPCG(40, 41)), n, d) }
	t.Run("workers", func(t *testing.T) {
		x := newX()
		g1, err := GramPrecision(x, 1, Float32)
		require.NoError(t, err)
		for _, w := range []int{2, 3, 8} {
			gw, err := GramPrecision(x, w, Float32)
			require.NoError(t, err)
			require.Equal(t, g1.RawSymmetric().Data, gw.RawSymmetric().Data, "workers = %d", w)
		}
	})
	t.Run("large entry", func(t *testing.T) {
		x := newX()
		const r, col = gramBLASRows + 100, 7 // in the second block
		x.Data[r*d+col] = 3e15
		for _, w := range []int{1, 2} {
			g, err := GramPrecision(x, w, Float32)
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
					for _, p := range []Precision{Float32, Float64} {
						_, err := GramPrecision(x, w, p)
						require.ErrorIs(t, err, ErrNonFinite, "%v, workers = %d", p, w)
					}
				}
			})
		}
	}
}

// TestOpenBLASGramPrecision checks that on OpenBLAS each precision keeps its
// meaning: Float64 (Gram) calls Dsyrk on exact float64 products and is
// within float64's bound of the naive loop; Float32 calls Ssyrk and is
// within its own bound, but not within float64's.
func TestOpenBLASGramPrecision(t *testing.T) {
	UseOpenBLAS()
	blas32.Use(netlib.Implementation{}) // the Float32 paths on OpenBLAS
	defer blas64.Use(gonum.Implementation{})
	defer blas32.Use(gonum.Implementation{})
	const n, d = 2*gramBLASRows + 11, 37
	x := randMatrix32(rand.New(rand.NewPCG(42, 43)), n, d)
	want, abs := naiveGram(x)
	worst := func(g interface{ At(i, j int) float64 }) float64 {
		var w float64
		for i := range d {
			for j := range d {
				w = math.Max(w, math.Abs(g.At(i, j)-want[i*d+j])/abs[i*d+j])
			}
		}
		return w
	}
	g64, err := Gram(x, 2)
	require.NoError(t, err)
	g32, err := GramPrecision(x, 2, Float32)
	require.NoError(t, err)
	w64, w32 := worst(g64), worst(g32)
	t.Logf("worst error of Σ|x_i x_j|: Float64 (Dsyrk) %.2g, Float32 (Ssyrk) %.2g", w64, w32)
	require.LessOrEqual(t, w64, gramTol(n), "Float64 on OpenBLAS is not exact-product float64")
	require.LessOrEqual(t, w32, float64(gramBLASRows+1)*0x1p-24+gramTol(n))
	require.Greater(t, w32, 100*gramTol(n), "Float32 on OpenBLAS is not float32")

	// AddGram and Stats follow the precision too.
	dst := mat.NewSymDense(d, nil)
	require.NoError(t, AddGram(dst, x, 1))
	require.True(t, mat.Equal(dst, g64), "AddGram differs from Gram on OpenBLAS")
	s, err := NewStats(d, 0)
	require.NoError(t, err)
	s.Precision = Float32
	require.NoError(t, s.Add(x, nil))
	require.True(t, mat.Equal(s.Gram(), g32), "Float32 Stats differ from GramPrecision on OpenBLAS")
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
// d = 768 (uniform [−1, 1) float32): GramPrecision itself, Float32 (Ssyrk)
// on 1 worker (no overlap of the float64 accumulation with Ssyrk) and 2,
// and Float64 (Dsyrk on converted blocks), bare Sgemm calls (full d×d) per
// block of rows, bare Ssyrk calls per block (no float64 accumulation) at
// several block sizes, and one Ssyrk over all rows. It reports CPU seconds per
// operation (all threads) next to wall time.
func BenchmarkGramOpenBLAS(b *testing.B) {
	UseOpenBLAS()
	blas32.Use(netlib.Implementation{}) // the Float32 paths on OpenBLAS
	defer blas64.Use(gonum.Implementation{})
	defer blas32.Use(gonum.Implementation{})
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
	for _, p := range []Precision{Float32, Float64} {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("Gram/%v/workers=%d", p, w), func(b *testing.B) {
				cpu(b, func() {
					if _, err := GramPrecision(x, w, p); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
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
