package linalg

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// gemm32Tol bounds the error of a Float32 entry relative to the sum of the
// absolute values of its terms, Σ|x·w| (or Σ|r·x|): W or R rounded to
// float32 (2⁻²⁴), then float32 products and recursive float32 sums over at
// most m = 256 terms ((m−1)·2⁻²⁴ plus 2⁻²⁴ for the products), then float64
// sums across chunks (a few 2⁻⁵³): (m+1)·2⁻²⁴ to first order, and 258·2⁻²⁴
// covers the second-order terms. The test data has no float32 underflow.
func gemm32Tol(m int) float64 { return float64(m+2) * 0x1p-24 }

// gemm32Errors returns the largest and the median error of got against want,
// each relative to abs, and fails if an entry is beyond tol·abs.
func gemm32Errors(t *testing.T, got, want, abs *mat.Dense, tol float64) (worst, median float64) {
	t.Helper()
	r, c := want.Dims()
	gr, gc := got.Dims()
	require.Equal(t, []int{r, c}, []int{gr, gc}, "dims")
	rel := make([]float64, 0, r*c)
	for i := range r {
		for j := range c {
			d := math.Abs(got.At(i, j) - want.At(i, j))
			if !(d <= tol*abs.At(i, j)) {
				t.Fatalf("(%d, %d): got %v, want %v (|diff| %.3g > %.3g)", i, j, got.At(i, j), want.At(i, j), d, tol*abs.At(i, j))
			}
			if abs.At(i, j) > 0 {
				rel = append(rel, d/abs.At(i, j))
			}
		}
	}
	if len(rel) == 0 {
		return 0, 0
	}
	sort.Float64s(rel)
	return rel[len(rel)-1], rel[len(rel)/2]
}

// gemm32Shapes add, to gemmShapes, shapes at the edges of the Float32 tiles:
// K = 1, K one past a panel of 16, d one past a chunk of 256, d not a
// multiple of 8, n around the 96-row tasks and 6-row tiles.
var gemm32Shapes = append(slices.Clone(gemmShapes), []struct{ n, d, k int }{
	{gemm32MB + 1, 257, 17},
	{2*gemm32MB - 1, 9, 16},
	{gemm32MR + 1, 1, 1},
	{2*gemmBlockRows + 5, 33, 7},
	{50, 2*gemm32KC + 3, 1},
	{100, 1500, 5}, // 42-row tasks for X·Wᵀ
}...)

func gemm32SetRoundBytes(t *testing.T, b int) {
	old := gemm32RoundBytes
	gemm32RoundBytes = b
	t.Cleanup(func() { gemm32RoundBytes = old })
}

func TestMulXWtPrecision(t *testing.T) {
	for _, s := range gemm32Shapes {
		t.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(21, uint64(s.n*1000+s.d)))
			x := gemmRandX(rnd, s.n, s.d)
			w := gemmRandDense(rnd, s.k, s.d)
			want, abs := gemmNaiveXWt(x, w)
			var f64 mat.Dense
			f64Norms := make([]float64, s.n)
			require.NoError(t, MulXWtNorms(&f64, f64Norms, x, w, 1))

			// Float64: MulXWt and MulXWtNorms, bit for bit.
			var got64 mat.Dense
			require.NoError(t, MulXWtPrecision(&got64, nil, x, w, 2, Float64))
			require.True(t, mat.Equal(&f64, &got64), "Float64 differs from MulXWt")

			var ref *mat.Dense
			for _, asm := range gemmKernels() {
				for _, workers := range []int{1, 2, 3, 0} {
					gemmSetAsm(t, asm)
					got := mat.NewDense(s.n, s.k, nil)
					got.Apply(func(int, int, float64) float64 { return math.NaN() }, got) // must be overwritten
					norms := make([]float64, s.n)
					require.NoError(t, MulXWtPrecision(got, norms, x, w, workers, Float32))
					worst, median := gemm32Errors(t, got, want, abs, gemm32Tol(min(s.d, gemm32KC)))
					require.Equal(t, f64Norms, norms, "asm=%v workers=%d: norms differ from MulXWtNorms", asm, workers)
					if ref == nil {
						ref = got
						t.Logf("error / Σ|x·w|: max %.3g, median %.3g (bound %.3g)", worst, median, gemm32Tol(min(s.d, gemm32KC)))
					} else if !mat.Equal(ref, got) {
						t.Errorf("asm=%v workers=%d: differs bitwise from the pure-Go kernel with workers=1", asm, workers)
					}
				}
			}
		})
	}
}

func TestMulRtXPrecision(t *testing.T) {
	for _, rounds := range []string{"default", "one block per round"} {
		for _, s := range gemm32Shapes {
			t.Run(fmt.Sprintf("%s/n=%d/d=%d/K=%d", rounds, s.n, s.d, s.k), func(t *testing.T) {
				if rounds != "default" {
					gemm32SetRoundBytes(t, 1)
				}
				rnd := rand.New(rand.NewPCG(22, uint64(s.n*1000+s.d)))
				x := gemmRandX(rnd, s.n, s.d)
				r := gemmRandDense(rnd, s.n, s.k)
				want, abs := gemmNaiveRtX(r, x)
				f64 := mat.NewDense(s.k, s.d, nil)
				require.NoError(t, MulRtX(f64, r, x, 1))
				var got64 mat.Dense
				require.NoError(t, MulRtXPrecision(&got64, r, x, 3, Float64))
				require.True(t, mat.Equal(f64, &got64), "Float64 differs from MulRtX")

				var ref *mat.Dense
				for _, asm := range gemmKernels() {
					for _, workers := range []int{1, 2, 3, 0} {
						gemmSetAsm(t, asm)
						got := mat.NewDense(s.k, s.d, nil)
						got.Apply(func(int, int, float64) float64 { return math.NaN() }, got)
						require.NoError(t, MulRtXPrecision(got, r, x, workers, Float32))
						worst, median := gemm32Errors(t, got, want, abs, gemm32Tol(min(s.n, gemmBlockRows)))
						if ref == nil {
							ref = got
							t.Logf("error / Σ|r·x|: max %.3g, median %.3g (bound %.3g)", worst, median, gemm32Tol(min(s.n, gemmBlockRows)))
						} else if !mat.Equal(ref, got) {
							t.Errorf("asm=%v workers=%d: differs bitwise from the pure-Go kernel with workers=1", asm, workers)
						}
					}
				}
			})
		}
	}
}

// TestGemm32Views checks strided inputs and outputs (sub-matrix views).
func TestGemm32Views(t *testing.T) {
	rnd := rand.New(rand.NewPCG(23, 24))
	const n, d, k = 300, 21, 5
	x := gemmRandX(rnd, n, d)
	w := gemmRandDense(rnd, k+2, d+3).Slice(1, k+1, 2, d+2).(*mat.Dense)
	dstBig := mat.NewDense(n+1, k+4, nil)
	dst := dstBig.Slice(1, n+1, 3, k+3).(*mat.Dense)
	require.NoError(t, MulXWtPrecision(dst, nil, x, w, 2, Float32))
	want, abs := gemmNaiveXWt(x, w)
	gemm32Errors(t, dst, want, abs, gemm32Tol(d))
	if dstBig.At(0, 0) != 0 || dstBig.At(1, 0) != 0 || dstBig.At(1, k+3) != 0 {
		t.Error("MulXWtPrecision wrote outside the dst view")
	}
	r := gemmRandDense(rnd, n, k+3).Slice(0, n, 1, k+1).(*mat.Dense)
	gBig := mat.NewDense(k+1, d+2, nil)
	g := gBig.Slice(1, k+1, 1, d+1).(*mat.Dense)
	require.NoError(t, MulRtXPrecision(g, r, x, 2, Float32))
	want, abs = gemmNaiveRtX(r, x)
	gemm32Errors(t, g, want, abs, gemm32Tol(gemmBlockRows))
	if gBig.At(0, 0) != 0 || gBig.At(1, 0) != 0 || gBig.At(1, d+1) != 0 {
		t.Error("MulRtXPrecision wrote outside the dst view")
	}
}

// TestGemm32Overflow checks that Float32 does not overflow silently: weights
// or residuals beyond float32's range, and float32 products that overflow
// although every input fits, give the Float64 result, bit for bit.
func TestGemm32Overflow(t *testing.T) {
	rnd := rand.New(rand.NewPCG(25, 26))
	const n, d, k = 200, 40, 7
	for _, asm := range gemmKernels() {
		gemmSetAsm(t, asm)
		for _, tc := range []struct {
			name   string
			xScale float64
			big    float64 // one weight (residual) of this size
		}{
			{"weight beyond float32", 1, 1e300},
			{"product overflows float32", 1e29, 1e10},
			{"sum overflows float32", 1e19, 3e18},
		} {
			t.Run(fmt.Sprintf("asm=%v/%s", asm, tc.name), func(t *testing.T) {
				x := gemmRandX(rnd, n, d)
				for i := range x.Data {
					x.Data[i] = float32(tc.xScale * float64(x.Data[i]))
				}
				x.Data[3*d+5] = float32(tc.xScale) // same sign as the big entries below
				w := gemmRandDense(rnd, k, d)
				w.Set(2, 5, tc.big)
				if tc.name == "sum overflows float32" { // every product fits, their sum does not
					for j := range d {
						x.Data[3*d+j] = float32(tc.xScale)
						w.Set(2, j, tc.big)
					}
				}
				var want, got mat.Dense
				require.NoError(t, MulXWt(&want, x, w, 1))
				require.NoError(t, MulXWtPrecision(&got, nil, x, w, 2, Float32))
				require.True(t, mat.Equal(&want, &got), "X·Wᵀ: not the Float64 result")

				r := mat.NewDense(n, k, nil)
				r.Copy(gemmRandDense(rnd, n, k))
				if tc.name == "sum overflows float32" {
					for i := range n {
						for j := range d {
							x.Data[i*d+j] = float32(tc.xScale)
						}
						r.Set(i, 2, tc.big)
					}
				} else {
					r.Set(3, 2, tc.big)
				}
				want2 := mat.NewDense(k, d, nil)
				got2 := mat.NewDense(k, d, nil)
				require.NoError(t, MulRtX(want2, r, x, 1))
				require.NoError(t, MulRtXPrecision(got2, r, x, 3, Float32))
				require.True(t, mat.Equal(want2, got2), "Rᵀ·X: not the Float64 result")
				require.True(t, gemmFinite64(want2.RawMatrix().Data), "Rᵀ·X: the float64 result is not finite")
			})
		}
	}
}

// TestGemm32Kernel checks one register tile: the Go and assembly kernels
// bit-identical to a loop of float32 products and sums in the kernel's order,
// with B a packed panel (rows 16 floats apart) or rows in place (ldb > 16,
// as ScoreGradRows reads them).
func TestGemm32Kernel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(27, 28))
	for _, tc := range []struct{ k, ia, sa, ldb int }{{1, 1, 6, 16}, {3, 5, 1, 16}, {4, 7, 1, 16}, {5, 1, 6, 16},
		{37, 1, 9, 16}, {256, 256, 1, 16}, {1, 1, 6, 17}, {5, 1, 6, 23}, {32, 1, 10, 784}, {37, 1, 9, 100}} {
		a := make([]float32, (tc.k-1)*tc.sa+(gemm32MR-1)*tc.ia+1)
		b := make([]float32, (tc.k-1)*tc.ldb+gemm32NR)
		for i := range a {
			a[i] = float32(rnd.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rnd.NormFloat64())
		}
		const ldc = 19
		c0 := make([]float64, (gemm32MR-1)*ldc+gemm32NR)
		for i := range c0 {
			c0[i] = rnd.NormFloat64()
		}
		want := slices.Clone(c0)
		for i := range gemm32MR {
			for j := range gemm32NR {
				var s float32
				for r := range tc.k {
					p := a[r*tc.sa+i*tc.ia] * b[tc.ldb*r+j]
					s = s + float32(p)
				}
				want[i*ldc+j] += float64(s)
			}
		}
		name := fmt.Sprintf("k=%d/ia=%d/sa=%d/ldb=%d", tc.k, tc.ia, tc.sa, tc.ldb)
		got := slices.Clone(c0)
		gemm32KernelGo(tc.k, a, tc.ia, tc.sa, b, tc.ldb, got, ldc)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Go kernel differs from the float32 loop:\ngot  %v\nwant %v", name, got, want)
		}
		if gemmHasAsm {
			got := slices.Clone(c0)
			gemm32KernelAsm(tc.k, a, tc.ia, tc.sa, b, tc.ldb, got, ldc)
			if !slices.Equal(got, want) {
				t.Errorf("%s: assembly kernel differs from the float32 loop:\ngot  %v\nwant %v", name, got, want)
			}
		}
	}
}

// TestGemm32Conv checks the float32 copy with row norms: values copied, the
// sum of squares bit-identical to gemmConv's (so Float32 and Float64 norms
// agree), the assembly and Go versions identical, bad values found.
func TestGemm32Conv(t *testing.T) {
	rnd := rand.New(rand.NewPCG(29, 30))
	for _, n := range []int{1, 7, 8, 9, 16, 31, 256} {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(rnd.NormFloat64() * 1e3)
		}
		_, want := func() ([]float64, float64) {
			d := make([]float64, n)
			ss, _ := gemmConvGo(d, src)
			return d, ss
		}()
		for _, asm := range gemmKernels() {
			dst := make([]float32, n)
			ss, ok := gemm32Conv(asm, dst, src)
			require.True(t, ok)
			require.Equal(t, src, dst, "n=%d asm=%v: copied values", n, asm)
			require.Equal(t, math.Float64bits(want), math.Float64bits(ss), "n=%d asm=%v: sum of squares", n, asm)
			for _, badv := range []float32{float32(math.NaN()), float32(math.Inf(1)), -2e30} {
				for _, pos := range []int{0, n / 2, n - 1} {
					s := slices.Clone(src)
					s[pos] = badv
					if _, ok := gemm32Conv(asm, dst, s); ok {
						t.Errorf("n=%d asm=%v: missed %v at %d", n, asm, badv, pos)
					}
				}
			}
		}
	}
}

// TestGemm32Pack checks the panel packing of the Float32 Rᵀ·X: values
// copied, zero padding, the assembly and Go versions identical, bad values
// found.
func TestGemm32Pack(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 32))
	for _, tc := range []struct{ rows, cols, ld int }{{1, 1, 1}, {3, 16, 20}, {5, 30, 31}, {17, 48, 50}, {9, 70, 70}} {
		src := make([]float32, (tc.rows-1)*tc.ld+tc.cols)
		for i := range src {
			src[i] = float32(rnd.NormFloat64())
		}
		np := (tc.cols + gemm32NR - 1) / gemm32NR
		stride := gemm32NR * tc.rows
		fill := func() []float32 {
			d := make([]float32, np*stride)
			for i := range d {
				d[i] = float32(math.NaN()) // must be overwritten
			}
			return d
		}
		for _, asm := range gemmKernels() {
			got := fill()
			require.True(t, gemm32Pack(asm, got, src, tc.rows, tc.cols, tc.ld, stride))
			for r := range tc.rows {
				for c := range np * gemm32NR {
					var want float32
					if c < tc.cols {
						want = src[r*tc.ld+c]
					}
					if g := got[gemm32NR*r+(c/gemm32NR)*stride+c%gemm32NR]; g != want {
						t.Fatalf("%+v asm=%v: (%d, %d) = %v, want %v", tc, asm, r, c, g, want)
					}
				}
			}
			for _, pos := range []int{0, len(src) / 2, len(src) - 1} {
				s := slices.Clone(src)
				s[pos] = 3e30
				if gemm32Pack(asm, fill(), s, tc.rows, tc.cols, tc.ld, stride) {
					t.Errorf("%+v asm=%v: missed 3e30 at %d", tc, asm, pos)
				}
			}
		}
	}
}

func TestGemm32Errors(t *testing.T) {
	rnd := rand.New(rand.NewPCG(33, 34))
	x := gemmRandX(rnd, 300, 20)
	w := gemmRandDense(rnd, 3, 20)
	r := gemmRandDense(rnd, 300, 3)
	withNaN := func(a *mat.Dense) *mat.Dense {
		b := mat.DenseCopyOf(a)
		b.Set(1, 1, math.NaN())
		return b
	}
	bad := func(v float32, at int) *Matrix32 {
		b := &Matrix32{Rows: x.Rows, Cols: x.Cols, Data: slices.Clone(x.Data)}
		b.Data[at] = v
		return b
	}
	xNaN, xInf, xHuge := bad(float32(math.NaN()), 299*20+19), bad(float32(math.Inf(-1)), 17), bad(-2e30, 260*20+3)
	var tests []struct {
		name string
		call func() error
		want error
	}
	add := func(name string, call func() error, want error) {
		tests = append(tests, struct {
			name string
			call func() error
			want error
		}{name, call, want})
	}
	for _, p := range []Precision{Float64, Float32} {
		add(p.String()+"/XWt/nil X", func() error { return MulXWtPrecision(&mat.Dense{}, nil, nil, w, 1, p) }, ErrEmpty)
		add(p.String()+"/XWt/W columns", func() error { return MulXWtPrecision(&mat.Dense{}, nil, x, gemmRandDense(rnd, 3, 5), 1, p) }, ErrShape)
		add(p.String()+"/XWt/dst shape", func() error { return MulXWtPrecision(mat.NewDense(300, 4, nil), nil, x, w, 1, p) }, ErrShape)
		add(p.String()+"/XWt/norms length", func() error { return MulXWtPrecision(&mat.Dense{}, make([]float64, 299), x, w, 1, p) }, ErrShape)
		add(p.String()+"/XWt/NaN W", func() error { return MulXWtPrecision(&mat.Dense{}, nil, x, withNaN(w), 1, p) }, ErrNonFinite)
		add(p.String()+"/XWt/NaN X", func() error { return MulXWtPrecision(&mat.Dense{}, nil, xNaN, w, 2, p) }, ErrNonFinite)
		add(p.String()+"/XWt/Inf X", func() error { return MulXWtPrecision(&mat.Dense{}, make([]float64, 300), xInf, w, 3, p) }, ErrNonFinite)
		add(p.String()+"/XWt/huge X", func() error { return MulXWtPrecision(&mat.Dense{}, nil, xHuge, w, 1, p) }, ErrNonFinite)
		add(p.String()+"/XWt/negative workers", func() error { return MulXWtPrecision(&mat.Dense{}, nil, x, w, -1, p) }, ErrParam)
		add(p.String()+"/RtX/nil R", func() error { return MulRtXPrecision(&mat.Dense{}, nil, x, 1, p) }, ErrEmpty)
		add(p.String()+"/RtX/R rows", func() error { return MulRtXPrecision(&mat.Dense{}, gemmRandDense(rnd, 9, 3), x, 1, p) }, ErrShape)
		add(p.String()+"/RtX/dst shape", func() error { return MulRtXPrecision(mat.NewDense(3, 21, nil), r, x, 1, p) }, ErrShape)
		add(p.String()+"/RtX/dst is R", func() error { return MulRtXPrecision(r, r, x, 1, p) }, ErrShape)
		add(p.String()+"/RtX/NaN R", func() error { return MulRtXPrecision(&mat.Dense{}, withNaN(r), x, 2, p) }, ErrNonFinite)
		add(p.String()+"/RtX/NaN X", func() error { return MulRtXPrecision(&mat.Dense{}, r, xNaN, 1, p) }, ErrNonFinite)
		add(p.String()+"/RtX/Inf X", func() error { return MulRtXPrecision(&mat.Dense{}, r, xInf, 2, p) }, ErrNonFinite)
		add(p.String()+"/RtX/huge X", func() error { return MulRtXPrecision(&mat.Dense{}, r, xHuge, 3, p) }, ErrNonFinite)
		add(p.String()+"/RtX/negative workers", func() error { return MulRtXPrecision(&mat.Dense{}, r, x, -2, p) }, ErrParam)
	}
	add("XWt/unknown precision", func() error { return MulXWtPrecision(&mat.Dense{}, nil, x, w, 1, Precision(2)) }, ErrParam)
	add("RtX/unknown precision", func() error { return MulRtXPrecision(&mat.Dense{}, r, x, 1, Precision(-1)) }, ErrParam)
	for _, asm := range gemmKernels() {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("asm=%v/%s", asm, tc.name), func(t *testing.T) {
				gemmSetAsm(t, asm)
				err := tc.call()
				if !errors.Is(err, tc.want) {
					t.Errorf("got %v, want an error wrapping %v", err, tc.want)
				}
			})
		}
	}
}
