package dp_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/dp"
)

// vectorsPath is the shared accounting reference vectors, beside the repository
// (../shared from the repository root, both here and in CI).
const vectorsPath = "../../shared/testdata/accounting_vectors.json"

// jsonFloat decodes a JSON number or one of the strings "+Inf", "-Inf", "NaN".
type jsonFloat float64

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "+Inf":
			*f = jsonFloat(math.Inf(1))
		case "-Inf":
			*f = jsonFloat(math.Inf(-1))
		case "NaN":
			*f = jsonFloat(math.NaN())
		default:
			return fmt.Errorf("unknown float string %q", s)
		}
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = jsonFloat(v)
	return err
}

type vectorCase struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Inputs struct {
		Epsilon     jsonFloat `json:"epsilon"`
		Delta       jsonFloat `json:"delta"`
		Sigma       jsonFloat `json:"sigma"`
		Sensitivity jsonFloat `json:"sensitivity"`
	} `json:"inputs"`
	Reference struct {
		Value    *jsonFloat `json:"value"`
		LogValue *jsonFloat `json:"log_value"`
	} `json:"reference"`
}

// loadVectors returns the cases of the given kind, skipping the test only if
// the file is absent.
func loadVectors(t *testing.T, kind string) []vectorCase {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("reference vectors %s absent (expected ../shared/testdata beside the repository): skipping", vectorsPath)
	}
	require.NoError(t, err)
	var file struct {
		Cases []json.RawMessage `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &file))
	var out []vectorCase
	for _, raw := range file.Cases {
		var head struct {
			Kind string `json:"kind"`
		}
		require.NoError(t, json.Unmarshal(raw, &head))
		if head.Kind != kind {
			continue // other kinds have other input shapes
		}
		var c vectorCase
		require.NoError(t, json.Unmarshal(raw, &c))
		out = append(out, c)
	}
	require.NotEmpty(t, out, "no %s cases in %s", kind, vectorsPath)
	return out
}

// TestSigmaForGaussianVectors compares with the exact (mpmath, 50 digits)
// analytic-Gaussian σ of the reference vectors: rel 1e-9 as the vectors'
// README recommends (peers reach 3e-13), and with Google's
// noise.SigmaForGaussian v3.0.0, a bisection that stops up to 0.1% high:
// ours must be below it and within 0.1%.
func TestSigmaForGaussianVectors(t *testing.T) {
	for _, c := range loadVectors(t, "gaussian_sigma") {
		t.Run(c.ID, func(t *testing.T) {
			eps, delta, sens := float64(c.Inputs.Epsilon), float64(c.Inputs.Delta), float64(c.Inputs.Sensitivity)
			got, err := dp.SigmaForGaussian(eps, delta, sens)
			require.NoError(t, err)
			want := float64(*c.Reference.Value)
			if rel := math.Abs(got-want) / want; rel > 1e-9 {
				t.Errorf("SigmaForGaussian(%g, %g, %g) = %.15g, want %.15g (rel %.2g > 1e-9)", eps, delta, sens, got, want, rel)
			}
			google := noise.SigmaForGaussian(1, sens, eps, delta)
			if got > google || got < google/(1+1e-3) {
				t.Errorf("SigmaForGaussian = %.15g, Google's %.15g: want in [google/1.001, google]", got, google)
			}
			// Smallest: δ(σ) ≤ δ, δ(σ·(1−1e-12)) > δ.
			d, err := dp.DeltaForGaussian(got, eps, sens)
			require.NoError(t, err)
			below, err := dp.DeltaForGaussian(got*(1-1e-12), eps, sens)
			require.NoError(t, err)
			if d > delta || below <= delta {
				t.Errorf("δ(σ) = %.17g, δ(σ·(1−1e-12)) = %.17g, want ≤ %g < ", d, below, delta)
			}
		})
	}
}

// TestDeltaForGaussianVectors compares with the exact (mpmath) δ of the
// reference vectors: rel 1e-9 on δ, and abs 1e-9 on ln δ (the check that
// matters where δ underflows; here it is run on every case).
func TestDeltaForGaussianVectors(t *testing.T) {
	for _, c := range loadVectors(t, "gaussian_delta") {
		t.Run(c.ID, func(t *testing.T) {
			sigma, eps := float64(c.Inputs.Sigma), float64(c.Inputs.Epsilon)
			sens := 1.0
			if c.Inputs.Sensitivity != 0 {
				sens = float64(c.Inputs.Sensitivity)
			}
			got, err := dp.DeltaForGaussian(sigma, eps, sens)
			require.NoError(t, err)
			want := float64(*c.Reference.Value)
			if want >= 1e-300 {
				if rel := math.Abs(got-want) / want; rel > 1e-9 {
					t.Errorf("DeltaForGaussian(%g, %g) = %.15g, want %.15g (rel %.2g > 1e-9)", sigma, eps, got, want, rel)
				}
			}
			if c.Reference.LogValue != nil {
				lg, err := dp.LogDeltaForGaussian(sigma, eps, sens)
				require.NoError(t, err)
				if lw := float64(*c.Reference.LogValue); math.Abs(lg-lw) > 1e-9 {
					t.Errorf("LogDeltaForGaussian(%g, %g) = %.15g, want %.15g (abs 1e-9)", sigma, eps, lg, lw)
				}
			}
		})
	}
}

// TestDeltaForGaussianExtremes checks cases far outside the vectors against
// closed forms: the log-space formula where δ underflows (asymptotics of
// Φ), scale invariance in (σ, Δ), and ε = 0 (total variation distance).
func TestDeltaForGaussianExtremes(t *testing.T) {
	cases := []struct {
		name           string
		sigma, eps, dl float64
		wantLog, tol   float64
	}{
		// μ = 0.05, ε = 16: a = 0.025 − 320 ≈ −319.975, δ ≈ φ(a)(1/|a| − 1/|b|),
		// with the erfc asymptotic series; tolerance 1e-6 is that series' error at
		// this argument (terms of order 1/a² ≈ 1e-5 relative are included).
		{"underflow", 20, 16, 1, logTailDelta(0.05, 16), 1e-6},
		{"scale", 2e6, 3, 1e6, logDeltaDirect(0.5, 3), 1e-12},
		// ε = 0: δ = 2Φ(μ/2) − 1 = erf(μ/(2√2)), accurate for tiny μ.
		{"eps 0 tiny mu", 1e10, 0, 1, math.Log(math.Erf(1e-10 / (2 * math.Sqrt2))), 1e-12},
		{"eps 0", 1, 0, 1, math.Log(math.Erf(1 / (2 * math.Sqrt2))), 1e-12},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := dp.LogDeltaForGaussian(c.sigma, c.eps, c.dl)
			require.NoError(t, err)
			if math.Abs(got-c.wantLog) > c.tol*math.Max(1, math.Abs(c.wantLog)) {
				t.Errorf("LogDeltaForGaussian(%g, %g, %g) = %.15g, want %.15g", c.sigma, c.eps, c.dl, got, c.wantLog)
			}
		})
	}
}

// logDeltaDirect is ln(Φ(a) − e^ε Φ(b)) in plain double arithmetic, fine
// when δ is not tiny.
func logDeltaDirect(mu, eps float64) float64 {
	phi := func(x float64) float64 { return math.Erfc(-x/math.Sqrt2) / 2 }
	return math.Log(phi(mu/2-eps/mu) - math.Exp(eps)*phi(-mu/2-eps/mu))
}

// logTailDelta is ln δ from Φ(x) ≈ φ(x)/|x|·(1 − 1/x² + 3/x⁴) for x ≪ 0.
func logTailDelta(mu, eps float64) float64 {
	a, b := mu/2-eps/mu, -mu/2-eps/mu
	ser := func(x float64) float64 { x2 := x * x; return (1 - 1/x2 + 3/(x2*x2)) / math.Abs(x) }
	// e^ε φ(b) = φ(a), so δ = φ(a)·(ser(a) − ser(b)).
	return -a*a/2 - 0.5*math.Log(2*math.Pi) + math.Log(ser(a)-ser(b))
}

func TestCalibrationErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	sigmaCases := []struct {
		name             string
		eps, delta, sens float64
		param            string
	}{
		{"eps 0", 0, 1e-5, 1, "Epsilon"},
		{"eps negative", -1, 1e-5, 1, "Epsilon"},
		{"eps NaN", nan, 1e-5, 1, "Epsilon"},
		{"eps Inf", inf, 1e-5, 1, "Epsilon"},
		{"delta 0", 1, 0, 1, "Delta"},
		{"delta 1", 1, 1, 1, "Delta"},
		{"delta NaN", 1, nan, 1, "Delta"},
		{"sensitivity 0", 1, 1e-5, 0, "Sensitivity"},
		{"sensitivity Inf", 1, 1e-5, inf, "Sensitivity"},
	}
	for _, c := range sigmaCases {
		t.Run("sigma/"+c.name, func(t *testing.T) {
			_, err := dp.SigmaForGaussian(c.eps, c.delta, c.sens)
			var pe *dp.ParamError
			if !errors.As(err, &pe) || pe.Param != c.param {
				t.Errorf("SigmaForGaussian(%g, %g, %g) error = %v, want *ParamError for %s", c.eps, c.delta, c.sens, err, c.param)
			}
		})
	}
	deltaCases := []struct {
		name             string
		sigma, eps, sens float64
		param            string
	}{
		{"sigma 0", 0, 1, 1, "Sigma"},
		{"sigma NaN", nan, 1, 1, "Sigma"},
		{"sigma Inf", inf, 1, 1, "Sigma"},
		{"eps negative", 1, -0.1, 1, "Epsilon"},
		{"eps NaN", 1, nan, 1, "Epsilon"},
		{"eps Inf", 1, inf, 1, "Epsilon"},
		{"sensitivity negative", 1, 1, -1, "Sensitivity"},
	}
	for _, c := range deltaCases {
		t.Run("delta/"+c.name, func(t *testing.T) {
			_, err := dp.DeltaForGaussian(c.sigma, c.eps, c.sens)
			var pe *dp.ParamError
			if !errors.As(err, &pe) || pe.Param != c.param {
				t.Errorf("DeltaForGaussian(%g, %g, %g) error = %v, want *ParamError for %s", c.sigma, c.eps, c.sens, err, c.param)
			}
		})
	}
}

// TestSigmaForGaussianRange checks calibration far from the vectors: δ down
// to 1e-300, large sensitivities, and the round trip δ(σ(ε, δ)) = δ.
func TestSigmaForGaussianRange(t *testing.T) {
	for _, eps := range []float64{1e-4, 0.3, 2, 50} {
		for _, delta := range []float64{0.5, 1e-10, 1e-50, 1e-300} {
			for _, sens := range []float64{1e-3, 1, 1e4} {
				t.Run(fmt.Sprintf("eps=%g/delta=%g/sens=%g", eps, delta, sens), func(t *testing.T) {
					s, err := dp.SigmaForGaussian(eps, delta, sens)
					require.NoError(t, err)
					l, err := dp.LogDeltaForGaussian(s, eps, sens)
					require.NoError(t, err)
					// Within 1e-9 relative in δ: σ is a root to ~1e-15 and
					// d ln δ/d ln σ is at most a few hundred here.
					if l > math.Log(delta) || l < math.Log(delta)-1e-9 {
						t.Errorf("ln δ(σ = %.17g) = %.15g, want ln %g = %.15g (just below)", s, l, delta, math.Log(delta))
					}
				})
			}
		}
	}
}
