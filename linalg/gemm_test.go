package linalg

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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
	{700, 300, 13},           // two feature chunks of MulXWt, a partial class panel
	{129, 2*gemmKC + 8, 100}, // three chunks, K = 100 (a full last group of 4)
	{gemmBlockRows + 3, 25, 1},
}

// gemmKernels are the kernels a test runs: pure Go always, and the assembly
// kernel where this build and CPU have it.
func gemmKernels() []bool {
	if gemmHasAsm {
		return []bool{false, true}
	}
	return []bool{false}
}

func gemmSetAsm(t *testing.T, asm bool) {
	old := gemmUseAsm
	gemmUseAsm = asm
	t.Cleanup(func() { gemmUseAsm = old })
}

func TestMulXWt(t *testing.T) {
	for _, asm := range gemmKernels() {
		for _, s := range gemmShapes {
			t.Run(fmt.Sprintf("asm=%v/n=%d/d=%d/K=%d", asm, s.n, s.d, s.k), func(t *testing.T) {
				gemmSetAsm(t, asm)
				testMulXWt(t, s.n, s.d, s.k)
			})
		}
	}
}

func testMulXWt(t *testing.T, n, d, k int) {
	rnd := rand.New(rand.NewPCG(1, uint64(n*1000+d)))
	x := gemmRandX(rnd, n, d)
	w := gemmRandDense(rnd, k, d)
	want, abs := gemmNaiveXWt(x, w)
	var ref *mat.Dense
	var refNorms []float64
	for _, workers := range []int{1, 2, 3, 0} {
		var got mat.Dense // empty: resized by MulXWt
		require.NoError(t, MulXWt(&got, x, w, workers))
		gemmRequireClose(t, &got, want, abs)
		if ref == nil {
			ref = &got
		} else if !mat.Equal(ref, &got) {
			t.Errorf("workers=%d: result differs bitwise from workers=1", workers)
		}
		// MulXWtNorms: the same scores, bit for bit, and the row norms.
		var got2 mat.Dense
		norms := make([]float64, n)
		require.NoError(t, MulXWtNorms(&got2, norms, x, w, workers))
		if !mat.Equal(ref, &got2) {
			t.Errorf("workers=%d: MulXWtNorms scores differ bitwise from MulXWt", workers)
		}
		for i := range n {
			var s float64
			for _, v := range x.Row(i) {
				s += float64(v) * float64(v)
			}
			// Exact squares summed in another order: d·2⁻⁵³ relative, d ≤ 520.
			if want := math.Sqrt(s); math.Abs(norms[i]-want) > 1e-13*want {
				t.Fatalf("workers=%d: ‖x_%d‖ = %v, want %v", workers, i, norms[i], want)
			}
		}
		if refNorms == nil {
			refNorms = norms
		}
		require.Equal(t, refNorms, norms, "workers=%d: norms differ bitwise", workers)
	}
}

func TestMulRtX(t *testing.T) {
	for _, asm := range gemmKernels() {
		for _, s := range gemmShapes {
			t.Run(fmt.Sprintf("asm=%v/n=%d/d=%d/K=%d", asm, s.n, s.d, s.k), func(t *testing.T) {
				gemmSetAsm(t, asm)
				testMulRtX(t, s.n, s.d, s.k)
			})
		}
	}
}

func testMulRtX(t *testing.T, n, d, k int) {
	rnd := rand.New(rand.NewPCG(2, uint64(n*1000+d)))
	x := gemmRandX(rnd, n, d)
	r := gemmRandDense(rnd, n, k)
	want, abs := gemmNaiveRtX(r, x)
	var ref *mat.Dense
	for _, workers := range []int{1, 2, 3, 0} {
		got := mat.NewDense(k, d, nil)
		got.Apply(func(int, int, float64) float64 { return math.NaN() }, got) // must be overwritten
		require.NoError(t, MulRtX(got, r, x, workers))
		gemmRequireClose(t, got, want, abs)
		if ref == nil {
			ref = got
		} else if !mat.Equal(ref, got) {
			t.Errorf("workers=%d: result differs bitwise from workers=1", workers)
		}
	}
}

// TestGemmKernel checks one register tile against loops in the kernel's
// summation order: the assembly kernel bit for bit against fused
// multiply-adds (math.FMA), the Go kernel against plain multiply-adds within
// k·2⁻⁵³ relative to the sum of |products| (bitwise where the compiler does
// not fuse, as on amd64, but other architectures may).
func TestGemmKernel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ k, ia, sa int }{{1, 1, 4}, {3, 5, 1}, {4, 7, 1}, {37, 1, 9}, {256, 256, 1}} {
		a := make([]float64, (tc.k-1)*tc.sa+3*tc.ia+1)
		b := make([]float64, gemmNR*tc.k)
		for i := range a {
			a[i] = rnd.NormFloat64()
		}
		for i := range b {
			b[i] = rnd.NormFloat64()
		}
		const ldc = 15
		c0 := make([]float64, 3*ldc+gemmNR)
		for i := range c0 {
			c0[i] = rnd.NormFloat64()
		}
		plain, fused, abs := slices.Clone(c0), slices.Clone(c0), make([]float64, len(c0))
		for i := range gemmMR {
			for j := range gemmNR {
				var s, f, m float64
				for r := range tc.k {
					av, bv := a[r*tc.sa+i*tc.ia], b[gemmNR*r+j]
					s += av * bv
					f = math.FMA(av, bv, f)
					m += math.Abs(av * bv)
				}
				plain[i*ldc+j] += s
				fused[i*ldc+j] += f
				abs[i*ldc+j] = m + math.Abs(c0[i*ldc+j])
			}
		}
		name := fmt.Sprintf("k=%d/ia=%d/sa=%d", tc.k, tc.ia, tc.sa)
		got := slices.Clone(c0)
		gemmKernelGo(tc.k, a, tc.ia, tc.sa, b, got, ldc)
		for i := range got {
			if math.Abs(got[i]-plain[i]) > float64(tc.k+1)*0x1p-52*abs[i] {
				t.Errorf("%s: Go kernel c[%d] = %v, want %v", name, i, got[i], plain[i])
			}
		}
		if gemmHasAsm {
			got := slices.Clone(c0)
			gemmKernelAsm(tc.k, a, tc.ia, tc.sa, b, got, ldc)
			if !slices.Equal(got, fused) {
				t.Errorf("%s: assembly kernel differs from fused multiply-adds in order:\ngot  %v\nwant %v", name, got, fused)
			}
		}
	}
}

// TestGemmConv checks the conversion with row norms: values exact, the
// assembly and Go versions bit-identical, bad values found at any position.
func TestGemmConv(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{1, 7, 8, 9, 16, 31, 256} {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(rnd.NormFloat64() * 1e3)
		}
		dst := make([]float64, n)
		ss, ok := gemmConvGo(dst, src)
		require.True(t, ok)
		var want float64
		for i, v := range src {
			require.Equal(t, float64(v), dst[i])
			want += float64(v) * float64(v)
		}
		if math.Abs(ss-want) > float64(n)*0x1p-53*want {
			t.Errorf("n=%d: sum of squares %v, want %v", n, ss, want)
		}
		if gemmHasAsm {
			dst2 := make([]float64, n)
			ss2, ok2 := gemmConvAsm(dst2, src)
			require.True(t, ok2)
			require.Equal(t, dst, dst2, "n=%d: converted values", n)
			require.Equal(t, math.Float64bits(ss), math.Float64bits(ss2), "n=%d: sum of squares", n)
		}
		for _, badv := range []float32{float32(math.NaN()), float32(math.Inf(1)), -2e30} {
			for _, pos := range []int{0, n / 2, n - 1} {
				s := slices.Clone(src)
				s[pos] = badv
				if _, ok := gemmConvGo(dst, s); ok {
					t.Errorf("n=%d: Go conversion missed %v at %d", n, badv, pos)
				}
				if gemmHasAsm {
					if _, ok := gemmConvAsm(dst, s); ok {
						t.Errorf("n=%d: assembly conversion missed %v at %d", n, badv, pos)
					}
				}
			}
		}
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

// TestGemmPack checks the panel packing of MulRtX: exact values, zero
// padding, the assembly and Go versions identical, bad values found.
func TestGemmPack(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 16))
	for _, tc := range []struct{ rows, cols, ld int }{{1, 1, 1}, {3, 12, 20}, {5, 30, 31}, {17, 48, 50}} {
		src := make([]float32, (tc.rows-1)*tc.ld+tc.cols)
		for i := range src {
			src[i] = float32(rnd.NormFloat64())
		}
		np := (tc.cols + gemmNR - 1) / gemmNR
		stride := gemmNR * tc.rows
		fill := func() []float64 {
			d := make([]float64, np*stride)
			for i := range d {
				d[i] = math.NaN() // must be overwritten
			}
			return d
		}
		got := fill()
		require.True(t, gemmPackGo(got, src, tc.rows, tc.cols, tc.ld, stride))
		for r := range tc.rows {
			for c := range np * gemmNR {
				want := 0.0
				if c < tc.cols {
					want = float64(src[r*tc.ld+c])
				}
				if g := got[gemmNR*r+(c/gemmNR)*stride+c%gemmNR]; g != want {
					t.Fatalf("%+v: (%d, %d) = %v, want %v", tc, r, c, g, want)
				}
			}
		}
		if gemmHasAsm {
			got2 := fill()
			require.True(t, gemmPackAsm(got2, src, tc.rows, tc.cols, tc.ld, stride))
			require.Equal(t, got, got2)
		}
		for _, pos := range []int{0, len(src) - 1} {
			s := slices.Clone(src)
			s[pos] = float32(math.Inf(-1))
			if gemmPackGo(fill(), s, tc.rows, tc.cols, tc.ld, stride) {
				t.Errorf("%+v: Go packing missed -Inf at %d", tc, pos)
			}
			if gemmHasAsm && gemmPackAsm(fill(), s, tc.rows, tc.cols, tc.ld, stride) {
				t.Errorf("%+v: assembly packing missed -Inf at %d", tc, pos)
			}
		}
	}
}
