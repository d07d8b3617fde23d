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

// randMatrix32 returns an n×d matrix of uniform [-1, 1) float32 values.
func randMatrix32(rnd *rand.Rand, n, d int) *Matrix32 {
	x := NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(2*rnd.Float64() - 1)
	}
	return x
}

// naiveGram returns XᵀX and Σ_r |x_ri·x_rj| by a plain float64 triple loop.
func naiveGram(x *Matrix32) (g, abs []float64) {
	d := x.Cols
	g = make([]float64, d*d)
	abs = make([]float64, d*d)
	for r := range x.Rows {
		row := x.Row(r)
		for i, vi := range row {
			for j, vj := range row {
				p := float64(vi) * float64(vj)
				g[i*d+j] += p
				abs[i*d+j] += math.Abs(p)
			}
		}
	}
	return g, abs
}

// gramTol bounds the error of a float64 sum of n exact products in any order
// relative to Σ|x_ri·x_rj|: each of the ≤ n-1 additions of each sum (the
// blocked one and the naive one) rounds by at most 2⁻⁵³ relatively
// (Higham, Accuracy and Stability of Numerical Algorithms, §4.2), so the two
// differ by at most 2·(n-1)·2⁻⁵³·Σ|p| (first order; n·u ≪ 1 here).
func gramTol(n int) float64 { return 2 * float64(n) * 0x1p-53 }

// withKernel runs f with the assembly kernel on or off, restoring the choice.
func withKernel(t *testing.T, asm bool, f func()) {
	t.Helper()
	if asm && !gramHasAsm {
		t.Skip("no assembly kernel on this CPU or build")
	}
	old := gramUseAsm
	gramUseAsm = asm
	defer func() { gramUseAsm = old }()
	f()
}

var gramShapes = []struct{ n, d int }{
	{1, 1}, {1, 7}, {3, 1}, {5, 6}, {7, 8}, {13, 13},
	{gramKC - 1, 9}, {gramKC, 24}, {gramKC + 1, 17},
	{1000, 1}, {1000, 33}, {777, 100}, {2*gramKC + 3, 97}, {600, 130},
	{300, 200}, // more than one work unit in each direction
}

func TestGramNaive(t *testing.T) {
	for _, asm := range []bool{false, true} {
		for _, s := range gramShapes {
			t.Run(fmt.Sprintf("asm=%v/n=%d/d=%d", asm, s.n, s.d), func(t *testing.T) {
				withKernel(t, asm, func() {
					rnd := rand.New(rand.NewPCG(uint64(s.n), uint64(s.d)))
					x := randMatrix32(rnd, s.n, s.d)
					g, err := Gram(x, 0)
					require.NoError(t, err)
					want, abs := naiveGram(x)
					tol := gramTol(s.n)
					for i := range s.d {
						for j := range s.d {
							got := g.At(i, j)
							if diff := math.Abs(got - want[i*s.d+j]); diff > tol*abs[i*s.d+j] {
								t.Fatalf("G(%d, %d) = %v, want %v (diff %g > %g)", i, j, got, want[i*s.d+j], diff, tol*abs[i*s.d+j])
							}
						}
					}
				})
			})
		}
	}
}

// TestGramBits checks that the result does not depend on the worker count
// nor on the kernel, to the last bit.
func TestGramBits(t *testing.T) {
	for _, s := range []struct{ n, d int }{{1, 1}, {2*gramKC + 5, 61}, {700, 203}} {
		t.Run(fmt.Sprintf("n=%d/d=%d", s.n, s.d), func(t *testing.T) {
			x := randMatrix32(rand.New(rand.NewPCG(1, 2)), s.n, s.d)
			var ref *mat.SymDense
			for _, asm := range []bool{false, true} {
				if asm && !gramHasAsm {
					continue
				}
				for _, w := range []int{1, 2, 3, 8} {
					old := gramUseAsm
					gramUseAsm = asm
					g, err := Gram(x, w)
					gramUseAsm = old
					require.NoError(t, err)
					if ref == nil {
						ref = g
						continue
					}
					for i := range s.d {
						for j := i; j < s.d; j++ {
							if a, b := g.At(i, j), ref.At(i, j); math.Float64bits(a) != math.Float64bits(b) {
								t.Fatalf("asm=%v workers=%d: G(%d, %d) = %v, want %v bit for bit", asm, w, i, j, a, b)
							}
						}
					}
				}
			}
		})
	}
}

func TestAddGram(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	x := randMatrix32(rnd, 300, 20)
	g, err := Gram(x, 0)
	require.NoError(t, err)
	dst := mat.NewSymDense(20, nil)
	for i := range 20 {
		dst.SetSym(i, i, 1)
	}
	require.NoError(t, AddGram(dst, x, 2))
	for i := range 20 {
		for j := i; j < 20; j++ {
			want := g.At(i, j)
			if i == j {
				want++
			}
			if got := dst.At(i, j); got != want {
				t.Fatalf("dst(%d, %d) = %v, want %v", i, j, got, want)
			}
		}
	}
	var empty mat.SymDense
	require.NoError(t, AddGram(&empty, x, 1))
	require.True(t, mat.Equal(&empty, g), "AddGram into an empty SymDense differs from Gram")
}

// TestGramHuge checks that entries up to MaxAbs, whose squares overflow
// float32, give finite, exact results.
func TestGramHuge(t *testing.T) {
	big := math.Nextafter32(MaxAbs, 0) // float32(1e30) is just above MaxAbs
	x := &Matrix32{Rows: 2, Cols: 2, Data: []float32{big, -big, big, 2}}
	g, err := Gram(x, 0)
	require.NoError(t, err)
	a, b := float64(big), -float64(big)
	want := [][]float64{{2 * a * a, a*b + 2*a}, {a*b + 2*a, b*b + 4}}
	for i := range 2 {
		for j := range 2 {
			if got := g.At(i, j); got != want[i][j] {
				t.Errorf("G(%d, %d) = %v, want %v", i, j, got, want[i][j])
			}
		}
	}
}

func TestGramErrors(t *testing.T) {
	bad := func(v float32) *Matrix32 {
		x := randMatrix32(rand.New(rand.NewPCG(5, 6)), 600, 9)
		x.Data[len(x.Data)-3] = v
		return x
	}
	ok := randMatrix32(rand.New(rand.NewPCG(7, 8)), 10, 4)
	cases := []struct {
		name    string
		dst     *mat.SymDense
		x       *Matrix32
		workers int
		want    error
	}{
		{"nil", nil, nil, 0, ErrEmpty},
		{"no rows", nil, &Matrix32{Rows: 0, Cols: 3}, 0, ErrEmpty},
		{"no columns", nil, &Matrix32{Rows: 3, Cols: 0}, 0, ErrEmpty},
		{"short data", nil, &Matrix32{Rows: 2, Cols: 3, Data: make([]float32, 5)}, 0, ErrShape},
		{"NaN", nil, bad(float32(math.NaN())), 0, ErrNonFinite},
		{"+Inf", nil, bad(float32(math.Inf(1))), 2, ErrNonFinite},
		{"-Inf", nil, bad(float32(math.Inf(-1))), 1, ErrNonFinite},
		{"huge", nil, bad(2e30), 0, ErrNonFinite},
		{"dst shape", mat.NewSymDense(3, nil), ok, 0, ErrShape},
		{"negative workers", nil, ok, -1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.dst != nil {
				before := mat.DenseCopyOf(c.dst)
				err = AddGram(c.dst, c.x, c.workers)
				require.True(t, mat.Equal(before, c.dst), "dst changed on error")
			} else {
				var g *mat.SymDense
				g, err = Gram(c.x, c.workers)
				require.Nil(t, g)
			}
			require.Error(t, err)
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %q does not wrap %q", err, c.want)
			}
		})
	}
}

// TestGramAccuracy measures the error of Gram against a double-double
// reference and states it next to what float32 accumulation would cost,
// the reason Gram converts to float64 before multiplying.
func TestGramAccuracy(t *testing.T) {
	n, d := 100_000, 8
	if testing.Short() {
		n = 20_000
	}
	x := randMatrix32(rand.New(rand.NewPCG(40, 41)), n, d)
	// Mean 0.5 features make cancellation-free sums, the case where float32
	// accumulation loses most (relative error grows like √n·2⁻²⁴ or worse).
	for i := range x.Data {
		x.Data[i] = 0.5 + x.Data[i]/2
	}
	g, err := Gram(x, 0)
	require.NoError(t, err)
	var worst64, worst32 float64
	for i := range d {
		for j := i; j < d; j++ {
			// Reference: exact products, summed in double-double (TwoSum), whose
			// error (about n·2⁻¹⁰⁶) is negligible here.
			var hi, lo, abs float64
			var blk32, acc32 float32 // float32 per 256-row block, then float32 total
			for r := range n {
				a, b := x.Data[r*d+i], x.Data[r*d+j]
				p := float64(a) * float64(b)
				s := hi + p
				bp := s - hi
				lo += (hi - (s - bp)) + (p - bp)
				hi = s
				abs += math.Abs(p)
				blk32 += a * b
				if (r+1)%gramKC == 0 || r == n-1 {
					acc32 += blk32
					blk32 = 0
				}
			}
			exact := hi + lo
			worst64 = max(worst64, math.Abs(g.At(i, j)-exact)/abs)
			worst32 = max(worst32, math.Abs(float64(acc32)-exact)/abs)
		}
	}
	// Bound on the blocked float64 sum: (256 + n/256)·2⁻⁵³ relative to Σ|p|
	// (Higham §4.2, first order), the figure stated in the package doc.
	bound := float64(gramKC+n/gramKC) * 0x1p-53
	t.Logf("n=%d: max |G − exact|/Σ|x_i x_j| = %.2g with float64 products and sums (bound %.2g); "+
		"float32 products and sums would give %.2g", n, worst64, bound, worst32)
	if worst64 > bound {
		t.Errorf("relative error %g above the bound %g", worst64, bound)
	}
	if worst32 < 1e3*worst64 {
		t.Errorf("float32 error %g not far above float64's %g: the test data lost its point", worst32, worst64)
	}
}

// TestGramPackRow checks both packing routines against each other at every
// position of rows whose length is and is not a multiple of the panel width
// and of the 8-value check width, with valid and invalid values.
func TestGramPackRow(t *testing.T) {
	valid := []float32{0, -0.5, maxAbs32, -maxAbs32, 1e-45}
	invalid := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Nextafter32(maxAbs32, 1), -math.Nextafter32(maxAbs32, 1)}
	for _, d := range []int{1, 7, 8, 11, 12, 13, 20, 24, 25, 37} {
		for pos := range d {
			for _, v := range append(append([]float32(nil), valid...), invalid...) {
				row := make([]float32, d)
				for j := range row {
					row[j] = float32(j) + 0.25
				}
				row[pos] = v
				wantOK := !(math.IsNaN(float64(v)) || math.Abs(float64(v)) > MaxAbs)
				const stride = 2 * gramP // two rows of a block: the other must stay untouched
				panels := (d + gramP - 1) / gramP
				goDst := make([]float64, panels*stride)
				for i := range goDst {
					goDst[i] = -7
				}
				asmDst := append([]float64(nil), goDst...)
				if ok := gramPackRowGo(goDst, row, stride); ok != wantOK {
					t.Fatalf("d=%d pos=%d v=%v: Go packing ok = %v, want %v", d, pos, v, ok, wantOK)
				}
				if gramHasAsm {
					if ok := gramPackRowAsm(asmDst, row, stride); ok != wantOK {
						t.Fatalf("d=%d pos=%d v=%v: assembly packing ok = %v, want %v", d, pos, v, ok, wantOK)
					}
				} else {
					copy(asmDst, goDst)
				}
				for p := range panels {
					for j := range stride {
						want := -7.0 // the next row's slot, untouched
						if j < gramP {
							want = 0
							if c := p*gramP + j; c < d {
								want = float64(row[c])
							}
						}
						g, a := goDst[p*stride+j], asmDst[p*stride+j]
						if !(g == want || math.IsNaN(want) && math.IsNaN(g)) || math.Float64bits(a) != math.Float64bits(g) {
							t.Fatalf("d=%d pos=%d: panel %d slot %d = %v (Go), %v (asm), want %v", d, pos, p, j, g, a, want)
						}
					}
				}
			}
		}
	}
}
