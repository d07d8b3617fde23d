package dp_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/internal/stattest"
	"github.com/dpopt/dpopt/linalg"
)

// noisePath draws noise values of one path of the package from src: one or
// more sets of values (the symmetric paths give the diagonal and the
// off-diagonal entries), set i being N(0, sigmas[i]²).
type noisePath struct {
	name   string
	sigmas []float64
	secure bool // values on the grid of SecureGranularity(sigma)
	draw   func(t *testing.T, src dp.Source) [][]float64
}

const (
	noiseN     = 400_000
	noiseSigma = 2.5
	symD       = 150 // symmetric paths: symReps matrices of symD×symD
	symReps    = 120 // diagonal: 18 000 values, off-diagonal: 1 341 000
)

func zeros(n int) []float64 { return make([]float64, n) }

func noisePaths() []noisePath {
	one := func(f func(*testing.T, dp.Source) []float64) func(*testing.T, dp.Source) [][]float64 {
		return func(t *testing.T, src dp.Source) [][]float64 { return [][]float64{f(t, src)} }
	}
	vector := func(t *testing.T, src dp.Source) []float64 {
		x := zeros(noiseN)
		require.NoError(t, dp.AddGaussian(x, noiseSigma, src))
		return x
	}
	mechanism := func(t *testing.T, src dp.Source) []float64 {
		x := zeros(noiseN)
		require.NoError(t, dp.Gaussian{Sensitivity: 0.5, NoiseMultiplier: noiseSigma / 0.5}.Add(x, src))
		return x
	}
	dense := func(t *testing.T, src dp.Source) []float64 {
		// A 500×800 view with stride 810 of a larger matrix.
		big := mat.NewDense(510, 810, nil)
		m := big.Slice(5, 505, 5, 805).(*mat.Dense)
		require.NoError(t, dp.AddGaussianDense(m, noiseSigma, src))
		out := make([]float64, 0, noiseN)
		for i := range 500 {
			out = append(out, m.RawRowView(i)...)
		}
		// Entries outside the view are untouched.
		for i := range 510 {
			for j := range 810 {
				if (i < 5 || i >= 505 || j < 5 || j >= 805) && big.At(i, j) != 0 {
					t.Fatalf("entry (%d, %d) outside the view changed", i, j)
				}
			}
		}
		return out
	}
	sym := func(t *testing.T, src dp.Source) [][]float64 {
		var diag, off []float64
		for range symReps {
			m := mat.NewSymDense(symD, nil)
			require.NoError(t, dp.AddGaussianSym(m, noiseSigma, src))
			for i := range symD {
				diag = append(diag, m.At(i, i))
				for j := i + 1; j < symD; j++ {
					require.Equal(t, m.At(i, j), m.At(j, i))
					off = append(off, m.At(i, j))
				}
			}
		}
		return [][]float64{diag, off}
	}
	secureVector := func(t *testing.T, src dp.Source) []float64 {
		x := zeros(noiseN)
		require.NoError(t, dp.AddSecureGaussian(x, noiseSigma, src))
		return x
	}
	hardenedNormal := func(t *testing.T, src dp.Source) []float64 {
		x := zeros(noiseN)
		dp.Harden(src).Normal(x)
		return x
	}
	symSigmas := []float64{noiseSigma, noiseSigma / math.Sqrt2}
	return []noisePath{
		{"vector", []float64{noiseSigma}, false, one(vector)},
		{"mechanism", []float64{noiseSigma}, false, one(mechanism)},
		{"dense view", []float64{noiseSigma}, false, one(dense)},
		{"sym", symSigmas, false, sym},
		{"secure vector", []float64{noiseSigma}, true, one(secureVector)},
		{"hardened AddGaussian", []float64{noiseSigma}, true, one(func(t *testing.T, src dp.Source) []float64 { return vector(t, dp.Harden(src)) })},
		{"hardened Normal", []float64{1}, true, one(hardenedNormal)},
		{"hardened sym", symSigmas, true, func(t *testing.T, src dp.Source) [][]float64 { return sym(t, dp.Harden(src)) }},
	}
}

// TestNoiseDistribution checks every noise path against N(0, σ²): mean,
// variance (χ²) and KS distance, three checks at α = 1e-6 each, on ten sets of
// values (the symmetric paths give two: diagonal at σ², off-diagonal at σ²/2).
// A correct implementation fails with probability ≤ 30·1e-6 = 3e-5 per seed.
// Each set must also reject σ off by 10% either way, and the symmetric
// paths' diagonal must reject σ/√2 and the off-diagonal σ (power checks; a
// false acceptance has probability < 1e-50 at these sizes by DKW, and costs no
// false positives). Grid paths get KS slack g/σ ≥ the mass of one grid point
// (≤ 2^-49/√(2π)) plus 1e-12 for the binomial approximation.
func TestNoiseDistribution(t *testing.T) {
	if testing.Short() {
		t.Skip("statistical test of all noise paths: skipped under -short")
	}
	const alpha = 1e-6
	for i, p := range noisePaths() {
		t.Run(p.name, func(t *testing.T) {
			sets := p.draw(t, stattest.Stream(t, uint64(i)))
			for k, x := range sets {
				sigma := p.sigmas[k]
				name := p.name
				if len(sets) > 1 {
					name += []string{" diagonal", " off-diagonal"}[k]
				}
				slack := 0.0
				if p.secure {
					slack = dp.SecureGranularity(sigma)/sigma + 1e-12
				}
				stattest.CheckNormal(t, name, x, sigma, alpha, slack)
				wrong := []float64{1.1 * sigma, sigma / 1.1}
				if len(sets) > 1 {
					wrong = append(wrong, p.sigmas[1-k]) // diagonal vs off-diagonal
				}
				for _, w := range wrong {
					if !stattest.RejectsSigma(x, w, alpha, slack) {
						t.Errorf("%s: no power: N(0, %g²) not rejected (true σ = %g)", name, w, sigma)
					}
				}
			}
		})
	}
}

// countingSource counts the normal draws it gives out.
type countingSource struct {
	dp.Source
	normals int
}

func (c *countingSource) Normal(dst []float64) { c.normals += len(dst); c.Source.Normal(dst) }

// TestSymDraws checks that symmetric noise uses one draw per pair:
// d(d+1)/2 in all, and that a Dense uses one per entry.
func TestSymDraws(t *testing.T) {
	for _, d := range []int{1, 2, 7, 64} {
		src := &countingSource{Source: dp.NewSeededSource(1)}
		require.NoError(t, dp.AddGaussianSym(mat.NewSymDense(d, nil), 1, src))
		if want := d * (d + 1) / 2; src.normals != want {
			t.Errorf("d = %d: %d normal draws, want %d", d, src.normals, want)
		}
		src.normals = 0
		require.NoError(t, dp.AddGaussianDense(mat.NewDense(d, d+1, nil), 1, src))
		if want := d * (d + 1); src.normals != want {
			t.Errorf("dense %d×%d: %d normal draws, want %d", d, d+1, src.normals, want)
		}
	}
}

// TestSecureGrid checks that the hardened sampler's outputs lie on the grid of
// SecureGranularity, whatever the input, and that the input's bits below the
// grid do not reach the output: inputs differing below g/2 give bit-identical
// outputs under the same seed (with plain noise they would not).
func TestSecureGrid(t *testing.T) {
	cases := []struct {
		name  string
		sigma float64
		x     float64
	}{
		{"unit", 1, 0.1},
		{"small sigma", 1e-8, 3.7e-9},
		{"large sigma", 1e12, 12345.678},
		{"large input", 0.5, 1e20},
		{"power of two", 4, -1.0 / 3},
		{"min sigma", dp.SecureMinSigma, 0},
		{"max sigma", dp.SecureMaxSigma, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := dp.SecureGranularity(c.sigma)
			if frac, _ := math.Frexp(g); frac != 0.5 {
				t.Fatalf("granularity %g is not a power of two", g)
			}
			if !(g >= 2*c.sigma/0x1p50 && g < 4*c.sigma/0x1p50) {
				t.Errorf("granularity %g, want in [2σ/2^50, 4σ/2^50)", g)
			}
			const n = 2000
			x, y := make([]float64, n), make([]float64, n)
			for i := range x {
				x[i] = c.x
				y[i] = c.x + g/8 // same grid point after rounding (for large x, c.x + g/8 == c.x)
			}
			require.NoError(t, dp.AddSecureGaussian(x, c.sigma, dp.NewSeededSource(7)))
			require.NoError(t, dp.AddSecureGaussian(y, c.sigma, dp.NewSeededSource(7)))
			for i, v := range x {
				if math.Mod(v, g) != 0 || math.IsInf(v, 0) {
					t.Fatalf("output %d = %v is not a multiple of g = %g", i, v, g)
				}
				if math.Float64bits(v) != math.Float64bits(y[i]) {
					t.Fatalf("output %d: %v vs %v — input bits below the grid leak", i, v, y[i])
				}
			}
		})
	}
	if g := dp.SecureGranularity(dp.SecureMinSigma / 2); !math.IsNaN(g) {
		t.Errorf("SecureGranularity below range = %v, want NaN", g)
	}
}

// TestIndependence checks that draws are not reused and are uncorrelated:
// consecutive calls on one source, and neighbouring values within a call, for
// the plain and the hardened path. Four correlation checks at α = 1e-6
// (exact Student-t tolerance): false failure ≤ 4e-6 per seed. A reused draw
// gives r = 1 and fails.
func TestIndependence(t *testing.T) {
	const n, alpha = 200_000, 1e-6
	tol := stattest.CorrTol(n, alpha)
	for i, harden := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "hardened"}[harden]
		t.Run(name, func(t *testing.T) {
			src := stattest.Stream(t, uint64(200+i))
			if harden {
				src = dp.Harden(src)
			}
			x, y := zeros(n), zeros(n)
			require.NoError(t, dp.AddGaussian(x, 1, src))
			require.NoError(t, dp.AddGaussian(y, 1, src))
			if r := stattest.Corr(x, y); math.Abs(r) > tol {
				t.Errorf("consecutive calls: correlation %.5f, want |r| ≤ %.5f", r, tol)
			}
			if r := stattest.Corr(x[:n-1], x[1:]); math.Abs(r) > stattest.CorrTol(n-1, alpha) {
				t.Errorf("lag-1 autocorrelation %.5f, want |r| ≤ %.5f", r, tol)
			}
		})
	}
}

// TestReproducible checks: same seed ⇒ identical bits on every path; a
// different seed ⇒ different noise.
func TestReproducible(t *testing.T) {
	draws := map[string]func(dp.Source) []float64{
		"uint64": func(s dp.Source) []float64 {
			out := make([]float64, 64)
			for i := range out {
				out[i] = math.Float64frombits(s.Uint64())
			}
			return out
		},
		"normal":   func(s dp.Source) []float64 { x := zeros(1000); s.Normal(x); return x },
		"gaussian": func(s dp.Source) []float64 { x := zeros(1000); _ = dp.AddGaussian(x, 3, s); return x },
		"secure":   func(s dp.Source) []float64 { x := zeros(1000); _ = dp.AddSecureGaussian(x, 3, s); return x },
		"hardened": func(s dp.Source) []float64 { x := zeros(1000); _ = dp.AddGaussian(x, 3, dp.Harden(s)); return x },
		"sym": func(s dp.Source) []float64 {
			m := mat.NewSymDense(20, nil)
			_ = dp.AddGaussianSym(m, 3, s)
			return m.RawSymmetric().Data
		},
	}
	bitsEqual := func(a, b []float64) bool {
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				return false
			}
		}
		return len(a) == len(b)
	}
	for name, draw := range draws {
		t.Run(name, func(t *testing.T) {
			a, b, c := draw(dp.NewSeededSource(42)), draw(dp.NewSeededSource(42)), draw(dp.NewSeededSource(43))
			if !bitsEqual(a, b) {
				t.Error("same seed, different output")
			}
			if bitsEqual(a, c) {
				t.Error("seeds 42 and 43 give the same output")
			}
			// A source continues its stream: a second draw differs from the first.
			s := dp.NewSeededSource(42)
			if first, second := draw(s), draw(s); bitsEqual(first, second) {
				t.Error("second draw from one source repeats the first")
			}
		})
	}
	// Secure sources are keyed independently.
	a, b := dp.NewSecureSource(), dp.NewSecureSource()
	if a.Uint64() == b.Uint64() && a.Uint64() == b.Uint64() {
		t.Error("two secure sources give the same stream")
	}
	if _, ok := a.(dp.GaussianAdder); !ok {
		t.Error("NewSecureSource is not a GaussianAdder: its noise would bypass the hardened sampler")
	}
}

// TestSecureSourceUsesHardenedPath checks that a secure Source's Gaussian
// noise, through AddGaussian and the matrix mechanisms, is on the hardened
// grid (a plain N(0, σ²) draw is on it with probability ≈ 0).
func TestSecureSourceUsesHardenedPath(t *testing.T) {
	const sigma = 3.0
	g := dp.SecureGranularity(sigma)
	onGrid := func(t *testing.T, x []float64, g float64) {
		t.Helper()
		for i, v := range x {
			if math.Mod(v, g) != 0 {
				t.Fatalf("value %d = %v not on grid %g", i, v, g)
			}
		}
	}
	src := dp.NewSecureSource()
	x := zeros(1000)
	for i := range x {
		x[i] = float64(i) / 7
	}
	require.NoError(t, dp.AddGaussian(x, sigma, src))
	onGrid(t, x, g)
	m := mat.NewDense(10, 10, nil)
	require.NoError(t, dp.AddGaussianDense(m, sigma, src))
	onGrid(t, m.RawMatrix().Data, g)
	s := mat.NewSymDense(10, nil)
	require.NoError(t, dp.AddGaussianSym(s, sigma, src))
	for i := range 10 {
		onGrid(t, []float64{s.At(i, i)}, g)
		for j := i + 1; j < 10; j++ {
			onGrid(t, []float64{s.At(i, j)}, dp.SecureGranularity(sigma/math.Sqrt2))
		}
	}
}

func TestNoiseErrors(t *testing.T) {
	src := dp.NewSeededSource(1)
	nan, inf := math.NaN(), math.Inf(1)
	isParam := func(param string) func(error) bool {
		return func(err error) bool {
			var pe *dp.ParamError
			return errors.As(err, &pe) && pe.Param == param
		}
	}
	is := func(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }
	cases := []struct {
		name string
		call func(x []float64) error
		ok   func(error) bool
	}{
		{"sigma 0", func(x []float64) error { return dp.AddGaussian(x, 0, src) }, isParam("Sigma")},
		{"sigma negative", func(x []float64) error { return dp.AddGaussian(x, -1, src) }, isParam("Sigma")},
		{"sigma NaN", func(x []float64) error { return dp.AddGaussian(x, nan, src) }, isParam("Sigma")},
		{"sigma Inf", func(x []float64) error { return dp.AddGaussian(x, inf, src) }, isParam("Sigma")},
		{"nil source", func(x []float64) error { return dp.AddGaussian(x, 1, nil) }, is(dp.ErrNilSource)},
		{"NaN data", func(x []float64) error { x[1] = nan; return dp.AddGaussian(x, 1, src) }, is(linalg.ErrNonFinite)},
		{"Inf data", func(x []float64) error { x[2] = -inf; return dp.AddGaussian(x, 1, src) }, is(linalg.ErrNonFinite)},
		{"secure NaN data", func(x []float64) error { x[0] = nan; return dp.AddSecureGaussian(x, 1, src) }, is(linalg.ErrNonFinite)},
		{"secure sigma 0", func(x []float64) error { return dp.AddSecureGaussian(x, 0, src) }, isParam("Sigma")},
		{"secure sigma tiny", func(x []float64) error { return dp.AddSecureGaussian(x, 1e-300, src) }, is(dp.ErrSecureRange)},
		{"secure source sigma huge", func(x []float64) error { return dp.AddGaussian(x, 1e300, dp.NewSecureSource()) }, is(dp.ErrSecureRange)},
		{"secure nil source", func(x []float64) error { return dp.AddSecureGaussian(x, 1, nil) }, is(dp.ErrNilSource)},
		{"mechanism sensitivity 0", func(x []float64) error { return dp.Gaussian{NoiseMultiplier: 1}.Add(x, src) }, isParam("Sensitivity")},
		{"mechanism multiplier NaN", func(x []float64) error { return dp.Gaussian{Sensitivity: 1, NoiseMultiplier: nan}.Add(x, src) }, isParam("NoiseMultiplier")},
		{"mechanism overflow", func(x []float64) error { return dp.Gaussian{Sensitivity: 1e200, NoiseMultiplier: 1e200}.Add(x, src) }, isParam("Sigma")},
		{"dense nil", func([]float64) error { return dp.AddGaussianDense(nil, 1, src) }, is(linalg.ErrEmpty)},
		{"dense empty", func([]float64) error { return dp.AddGaussianDense(&mat.Dense{}, 1, src) }, is(linalg.ErrEmpty)},
		{"dense NaN", func([]float64) error { return dp.AddGaussianDense(mat.NewDense(1, 1, []float64{nan}), 1, src) }, is(linalg.ErrNonFinite)},
		{"dense nil source", func([]float64) error { return dp.AddGaussianDense(mat.NewDense(1, 1, nil), 1, nil) }, is(dp.ErrNilSource)},
		{"sym empty", func([]float64) error { return dp.AddGaussianSym(&mat.SymDense{}, 1, src) }, is(linalg.ErrEmpty)},
		{"sym Inf", func([]float64) error { return dp.AddGaussianSym(mat.NewSymDense(2, []float64{1, inf, inf, 1}), 1, src) }, is(linalg.ErrNonFinite)},
		{"sym sigma NaN", func([]float64) error { return dp.AddGaussianSym(mat.NewSymDense(2, nil), nan, src) }, isParam("Sigma")},
		{"sym mechanism", func([]float64) error {
			return dp.Gaussian{Sensitivity: -1, NoiseMultiplier: 1}.AddSym(mat.NewSymDense(2, nil), src)
		}, isParam("Sensitivity")},
		{"dense mechanism", func([]float64) error { return dp.Gaussian{Sensitivity: 1}.AddDense(mat.NewDense(2, 2, nil), src) }, isParam("NoiseMultiplier")},
		{"normal dense nil source", func([]float64) error { return dp.NormalDense(mat.NewDense(2, 2, nil), nil) }, is(dp.ErrNilSource)},
		{"draw nil source", func(x []float64) error { return dp.DrawNormals(x, nil) }, is(dp.ErrNilSource)},
		{"draw secure source", func(x []float64) error { return dp.DrawNormals(x, dp.NewSecureSource()) }, isParam("src")},
		{"draw hardened source", func(x []float64) error { return dp.DrawNormals(x, dp.Harden(src)) }, isParam("src")},
		{"add draws length", func(x []float64) error { return dp.AddNormals(x, 1, zeros(2)) }, is(linalg.ErrShape)},
		{"add draws sigma 0", func(x []float64) error { return dp.AddNormals(x, 0, zeros(3)) }, isParam("Sigma")},
		{"add draws NaN data", func(x []float64) error { x[1] = nan; return dp.AddNormals(x, 1, zeros(3)) }, is(linalg.ErrNonFinite)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := []float64{1, 2, 3}
			err := c.call(x)
			if err == nil || !c.ok(err) {
				t.Fatalf("error = %v, not the one wanted", err)
			}
			for _, v := range x[:] {
				if v != 1 && v != 2 && v != 3 && !math.IsNaN(v) && !math.IsInf(v, 0) {
					t.Errorf("input changed on error: %v", x)
				}
			}
		})
	}
}

func TestNormalDense(t *testing.T) {
	m := mat.NewDense(3, 4, nil)
	require.NoError(t, dp.NormalDense(m, dp.NewSeededSource(5)))
	want := zeros(12)
	dp.NewSeededSource(5).Normal(want)
	if !mat.Equal(m, mat.NewDense(3, 4, want)) {
		t.Errorf("NormalDense = %v, want the source's first 12 normals %v", m.RawMatrix().Data, want)
	}
}

// callsSource records the length of each Normal call it serves.
type callsSource struct {
	dp.Source
	calls []int
}

func (c *callsSource) Normal(dst []float64) {
	c.calls = append(c.calls, len(dst))
	c.Source.Normal(dst)
}

// TestDrawNormals: DrawNormals then AddNormals adds what AddGaussian adds,
// bit for bit, through the same calls of the Source, and leaves it in the
// same state — for the seeded source and for a Source of another type,
// below and above AddGaussian's chunks of NormalsChunk draws; and so does
// DrawNormals over pieces whose lengths are multiples of NormalsChunk.
func TestDrawNormals(t *testing.T) {
	for _, n := range []int{1, dp.NormalsChunk, 7850, 10000} {
		for _, wrap := range []bool{false, true} {
			t.Run(fmt.Sprintf("n=%d/wrapped=%v", n, wrap), func(t *testing.T) {
				mk := func() (dp.Source, *callsSource) {
					if !wrap {
						return dp.NewSeededSource(9), nil
					}
					c := &callsSource{Source: dp.NewSeededSource(9)}
					return c, c
				}
				srcA, callsA := mk()
				srcB, callsB := mk()
				srcC, callsC := mk()
				want, got := zeros(n), zeros(n)
				for i := range want {
					want[i] = float64(i%17) - 8.5
					got[i] = want[i]
				}
				require.NoError(t, dp.AddGaussian(want, 2.5, srcA))
				z := zeros(n)
				require.NoError(t, dp.DrawNormals(z, srcB))
				require.NoError(t, dp.AddNormals(got, 2.5, z))
				for i := range want {
					if math.Float64bits(want[i]) != math.Float64bits(got[i]) {
						t.Fatalf("element %d: got %v, want AddGaussian's %v", i, got[i], want[i])
					}
				}
				// In pieces of 2, 1, 3, … chunks.
				zc := zeros(n)
				for lo, p := 0, 0; lo < n; p++ {
					hi := min(n, lo+(1+(p+1)%3)*dp.NormalsChunk)
					require.NoError(t, dp.DrawNormals(zc[lo:hi], srcC))
					lo = hi
				}
				for i := range z {
					if math.Float64bits(z[i]) != math.Float64bits(zc[i]) {
						t.Fatalf("draw %d in pieces: got %v, want %v", i, zc[i], z[i])
					}
				}
				if wrap {
					require.Equal(t, callsA.calls, callsB.calls, "Normal calls")
					require.Equal(t, callsA.calls, callsC.calls, "Normal calls in pieces")
				}
				if a, b, c := srcA.Uint64(), srcB.Uint64(), srcC.Uint64(); a != b || a != c {
					t.Errorf("next words %#x and %#x, want %#x: the source was left in another state", b, c, a)
				}
			})
		}
	}
}
