package accountant

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMillsTailConverged(t *testing.T) {
	for _, x := range []float64{2, 2.3, 3, 4.5, 7, 10, 20, 50, 1e3, 1e8} {
		r := 0.0
		for k := 40000; k >= 2; k-- {
			r = float64(k) / (x + r)
		}
		want := 1 / (x + r)
		if got := millsTail(x); relErr(got, want) > 2e-16 {
			t.Errorf("millsTail(%v) = %.17g, want %.17g", x, got, want)
		}
	}
}

// GDP's δ agrees with the plain double formula where that formula is well
// conditioned (δ not tiny, no cancellation), and is continuous across the
// switches between its evaluation branches.
func TestGaussianDeltaDirect(t *testing.T) {
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	for _, mu := range []float64{0.3, 1, 2, 5, 20} {
		for _, eps := range []float64{0, 0.1, 0.5, 1, 2} {
			want := phi(-eps/mu+mu/2) - math.Exp(eps)*phi(-eps/mu-mu/2)
			if want < 1e-3 {
				continue
			}
			got, err := GaussianDelta(mu, eps)
			require.NoError(t, err)
			// The direct formula loses ~1e-14 to cancellation here.
			if relErr(got, want) > 1e-12 {
				t.Errorf("δ(μ=%v, ε=%v) = %.15g, direct %.15g", mu, eps, got, want)
			}
		}
	}
	// Branch points: u = −8, t = 2 (Mills continued fraction), and the
	// M(v) = M(u)/2 switch; δ must be smooth through each.
	for _, mu := range []float64{1e-4, 0.01, 1, 17, 100, 1000} {
		prev := math.NaN()
		for i := 0; i <= 4000; i++ {
			eps := float64(i) * 100 / 4000 * math.Max(1, mu*mu/50)
			l, err := GaussianLogDelta(mu, eps)
			require.NoError(t, err)
			if l > 0 || math.IsNaN(l) {
				t.Fatalf("log δ(μ=%v, ε=%v) = %v", mu, eps, l)
			}
			// 4e-15: δ ≈ 1 near u = −8, where the branches agree to rounding.
			if i > 0 && l > prev+4e-15*math.Max(1, math.Abs(prev)) {
				t.Fatalf("log δ not decreasing at μ=%v, ε=%v: %v after %v", mu, eps, l, prev)
			}
			prev = l
		}
	}
}

// Small μ: δ(ε) ≈ 2Φ(μ/2)−1 at ε = 0 is erf(μ/(2√2)) exactly.
func TestGaussianDeltaSmallMu(t *testing.T) {
	for _, mu := range []float64{1e-4, 1e-3, 0.1} {
		got, err := GaussianDelta(mu, 0)
		require.NoError(t, err)
		if want := math.Erf(mu / (2 * math.Sqrt2)); relErr(got, want) > 1e-11 {
			t.Errorf("δ(μ=%v, 0) = %.15g, want %.15g", mu, got, want)
		}
	}
}

// ε(δ) inverts δ(ε) across μ ∈ [1e-4, 1e3], ε ≤ 100, including δ ≪ 1e-300.
func TestGaussianEpsilonInverse(t *testing.T) {
	for _, mu := range []float64{1e-4, 1e-2, 0.5, 1, 3, 30, 1e3} {
		for _, eps := range []float64{1e-4, 0.01, 0.3, 1, 5, 20, 100} {
			l, err := GaussianLogDelta(mu, eps)
			require.NoError(t, err)
			if l < math.Log(1e-300) || l > math.Log(0.999) {
				continue // δ not representable, or ε barely moves δ
			}
			d := math.Exp(l)
			got, err := GaussianEpsilon(mu, d)
			require.NoError(t, err)
			if relErr(got, eps) > 1e-9 {
				t.Errorf("ε(μ=%v, δ(%v) = %.3g) = %.15g", mu, eps, d, got)
			}
			// Never understated: δ at the returned ε is within target.
			l2, _ := GaussianLogDelta(mu, got)
			if l2 > math.Log(d)+1e-14 {
				t.Errorf("δ(ε returned) = %v > target %v", math.Exp(l2), d)
			}
		}
	}
}

func TestGDPEvents(t *testing.T) {
	g := func(z float64) Gaussian { return Gaussian{NoiseMultiplier: z} }
	tests := []struct {
		name string
		e    Event
		mu   float64
		err  error
	}{
		{"single", g(2), 0.5, nil},
		{"repeated", Repeated{Event: g(2), Count: 4}, 1, nil},
		{"dp-fc", Composed{Events: []Event{g(1), Repeated{Event: g(2), Count: 12}}}, 2, nil},
		{"full-batch poisson", PoissonSampled{Rate: 1, Event: g(4)}, 0.25, nil},
		{"full-batch wor", SampledWithoutReplacement{N: 5, BatchSize: 5, Event: Gaussian{NoiseMultiplier: 4, Adj: ReplaceOne}}, 0.25, nil},
		{"poisson", PoissonSampled{Rate: 0.5, Event: g(1)}, 0, ErrUnsupported},
		{"wor", SampledWithoutReplacement{N: 5, BatchSize: 2, Event: Gaussian{NoiseMultiplier: 4, Adj: ReplaceOne}}, 0, ErrUnsupported},
		{"nested", Composed{Events: []Event{g(1), Repeated{Event: PoissonSampled{Rate: 0.1, Event: g(1)}, Count: 3}}}, 0, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu, err := Mu(tt.e)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Errorf("Mu err = %v, want %v", err, tt.err)
				}
				return
			}
			require.NoError(t, err)
			if relErr(mu, tt.mu) > 1e-15 {
				t.Errorf("Mu = %v, want %v", mu, tt.mu)
			}
			// GDP's answer is that of one Gaussian with z = 1/μ.
			a, err := GDP{}.Epsilon(tt.e, 1e-6)
			require.NoError(t, err)
			b, err := GDP{}.Epsilon(Gaussian{NoiseMultiplier: 1 / tt.mu}, 1e-6)
			require.NoError(t, err)
			if relErr(a, b) > 1e-13 {
				t.Errorf("ε = %v, one Gaussian gives %v", a, b)
			}
		})
	}
}

func TestAccountantParamErrors(t *testing.T) {
	e := Gaussian{NoiseMultiplier: 1}
	for _, acc := range []Accountant{GDP{}, RDP{}} {
		for _, d := range []float64{0, 1, -1, nan(), inf()} {
			if _, err := acc.Epsilon(e, d); !isParamError(err) {
				t.Errorf("%s.Epsilon(δ=%v): err = %v, want *ParamError", acc.Name(), d, err)
			}
		}
		for _, eps := range []float64{-1, nan()} {
			if _, err := acc.Delta(e, eps); !isParamError(err) {
				t.Errorf("%s.Delta(ε=%v): err = %v, want *ParamError", acc.Name(), eps, err)
			}
		}
		for _, bad := range []Event{nil, Gaussian{NoiseMultiplier: nan()}, Repeated{Event: e}, PoissonSampled{Rate: nan(), Event: e}} {
			if _, err := acc.Epsilon(bad, 1e-5); err == nil {
				t.Errorf("%s.Epsilon(%#v) accepted an invalid event", acc.Name(), bad)
			}
		}
	}
	for _, o := range [][]float64{{1, 2}, {2, nan()}, {2, 1e9}, {inf()}} {
		if _, err := (RDP{Orders: o}).Epsilon(e, 1e-5); !isParamError(err) {
			t.Errorf("RDP with orders %v: err = %v, want *ParamError", o, err)
		}
	}
	if _, err := GaussianMu(nan(), 1e-5); !isParamError(err) {
		t.Errorf("GaussianMu(NaN): err = %v", err)
	}
}

func isParamError(err error) bool {
	var pe *ParamError
	return errors.As(err, &pe)
}

// Monotonicity, for every accountant here: ε falls as z grows, rises with
// the number of steps and with the sampling rate.
func TestEpsilonMonotone(t *testing.T) {
	ev := func(q, z float64, T int) Event {
		return Repeated{Count: T, Event: PoissonSampled{Rate: q, Event: Gaussian{NoiseMultiplier: z}}}
	}
	type acc struct {
		a       Accountant
		qs      []float64
		zs      []float64
		ts      []int
		strictQ bool
	}
	zs := []float64{0.6, 0.8, 1, 1.5, 2, 4, 8}
	ts := []int{1, 10, 100, 1000}
	if testing.Short() {
		zs, ts = []float64{0.8, 2, 8}, []int{1, 100}
	}
	for _, c := range []acc{
		{GDP{}, []float64{1}, zs, ts, false},
		{RDP{}, []float64{1e-3, 0.01, 0.1, 0.5, 1}, zs, ts, true},
	} {
		t.Run(c.a.Name(), func(t *testing.T) {
			for _, q := range c.qs {
				for _, T := range c.ts {
					prev := math.Inf(1)
					for _, z := range c.zs {
						eps, err := c.a.Epsilon(ev(q, z, T), 1e-5)
						require.NoError(t, err)
						if !(eps < prev) {
							t.Errorf("q=%v T=%d: ε(z=%v) = %v not below %v", q, T, z, eps, prev)
						}
						prev = eps
					}
				}
				for _, z := range c.zs {
					prev := 0.0
					for _, T := range c.ts {
						eps, err := c.a.Epsilon(ev(q, z, T), 1e-5)
						require.NoError(t, err)
						if !(eps > prev) {
							t.Errorf("q=%v z=%v: ε(T=%d) = %v not above %v", q, z, T, eps, prev)
						}
						prev = eps
					}
				}
			}
			for _, z := range c.zs {
				prev := 0.0
				for _, q := range c.qs {
					eps, err := c.a.Epsilon(ev(q, z, 100), 1e-5)
					require.NoError(t, err)
					if !(eps > prev) {
						t.Errorf("z=%v: ε(q=%v) = %v not above %v", z, q, eps, prev)
					}
					prev = eps
				}
			}
		})
	}
}

func TestCompare(t *testing.T) {
	e := Repeated{Event: Gaussian{NoiseMultiplier: 2}, Count: 10}
	cs, err := Compare(e, 1e-5)
	require.NoError(t, err)
	byName := map[string]Comparison{}
	for _, c := range cs {
		byName[c.Accountant] = c
	}
	ex, rd := byName["exact"], byName["rdp"]
	require.NoError(t, ex.Err)
	require.NoError(t, rd.Err)
	if !(ex.Epsilon < rd.Epsilon) {
		t.Errorf("exact ε %v not below rdp ε %v", ex.Epsilon, rd.Epsilon)
	}
	if cs[0].Accountant != "exact" {
		t.Errorf("first accountant %q, want exact", cs[0].Accountant)
	}
	// Subsampled: exact is not applicable, rdp is.
	cs, err = Compare(PoissonSampled{Rate: 0.01, Event: Gaussian{NoiseMultiplier: 1}}, 1e-5, GDP{}, RDP{})
	require.NoError(t, err)
	require.ErrorIs(t, cs[0].Err, ErrUnsupported)
	require.NoError(t, cs[1].Err)
	if s := FormatComparisons(cs); s == "" {
		t.Error("empty table")
	}
	_, err = Compare(nil, 1e-5)
	require.Error(t, err)
	_, err = Compare(e, 2)
	require.Error(t, err)
}
