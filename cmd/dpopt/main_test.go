package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/accountant"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAccountJSONExact(t *testing.T) {
	code, out, errs := runCLI(t, "account", "--noise-multiplier", "10", "--delta", "1e-5", "--json")
	require.Equal(t, 0, code, errs)
	var got struct {
		Epsilon    float64 `json:"epsilon"`
		Delta      float64 `json:"delta"`
		Accountant string  `json:"accountant"`
		Releases   []struct {
			Z     float64 `json:"noise_multiplier"`
			Q     float64 `json:"sampling_rate"`
			Steps int     `json:"steps"`
		} `json:"releases"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("--json printed more than one line: %q", out)
	}
	// dp_accounting and mpmath agree: σ = 10, one release, δ = 1e-5 → ε = 0.34067 (shared/testdata README).
	if math.Abs(got.Epsilon-0.34067) > 1e-5 || got.Accountant != "exact" || got.Delta != 1e-5 {
		t.Errorf("got %+v, want ε ≈ 0.34067 under exact at δ = 1e-5", got)
	}
	if len(got.Releases) != 1 || got.Releases[0].Z != 10 || got.Releases[0].Q != 1 || got.Releases[0].Steps != 1 {
		t.Errorf("releases = %+v, want one {10, 1, 1}", got.Releases)
	}
}

// Heterogeneous releases compose: one covariance release at z1 and T gradient
// releases at z2 are one Gaussian with μ² = 1/z1² + T/z2².
func TestAccountReleasesCompose(t *testing.T) {
	code, out, errs := runCLI(t, "account", "--release", "z=5", "--release", "z=20,steps=10", "--delta", "1e-6", "--json")
	require.Equal(t, 0, code, errs)
	var got struct{ Epsilon float64 }
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	want, err := accountant.GaussianEpsilon(math.Sqrt(1/25.0+10/400.0), 1e-6)
	require.NoError(t, err)
	if math.Abs(got.Epsilon-want) > 1e-9*want {
		t.Errorf("ε = %.12g, want %.12g", got.Epsilon, want)
	}
}

func TestAccountDeltaQuery(t *testing.T) {
	code, out, errs := runCLI(t, "account", "--noise-multiplier", "2", "--steps", "4", "--epsilon", "1", "--json")
	require.Equal(t, 0, code, errs)
	var got struct{ Epsilon, Delta float64 }
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	want, err := accountant.GaussianDelta(1, 1) // μ = √4/2 = 1
	require.NoError(t, err)
	if got.Epsilon != 1 || math.Abs(got.Delta-want) > 1e-9*want {
		t.Errorf("got ε = %v, δ = %v; want 1, %v", got.Epsilon, got.Delta, want)
	}
}

func TestAccountHumanHasTable(t *testing.T) {
	code, out, errs := runCLI(t, "account", "--noise-multiplier", "3", "--steps", "5", "--delta", "1e-5")
	require.Equal(t, 0, code, errs)
	for _, want := range []string{"exact", "rdp", "every accountant"} {
		if !strings.Contains(out, want) {
			t.Errorf("human output lacks %q:\n%s", want, out)
		}
	}
}

func TestCalibrateNeverOvershoots(t *testing.T) {
	for _, acc := range []string{"exact", "rdp"} {
		t.Run(acc, func(t *testing.T) {
			code, out, errs := runCLI(t, "calibrate", "--epsilon", "2", "--delta", "1e-5", "--steps", "100", "--accountant", acc, "--json")
			require.Equal(t, 0, code, errs)
			var got struct {
				Z          float64 `json:"noise_multiplier"`
				Epsilon    float64 `json:"epsilon"`
				Delta      float64 `json:"delta"`
				Accountant string  `json:"accountant"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &got))
			if got.Epsilon > 2 || got.Epsilon < 2*(1-1e-3) || got.Accountant != acc || got.Delta != 1e-5 {
				t.Errorf("got %+v, want ε in [1.998, 2] under %s", got, acc)
			}
			// The same release through account gives the same ε.
			code, out, errs = runCLI(t, "account", "--noise-multiplier", jsonNum(got.Z), "--steps", "100",
				"--delta", "1e-5", "--accountant", acc, "--json")
			require.Equal(t, 0, code, errs)
			var back struct{ Epsilon float64 }
			require.NoError(t, json.Unmarshal([]byte(out), &back))
			if math.Abs(back.Epsilon-got.Epsilon) > 1e-12 {
				t.Errorf("account gives ε = %v for the calibrated z, calibrate said %v", back.Epsilon, got.Epsilon)
			}
		})
	}
}

func jsonNum(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func TestBadInputExitsTwoWithNothingOnStdout(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"unknown flag", []string{"account", "--bogus"}},
		{"no noise", []string{"account", "--delta", "1e-5"}},
		{"negative noise", []string{"account", "--noise-multiplier", "-1", "--delta", "1e-5"}},
		{"NaN noise", []string{"account", "--noise-multiplier", "NaN", "--delta", "1e-5"}},
		{"zero rate", []string{"account", "--noise-multiplier", "1", "--sampling-rate", "0", "--delta", "1e-5"}},
		{"rate above one", []string{"account", "--noise-multiplier", "1", "--sampling-rate", "1.5", "--delta", "1e-5"}},
		{"zero steps", []string{"account", "--noise-multiplier", "1", "--steps", "0", "--delta", "1e-5"}},
		{"delta one", []string{"account", "--noise-multiplier", "1", "--delta", "1"}},
		{"both queries", []string{"account", "--noise-multiplier", "1", "--delta", "1e-5", "--epsilon", "1"}},
		{"no query", []string{"account", "--noise-multiplier", "1"}},
		{"negative epsilon", []string{"account", "--noise-multiplier", "1", "--epsilon", "-1"}},
		{"exact with sampling", []string{"account", "--noise-multiplier", "1", "--sampling-rate", "0.1", "--delta", "1e-5", "--accountant", "exact"}},
		{"unknown accountant", []string{"account", "--noise-multiplier", "1", "--delta", "1e-5", "--accountant", "magic"}},
		{"release and z", []string{"account", "--release", "z=1", "--noise-multiplier", "1", "--delta", "1e-5"}},
		{"release without z", []string{"account", "--release", "steps=3", "--delta", "1e-5"}},
		{"release bad key", []string{"account", "--release", "z=1,x=3", "--delta", "1e-5"}},
		{"release bad q", []string{"account", "--release", "z=1,q=2", "--delta", "1e-5"}},
		{"calibrate no delta", []string{"calibrate", "--epsilon", "1"}},
		{"calibrate zero epsilon", []string{"calibrate", "--epsilon", "0", "--delta", "1e-5"}},
		{"calibrate inf epsilon", []string{"calibrate", "--epsilon", "+Inf", "--delta", "1e-5"}},
		{"calibrate bad rate", []string{"calibrate", "--epsilon", "1", "--delta", "1e-5", "--sampling-rate", "-0.1"}},
		{"stray argument", []string{"calibrate", "--epsilon", "1", "--delta", "1e-5", "extra"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, c.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, errs)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0 {
				t.Errorf("stderr has more than one line: %q", errs)
			}
		})
	}
}

// An ε that needs a noise multiplier beyond the search range (about 1e14 here) fails with status 1.
func TestCalibrateUnreachable(t *testing.T) {
	code, out, errs := runCLI(t, "calibrate", "--epsilon", "1e-12", "--delta", "1e-15", "--accountant", "exact", "--json")
	if code != 1 || out != "" || !strings.Contains(errs, "unreachable") {
		t.Errorf("got status %d, stdout %q, stderr %q; want 1, nothing, an 'unreachable' line", code, out, errs)
	}
}
