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

// gemmTol bounds the relative difference between a blocked product and the
// naive float64 loop: both sum the same exactly-representable float64 products
// (float32 inputs converted exactly), only in a different order, so the
// difference is a few ulps times the length of the sum — d or n ≤ 1100 here —
// relative to the sum of absolute values. 1e-12 leaves a margin of ~50 over
// 1100·2⁻⁵³ ≈ 1.2e-13.
const gemmTol = 1e-12

func gemmRandX(rnd *rand.Rand, n, d int) *Matrix32 {
	x := NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(rnd.NormFloat64())
	}
	return x
}

func gemmRandDense(rnd *rand.Rand, r, c int) *mat.Dense {
	a := mat.NewDense(r, c, nil)
	for i := range r {
		for j := range c {
			a.Set(i, j, rnd.NormFloat64())
		}
	}
	return a
}

// gemmNaiveXWt returns X·Wᵀ and the matching sums of absolute products.
func gemmNaiveXWt(x *Matrix32, w *mat.Dense) (prod, abs *mat.Dense) {
	k, _ := w.Dims()
	prod, abs = mat.NewDense(x.Rows, k, nil), mat.NewDense(x.Rows, k, nil)
	for i := range x.Rows {
		for l := range k {
			var s, a float64
			for j, v := range x.Row(i) {
				p := float64(v) * w.At(l, j)
				s += p
				a += math.Abs(p)
			}
			prod.Set(i, l, s)
			abs.Set(i, l, a)
		}
	}
	return prod, abs
}

// gemmNaiveRtX returns Rᵀ·X and the matching sums of absolute products.
func gemmNaiveRtX(r *mat.Dense, x *Matrix32) (prod, abs *mat.Dense) {
	_, k := r.Dims()
	prod, abs = mat.NewDense(k, x.Cols, nil), mat.NewDense(k, x.Cols, nil)
	for l := range k {
		for j := range x.Cols {
			var s, a float64
			for i := range x.Rows {
				p := r.At(i, l) * float64(x.Row(i)[j])
				s += p
				a += math.Abs(p)
			}
			prod.Set(l, j, s)
			abs.Set(l, j, a)
		}
	}
	return prod, abs
}

func gemmRequireClose(t *testing.T, got, want, abs *mat.Dense) {
	t.Helper()
	r, c := want.Dims()
	gr, gc := got.Dims()
	require.Equal(t, []int{r, c}, []int{gr, gc}, "dims")
	for i := range r {
		for j := range c {
			if d := math.Abs(got.At(i, j) - want.At(i, j)); d > gemmTol*abs.At(i, j) {
				t.Fatalf("(%d, %d): got %v, want %v (|diff| %.3g > %.3g)", i, j, got.At(i, j), want.At(i, j), d, gemmTol*abs.At(i, j))
			}
		}
	}
}

// Shapes cover one row, one column, a single partial block, an exact block
// multiple and several blocks with a ragged tail, and K around gonum's 64
// blocking.
var gemmShapes = []struct{ n, d, k int }{
	{1, 1, 1},
	{1, 7, 3},
	{5, 1, 2},
	{3, 5, 2},
	{gemmBlockRows, 9, 4},
	{gemmBlockRows + 1, 13, 10},
	{3*gemmBlockRows + 17, 65, 3},
	{1100, 70, 65},
}

func TestMulXWt(t *testing.T) {
	for _, s := range gemmShapes {
		t.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, uint64(s.n*1000+s.d)))
			x := gemmRandX(rnd, s.n, s.d)
			w := gemmRandDense(rnd, s.k, s.d)
			want, abs := gemmNaiveXWt(x, w)
			var ref *mat.Dense
			for _, workers := range []int{1, 2, 3, 0} {
				var got mat.Dense // empty: resized by MulXWt
				require.NoError(t, MulXWt(&got, x, w, workers))
				gemmRequireClose(t, &got, want, abs)
				if ref == nil {
					ref = &got
				} else if !mat.Equal(ref, &got) {
					t.Errorf("workers=%d: result differs bitwise from workers=1", workers)
				}
			}
		})
	}
}

func TestMulRtX(t *testing.T) {
	for _, s := range gemmShapes {
		t.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(2, uint64(s.n*1000+s.d)))
			x := gemmRandX(rnd, s.n, s.d)
			r := gemmRandDense(rnd, s.n, s.k)
			want, abs := gemmNaiveRtX(r, x)
			var ref *mat.Dense
			for _, workers := range []int{1, 2, 3, 0} {
				got := mat.NewDense(s.k, s.d, nil)
				got.Apply(func(int, int, float64) float64 { return math.NaN() }, got) // must be overwritten
				require.NoError(t, MulRtX(got, r, x, workers))
				gemmRequireClose(t, got, want, abs)
				if ref == nil {
					ref = got
				} else if !mat.Equal(ref, got) {
					t.Errorf("workers=%d: result differs bitwise from workers=1", workers)
				}
			}
		})
	}
}

// TestGemmViews checks strided inputs and outputs (sub-matrix views).
func TestGemmViews(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	const n, d, k = 300, 11, 5
	x := gemmRandX(rnd, n, d)
	wBig := gemmRandDense(rnd, k+2, d+3)
	w := wBig.Slice(1, k+1, 2, d+2).(*mat.Dense)
	dstBig := mat.NewDense(n+1, k+4, nil)
	dst := dstBig.Slice(1, n+1, 3, k+3).(*mat.Dense)
	require.NoError(t, MulXWt(dst, x, w, 2))
	want, abs := gemmNaiveXWt(x, w)
	gemmRequireClose(t, dst, want, abs)
	if dstBig.At(0, 0) != 0 || dstBig.At(1, 0) != 0 || dstBig.At(1, k+3) != 0 {
		t.Error("MulXWt wrote outside the dst view")
	}

	rBig := gemmRandDense(rnd, n, k+3)
	r := rBig.Slice(0, n, 1, k+1).(*mat.Dense)
	gBig := mat.NewDense(k+1, d+2, nil)
	g := gBig.Slice(1, k+1, 1, d+1).(*mat.Dense)
	require.NoError(t, MulRtX(g, r, x, 2))
	want, abs = gemmNaiveRtX(r, x)
	gemmRequireClose(t, g, want, abs)
	if gBig.At(0, 0) != 0 || gBig.At(1, 0) != 0 || gBig.At(1, d+1) != 0 {
		t.Error("MulRtX wrote outside the dst view")
	}
}

func TestRowNorms(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	x := gemmRandX(rnd, 2*gemmBlockRows+3, 37)
	x.Row(4)[0] = 3e29 // large but accepted: float64 accumulation does not overflow
	var ref []float64
	for _, workers := range []int{1, 2, 0} {
		got := make([]float64, x.Rows)
		require.NoError(t, RowNorms(got, x, workers))
		for i := range x.Rows {
			var s float64
			for _, v := range x.Row(i) {
				s += float64(v) * float64(v)
			}
			// Same summation order as RowNorms: exact equality is expected.
			if want := math.Sqrt(s); got[i] != want {
				t.Fatalf("workers=%d: norm of row %d = %v, want %v", workers, i, got[i], want)
			}
		}
		if ref == nil {
			ref = got
		}
		require.Equal(t, ref, got, "workers=%d", workers)
	}
}

func TestGemmErrors(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	x := gemmRandX(rnd, 10, 4)
	w := gemmRandDense(rnd, 3, 4)
	r := gemmRandDense(rnd, 10, 3)
	withNaN := func(a *mat.Dense) *mat.Dense {
		b := mat.DenseCopyOf(a)
		b.Set(1, 1, math.NaN())
		return b
	}
	xBad := gemmRandX(rnd, 10, 4)
	xBad.Data[17] = float32(math.Inf(-1))
	xHuge := gemmRandX(rnd, 10, 4)
	xHuge.Data[3] = 2e30
	xShort := &Matrix32{Rows: 10, Cols: 4, Data: x.Data[:39]}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"XWt/nil X", func() error { return MulXWt(&mat.Dense{}, nil, w, 1) }, ErrEmpty},
		{"XWt/empty X", func() error { return MulXWt(&mat.Dense{}, NewMatrix32(0, 4), w, 1) }, ErrEmpty},
		{"XWt/short data", func() error { return MulXWt(&mat.Dense{}, xShort, w, 1) }, ErrShape},
		{"XWt/nil W", func() error { return MulXWt(&mat.Dense{}, x, nil, 1) }, ErrEmpty},
		{"XWt/W columns", func() error { return MulXWt(&mat.Dense{}, x, gemmRandDense(rnd, 3, 5), 1) }, ErrShape},
		{"XWt/dst shape", func() error { return MulXWt(mat.NewDense(10, 4, nil), x, w, 1) }, ErrShape},
		{"XWt/nil dst", func() error { return MulXWt(nil, x, w, 1) }, ErrEmpty},
		{"XWt/dst is W", func() error { sq := gemmRandDense(rnd, 4, 4); return MulXWt(sq, gemmRandX(rnd, 4, 4), sq, 1) }, ErrShape},
		{"XWt/NaN W", func() error { return MulXWt(&mat.Dense{}, x, withNaN(w), 1) }, ErrNonFinite},
		{"XWt/Inf X", func() error { return MulXWt(&mat.Dense{}, xBad, w, 2) }, ErrNonFinite},
		{"XWt/huge X", func() error { return MulXWt(&mat.Dense{}, xHuge, w, 1) }, ErrNonFinite},
		{"XWt/negative workers", func() error { return MulXWt(&mat.Dense{}, x, w, -1) }, nil},
		{"RtX/nil R", func() error { return MulRtX(&mat.Dense{}, nil, x, 1) }, ErrEmpty},
		{"RtX/R rows", func() error { return MulRtX(&mat.Dense{}, gemmRandDense(rnd, 9, 3), x, 1) }, ErrShape},
		{"RtX/dst shape", func() error { return MulRtX(mat.NewDense(4, 3, nil), r, x, 1) }, ErrShape},
		{"RtX/NaN R", func() error { return MulRtX(&mat.Dense{}, withNaN(r), x, 2) }, ErrNonFinite},
		{"RtX/Inf X", func() error { return MulRtX(&mat.Dense{}, r, xBad, 1) }, ErrNonFinite},
		{"RtX/negative workers", func() error { return MulRtX(&mat.Dense{}, r, x, -2) }, nil},
		{"RowNorms/dst length", func() error { return RowNorms(make([]float64, 9), x, 1) }, ErrShape},
		{"RowNorms/Inf X", func() error { return RowNorms(make([]float64, 10), xBad, 2) }, ErrNonFinite},
		{"RowNorms/empty", func() error { return RowNorms(nil, &Matrix32{}, 1) }, ErrEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("got nil error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want an error wrapping %v", err, tc.want)
			}
		})
	}
}

func BenchmarkMulXWt(b *testing.B) {
	for _, s := range []struct{ n, d, k int }{{60000, 784, 10}, {50000, 768, 100}} {
		b.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(b *testing.B) {
			if testing.Short() && s.k > 10 {
				b.Skip("large shape skipped under -short")
			}
			rnd := rand.New(rand.NewPCG(1, 2))
			x, w := gemmRandX(rnd, s.n, s.d), gemmRandDense(rnd, s.k, s.d)
			dst := mat.NewDense(s.n, s.k, nil)
			for b.Loop() {
				if err := MulXWt(dst, x, w, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*float64(s.n*s.d*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkMulRtX(b *testing.B) {
	for _, s := range []struct{ n, d, k int }{{60000, 784, 10}, {50000, 768, 100}} {
		b.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(b *testing.B) {
			if testing.Short() && s.k > 10 {
				b.Skip("large shape skipped under -short")
			}
			rnd := rand.New(rand.NewPCG(1, 2))
			x, r := gemmRandX(rnd, s.n, s.d), gemmRandDense(rnd, s.n, s.k)
			dst := mat.NewDense(s.k, s.d, nil)
			for b.Loop() {
				if err := MulRtX(dst, r, x, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*float64(s.n*s.d*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
