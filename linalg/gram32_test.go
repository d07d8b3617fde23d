package linalg

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// gram32Tol bounds |G − exact| relative to Σ_r|x_ri·x_rj| for Float32 on n
// rows: within a block of at most gramKC rows, every product and each of
// the ≤ gramKC−1 float32 additions rounds by at most 2⁻²⁴ relatively, so
// the block sum is within (gramKC+1)·2⁻²⁴ of its Σ|p| (Higham, Accuracy and
// Stability of Numerical Algorithms, §3.1, first order: gramKC·u ≪ 1);
// summing the block results in float64 and the naive reference's own
// rounding add gramTol(n). The blocks' Σ|p| sum to the whole Σ|p|.
func gram32Tol(n int) float64 { return float64(gramKC+1)*0x1p-24 + gramTol(n) }

// withKernel32 runs f with the Float32 assembly kernel on or off, restoring
// the choice.
func withKernel32(t *testing.T, asm bool, f func()) {
	t.Helper()
	if asm && !gram32HasAsm {
		t.Skip("no Float32 assembly kernel on this CPU or build")
	}
	old := gram32UseAsm
	gram32UseAsm = asm
	defer func() { gram32UseAsm = old }()
	f()
}

// gram32Shapes add to gramShapes the widths around the float32 panel.
var gram32Shapes = append(slices.Clone(gramShapes), []struct{ n, d int }{
	{gramKC + 5, 23}, {2*gramKC - 1, 24}, {gramKC, 25}, {3, 47}, {gramKC + 1, 48}, {9, 49},
	{3*gramKC + 17, 3}, {5, 2},
}...)

// relErrors compares g with the naive Gram and returns, over the entries
// with Σ|p| > 0, the largest and the median of |g − want|/Σ|p|, failing if
// an entry exceeds tol.
func relErrors(t *testing.T, g *mat.SymDense, x *Matrix32, tol float64) (worst, median float64) {
	t.Helper()
	d := x.Cols
	want, abs := naiveGram(x)
	var rel []float64
	for i := range d {
		for j := range d {
			got, w, a := g.At(i, j), want[i*d+j], abs[i*d+j]
			diff := math.Abs(got - w)
			if !(diff <= tol*a) {
				t.Fatalf("G(%d, %d) = %v, want %v (diff %g > %g)", i, j, got, w, diff, tol*a)
			}
			if a > 0 && j >= i {
				rel = append(rel, diff/a)
			}
		}
	}
	if len(rel) == 0 {
		return 0, 0
	}
	sort.Float64s(rel)
	return rel[len(rel)-1], rel[len(rel)/2]
}

func TestGram32Naive(t *testing.T) {
	for _, asm := range []bool{false, true} {
		for _, s := range gram32Shapes {
			t.Run(fmt.Sprintf("asm=%v/n=%d/d=%d", asm, s.n, s.d), func(t *testing.T) {
				withKernel32(t, asm, func() {
					rnd := rand.New(rand.NewPCG(uint64(s.n), uint64(s.d)))
					x := randMatrix32(rnd, s.n, s.d)
					g, err := GramPrecision(x, 0, Float32)
					require.NoError(t, err)
					relErrors(t, g, x, gram32Tol(s.n))
				})
			})
		}
	}
}

// TestGram32Accuracy states the measured error of Float32 next to its bound,
// on uniform [−1, 1) rows and on cancellation-free rows (mean 0.5, where
// float32 sums lose most), and checks that the typical (median) error is
// far below the worst-case bound, as the √(block length) argument of the
// Precision doc says, and that Float64 is far more accurate still.
func TestGram32Accuracy(t *testing.T) {
	n, d := 20*gramKC+7, 24
	for _, shift := range []bool{false, true} {
		t.Run(fmt.Sprintf("mean=%v", map[bool]string{false: "0", true: "0.5"}[shift]), func(t *testing.T) {
			x := randMatrix32(rand.New(rand.NewPCG(50, 51)), n, d)
			if shift {
				for i := range x.Data {
					x.Data[i] = 0.5 + x.Data[i]/2
				}
			}
			tol := gram32Tol(n)
			g32, err := GramPrecision(x, 0, Float32)
			require.NoError(t, err)
			worst32, median32 := relErrors(t, g32, x, tol)
			g64, err := Gram(x, 0)
			require.NoError(t, err)
			worst64, _ := relErrors(t, g64, x, gramTol(n))
			t.Logf("n=%d d=%d: Float32 max %.2g, median %.2g of Σ|x_ri x_rj| (bound %.2g); Float64 max %.2g (from the naive float64 loop)",
				n, d, worst32, median32, tol, worst64)
			// √256 = 16 times below the bound is the random-walk estimate of
			// the Precision doc (measured: several hundred times below).
			if median32 > tol/16 {
				t.Errorf("median error %.2g not far below the bound %.2g", median32, tol)
			}
			if worst64 > worst32/100 {
				t.Errorf("Float64 error %.2g not far below Float32's %.2g", worst64, worst32)
			}
		})
	}
}

// TestGram32Bits checks that Float32 results do not depend on the worker
// count nor on the kernel (assembly or Go), to the last bit.
func TestGram32Bits(t *testing.T) {
	for _, s := range []struct{ n, d int }{{1, 1}, {2*gramKC + 5, 61}, {700, 203}, {gramKC + 3, 24}} {
		t.Run(fmt.Sprintf("n=%d/d=%d", s.n, s.d), func(t *testing.T) {
			x := randMatrix32(rand.New(rand.NewPCG(1, 2)), s.n, s.d)
			var ref *mat.SymDense
			for _, asm := range []bool{false, true} {
				if asm && !gram32HasAsm {
					continue
				}
				for _, w := range []int{1, 2, 3, 8} {
					old := gram32UseAsm
					gram32UseAsm = asm
					g, err := GramPrecision(x, w, Float32)
					gram32UseAsm = old
					require.NoError(t, err)
					if ref == nil {
						ref = g
						continue
					}
					requireSameSym(t, g, ref, fmt.Sprintf("asm=%v workers=%d", asm, w))
				}
			}
		})
	}
}

// requireSameSym fails unless the upper triangles of a and b are equal bit
// for bit.
func requireSameSym(t *testing.T, a, b *mat.SymDense, what string) {
	t.Helper()
	for i := range a.SymmetricDim() {
		for j := i; j < a.SymmetricDim(); j++ {
			if x, y := a.At(i, j), b.At(i, j); math.Float64bits(x) != math.Float64bits(y) {
				t.Fatalf("%s: G(%d, %d) = %v, want %v bit for bit", what, i, j, x, y)
			}
		}
	}
}

// fmaRef returns a·b + s rounded once to float32, computed with math/big:
// the reference for fma32 and the fused assembly kernel.
func fmaRef(a, b, s float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(s)))
	f, _ := x.Float32() // nearest, ties to even
	return f
}

// TestFMA32 checks fma32 against math/big on random operands of many
// magnitudes and on sums that fall exactly halfway between two float32
// values in float64 while the exact value does not, where rounding twice
// (to float64, then to float32) would be wrong.
func TestFMA32(t *testing.T) {
	rnd := rand.New(rand.NewPCG(90, 91))
	check := func(a, b, s float32) {
		t.Helper()
		if got, want := fma32(a, b, s), fmaRef(a, b, s); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, s, got, want)
		}
	}
	f32 := func(m uint32, e int) float32 { return float32(math.Ldexp(float64(m|1<<23), e-23)) }
	one, ulp := float32(1), float32(0x1p-23)
	// t = 1+2⁻²³+2⁻²⁴ halfway in float64, exact value 2⁻⁷⁰ below it: 1+2⁻²³,
	// where rounding twice gives 1+2⁻²² (ties to even).
	a, b, s := one+ulp, float32(0x1p-24*(1-0x1p-23)), one+ulp
	require.NotEqual(t, float32(float64(a)*float64(b)+float64(s)), fmaRef(a, b, s), "not a double-rounding case")
	check(a, b, s)
	check(-a, b, -s)
	check(a, -b, s) // not halfway
	for range 200_000 {
		e1, e2 := rnd.IntN(60)-30, rnd.IntN(60)-30
		a, b := f32(rnd.Uint32()>>9, e1), f32(rnd.Uint32()>>9, e2)
		if rnd.IntN(2) == 0 {
			a = -a
		}
		s := f32(rnd.Uint32()>>9, e1+e2+rnd.IntN(50)-25)
		if rnd.IntN(2) == 0 {
			s = -s
		}
		switch rnd.IntN(4) {
		case 0: // a·b + s near cancellation
			s = -float32(float64(a) * float64(b))
			s = math.Nextafter32(s, float32(rnd.NormFloat64()))
		case 1: // small products and sums, down to float32's subnormal range
			a, b, s = a*0x1p-50, b*0x1p-50, s*0x1p-100
		}
		check(a, b, s)
		check(a, b, 0)
	}
	// Halfway cases by construction: s with an odd last bit, a·b = half its
	// ulp minus a little, at several exponents.
	for e := -100; e <= 100; e += 7 {
		for _, m := range []uint32{1, 3, 0x7fffff, 0x2aaaab} {
			s := f32(m, e)
			u := math.Nextafter32(s, float32(math.Inf(1))) - s
			a := one + ulp
			b := float32(float64(u) / 2 * (1 - 0x1p-23))
			check(a, b, s)
			check(a, -b, s)
			check(-a, b, -s)
		}
	}
}

// TestGram32Kernel checks both kernels against the formula of their
// contract, evaluated with math/big, bit for bit, for lengths around the
// unrolling, and on a multiply-add whose float64 sum is halfway between two
// float32 values.
func TestGram32Kernel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(60, 61))
	const ldc = gram32NR + 5
	for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 255, 256} {
		for rep := range 3 {
			a := make([]float32, gram32P*k) // the first 4k used
			b := make([]float32, gram32P*k)
			for i := range a {
				a[i] = float32(rnd.NormFloat64())
				b[i] = float32(rnd.NormFloat64())
			}
			c0 := make([]float64, (gram32MR-1)*ldc+gram32NR)
			for i := range c0 {
				c0[i] = rnd.Float64()
			}
			want := slices.Clone(c0)
			for i := range gram32MR {
				for j := range gram32NR {
					var s float32
					for r := range k {
						s = fmaRef(a[gram32MR*r+i], b[gram32P*r+j], s)
					}
					want[i*ldc+j] += float64(s)
				}
			}
			kernels := map[string]func(int, []float32, []float32, []float64, int){"Go": gram32KernelGo}
			if gram32HasAsm {
				kernels["asm"] = gram32KernelAsm
			}
			for name, kernel := range kernels {
				c := slices.Clone(c0)
				kernel(k, a[:gram32MR*k], b, c, ldc)
				for i, v := range c {
					if math.Float64bits(v) != math.Float64bits(want[i]) {
						t.Fatalf("%s kernel k=%d #%d: c[%d] = %v, want %v bit for bit", name, k, rep, i, v, want[i])
					}
				}
			}
		}
	}
}

// TestGram32KernelHalfway runs both kernels on the double-rounding case of
// TestFMA32: a tile entry of 1·(1+2⁻²³) + (1+2⁻²³)·2⁻²⁴(1−2⁻²³).
func TestGram32KernelHalfway(t *testing.T) {
	a := make([]float32, 2*gram32MR)
	b := make([]float32, 2*gram32P)
	a[0], b[0] = 1, 1+0x1p-23
	a[gram32MR], b[gram32P] = 1+0x1p-23, 0x1p-24*(1-0x1p-23)
	want := fmaRef(a[gram32MR], b[gram32P], fmaRef(a[0], b[0], 0))
	require.Equal(t, float32(1+0x1p-23), want)
	kernels := map[string]func(int, []float32, []float32, []float64, int){"Go": gram32KernelGo}
	if gram32HasAsm {
		kernels["asm"] = gram32KernelAsm
	}
	for name, kernel := range kernels {
		c := make([]float64, (gram32MR-1)*gram32NR+gram32NR)
		kernel(2, a, b, c, gram32NR)
		require.Equal(t, float64(want), c[0], "%s kernel", name)
	}
}

// TestGram32Wide checks blocks computed in float64: entries whose float32
// products would overflow (1e20) or underflow (1e-25) give the accurate
// result, not Inf or 0, wherever they are; a matrix of one block with such
// an entry gives Float64's bits.
func TestGram32Wide(t *testing.T) {
	const n, d = 3*gramKC + 9, 30
	for _, v := range []float32{1e20, -3e25, 1e-25, -1e-30, math.SmallestNonzeroFloat32, gram32Hi * 2, gram32Lo / 2} {
		for _, r := range []int{0, gramKC + 3, n - 1} {
			for _, asm := range []bool{false, true} {
				t.Run(fmt.Sprintf("v=%g/row=%d/asm=%v", v, r, asm), func(t *testing.T) {
					withKernel32(t, asm, func() {
						x := randMatrix32(rand.New(rand.NewPCG(70, uint64(r))), n, d)
						if math.Abs(float64(v)) < 1 {
							// A block of tiny entries, so that underflow is the
							// whole of their products.
							blk := r / gramKC * gramKC
							for i := blk * d; i < min(n, blk+gramKC)*d; i++ {
								x.Data[i] = v
							}
						} else {
							x.Data[r*d+d/2] = v
						}
						var ref *mat.SymDense
						for _, w := range []int{1, 2, 3} {
							g, err := GramPrecision(x, w, Float32)
							require.NoError(t, err)
							relErrors(t, g, x, gram32Tol(n))
							if ref == nil {
								ref = g
							} else {
								requireSameSym(t, g, ref, fmt.Sprintf("workers=%d", w))
							}
						}
						one := x.Slice(r/gramKC*gramKC, min(n, r/gramKC*gramKC+gramKC))
						g32, err := GramPrecision(one, 2, Float32)
						require.NoError(t, err)
						g64, err := Gram(one, 2)
						require.NoError(t, err)
						requireSameSym(t, g32, g64, "one wide block")
					})
				})
			}
		}
	}
}

// TestGram32Huge checks that entries up to MaxAbs, whose squares overflow
// float32, give the finite Float64 result.
func TestGram32Huge(t *testing.T) {
	big := math.Nextafter32(MaxAbs, 0)
	x := &Matrix32{Rows: 2, Cols: 2, Data: []float32{big, -big, big, 2}}
	g32, err := GramPrecision(x, 0, Float32)
	require.NoError(t, err)
	g64, err := Gram(x, 0)
	require.NoError(t, err)
	requireSameSym(t, g32, g64, "Float32")
}

func TestGram32Errors(t *testing.T) {
	const n, d = 3*gramKC + 9, 29
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 2e30, -2e30} {
		for _, r := range []int{0, gramKC - 1, 2*gramKC + 3, n - 1} {
			for _, col := range []int{0, 13, d - 1} {
				t.Run(fmt.Sprintf("v=%g/row=%d/col=%d", v, r, col), func(t *testing.T) {
					x := randMatrix32(rand.New(rand.NewPCG(5, 6)), n, d)
					x.Data[r*d+col] = v
					if r > gramKC {
						x.Data[5*d+1] = 1e20 // a wide block before the bad one
					}
					for _, asm := range []bool{false, true} {
						if asm && !gram32HasAsm {
							continue
						}
						for _, w := range []int{1, 2, 3} {
							old := gram32UseAsm
							gram32UseAsm = asm
							g, err := GramPrecision(x, w, Float32)
							gram32UseAsm = old
							require.Nil(t, g)
							require.ErrorIs(t, err, ErrNonFinite, "asm=%v workers=%d", asm, w)
							require.ErrorContains(t, err, fmt.Sprintf("entry (%d, %d)", r, col))
						}
					}
				})
			}
		}
	}
}

func TestGramPrecisionParam(t *testing.T) {
	x := randMatrix32(rand.New(rand.NewPCG(7, 8)), 10, 4)
	for _, p := range []Precision{-1, 2, 100} {
		g, err := GramPrecision(x, 0, p)
		require.Nil(t, g)
		require.ErrorIs(t, err, ErrParam, "GramPrecision, p = %v", p)

		dst := mat.NewSymDense(4, []float64{1, 2, 3, 4, 2, 5, 6, 7, 3, 6, 8, 9, 4, 7, 9, 10})
		before := mat.DenseCopyOf(dst)
		require.ErrorIs(t, AddGramPrecision(dst, x, 0, p), ErrParam, "AddGramPrecision, p = %v", p)
		require.True(t, mat.Equal(before, dst), "dst changed on error")

		s, err := NewStats(4, 0)
		require.NoError(t, err)
		s.Precision = p
		require.ErrorIs(t, s.Add(x, nil), ErrParam, "Stats.Add, p = %v", p)
		require.Zero(t, s.Count())
	}
	_, err := GramPrecision(nil, 0, 7)
	require.ErrorIs(t, err, ErrEmpty, "shape errors come first")
	require.Equal(t, "Precision(7)", Precision(7).String())
	require.Equal(t, "float32", Float32.String())
	require.Equal(t, "float64", Float64.String())
}

// TestAddGramPrecision checks that AddGramPrecision adds GramPrecision's
// result bit for bit, and that Gram and AddGram are the Float64 precision.
func TestAddGramPrecision(t *testing.T) {
	x := randMatrix32(rand.New(rand.NewPCG(9, 10)), 600, 30)
	for _, p := range []Precision{Float64, Float32} {
		g, err := GramPrecision(x, 3, p)
		require.NoError(t, err)
		dst := mat.NewSymDense(30, nil)
		for i := range 30 {
			dst.SetSym(i, i, 0.25)
		}
		require.NoError(t, AddGramPrecision(dst, x, 1, p))
		for i := range 30 {
			for j := i; j < 30; j++ {
				want := g.At(i, j)
				if i == j {
					want += 0.25
				}
				if got := dst.At(i, j); got != want {
					t.Fatalf("%v: dst(%d, %d) = %v, want %v", p, i, j, got, want)
				}
			}
		}
		var empty mat.SymDense
		require.NoError(t, AddGramPrecision(&empty, x, 2, p))
		requireSameSym(t, &empty, g, p.String()+" into an empty SymDense")
	}
	g64, err := Gram(x, 0)
	require.NoError(t, err)
	gp, err := GramPrecision(x, 0, Float64)
	require.NoError(t, err)
	requireSameSym(t, g64, gp, "Gram vs GramPrecision(Float64)")
	g32, err := GramPrecision(x, 0, Float32)
	require.NoError(t, err)
	require.False(t, mat.Equal(g32, g64), "Float32 gives Float64's bits: not computed in float32")
}

// TestGram32Pack checks both packing routines against the layout of
// gram32Pack's contract and gram32Class at every position of blocks whose
// width is and is not a multiple of the panel width, with ordinary, wide
// and bad values; rows outside the packed range stay untouched.
func TestGram32Pack(t *testing.T) {
	values := []float32{0, float32(math.Copysign(0, -1)), -0.5, 1e-45, -1e-45, gram32Lo, -gram32Lo,
		math.Nextafter32(gram32Lo, 0), gram32Hi, -gram32Hi, math.Nextafter32(gram32Hi, 1e38), -1e20,
		maxAbs32, -maxAbs32, math.Nextafter32(maxAbs32, 1), -math.Nextafter32(maxAbs32, 1),
		float32(math.NaN()), -float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	const n, r0, kb, i0, i1 = 9, 2, 6, 1, 4 // pack rows 3…5 of x, rows 1…3 of a 6-row block
	for _, d := range []int{1, 7, 8, 23, 24, 25, 48, 50, 73} {
		for pos := range d {
			for _, v := range values {
				x := NewMatrix32(n, d)
				for i := range x.Data {
					x.Data[i] = float32(i%97) + 0.25
				}
				x.Data[(r0+i0+1)*d+pos] = v
				f64 := math.Abs(float64(v))
				wantBad := !(f64 <= MaxAbs)
				wantWide := wantBad || f64 > gram32Hi || f64 != 0 && f64 < gram32Lo
				if b, w := gram32Class(v); b != wantBad || w != wantWide {
					t.Fatalf("gram32Class(%v) = %v, %v, want %v, %v", v, b, w, wantBad, wantWide)
				}
				var wantFlags int32
				if wantBad {
					wantFlags |= gram32Bad
				}
				if wantWide {
					wantFlags |= gram32Wide
				}
				np := (d + gram32P - 1) / gram32P
				half := np * gram32P * kb
				want := make([]float32, 2*half)
				for i := range want {
					want[i] = -7
				}
				value := func(i, c int) float32 {
					if c < d {
						return x.Data[(r0+i)*d+c]
					}
					return 0
				}
				for i := i0; i < i1; i++ {
					for c := range np * gram32P {
						want[c/gram32P*gram32P*kb+i*gram32P+c%gram32P] = value(i, c)
						want[half+c/gram32MR*gram32MR*kb+i*gram32MR+c%gram32MR] = value(i, c)
					}
				}
				for _, asm := range []bool{false, true} {
					if asm && !gram32HasAsm {
						continue
					}
					got := make([]float32, 2*half)
					for i := range got {
						got[i] = -7
					}
					if f := gram32Pack(got, x, r0, kb, i0, i1, asm); f != wantFlags {
						t.Fatalf("d=%d pos=%d v=%v asm=%v: status %b, want %b", d, pos, v, asm, f, wantFlags)
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("d=%d pos=%d v=%v asm=%v: pack[%d] = %v, want %v", d, pos, v, asm, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestStatsPrecision checks Stats with Precision Float32: its Gram is
// GramPrecision's to the bit for any Workers and within the Float32 bound of
// the naive loop; its class sums and counts are those of Float64; quantised
// statistics ignore the field and stay exact.
func TestStatsPrecision(t *testing.T) {
	const n, d, k = 2*gramKC + 33, 37, 5
	rnd := rand.New(rand.NewPCG(80, 81))
	x := randMatrix32(rnd, n, d)
	y := randLabels(rnd, n, k)
	g32, err := GramPrecision(x, 0, Float32)
	require.NoError(t, err)
	ref64, err := NewStats(d, k)
	require.NoError(t, err)
	require.NoError(t, ref64.Add(x, y))
	for _, w := range []int{1, 2, 3} {
		s, err := NewStats(d, k)
		require.NoError(t, err)
		s.Workers, s.Precision = w, Float32
		require.NoError(t, s.Add(x, y))
		requireSameSym(t, s.Gram(), g32, fmt.Sprintf("workers=%d", w))
		relErrors(t, s.Gram(), x, gram32Tol(n))
		require.Equal(t, ref64.ClassCounts(), s.ClassCounts())
		require.True(t, mat.Equal(ref64.ClassSums(), s.ClassSums()), "class sums differ from Float64's")
		require.Equal(t, int64(n), s.Count())
	}

	q, err := Quantum(4, 12)
	require.NoError(t, err)
	var quant []*Stats
	for _, p := range []Precision{Float64, Float32} {
		s, err := NewQuantizedStats(d, k, q)
		require.NoError(t, err)
		s.Precision = p
		require.NoError(t, s.Add(x, y))
		quant = append(quant, s)
	}
	requireSameStats(t, quant[1], quant[0])
	xq := &Matrix32{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
	require.NoError(t, Quantize(xq, q))
	want, _ := naiveGram(xq)
	for i := range d {
		for j := range d {
			if got := quant[1].Gram().At(i, j); got != want[i*d+j] {
				t.Fatalf("quantised Gram(%d, %d) = %v, want %v exactly", i, j, got, want[i*d+j])
			}
		}
	}
}

// TestStatsPrecisionErrors checks that a Float32 Stats.Add rejects bad
// entries, leaving s unchanged.
func TestStatsPrecisionErrors(t *testing.T) {
	x := randMatrix32(rand.New(rand.NewPCG(82, 83)), 300, 9)
	x.Data[290*9+4] = float32(math.Inf(-1))
	s, err := NewStats(9, 0)
	require.NoError(t, err)
	s.Precision = Float32
	err = s.Add(x, nil)
	require.True(t, errors.Is(err, ErrNonFinite), "error %v", err)
	require.Zero(t, s.Count())
	require.Zero(t, s.Gram().At(0, 0))
}
