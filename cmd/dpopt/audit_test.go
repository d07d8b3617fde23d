package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type auditJSON struct {
	Mechanism    string  `json:"mechanism"`
	Break        string  `json:"break"`
	Statistic    string  `json:"statistic"`
	Epsilon      float64 `json:"epsilon"`
	Delta        float64 `json:"delta"`
	Trials       int     `json:"trials"`
	Confidence   float64 `json:"confidence"`
	EpsilonLower float64 `json:"epsilon_lower"`
	Exceeds      bool    `json:"exceeds_claim"`
	FPR          float64 `json:"fpr"`
	FNR          float64 `json:"fnr"`
	FPRUpper     float64 `json:"fpr_upper"`
	FNRUpper     float64 `json:"fnr_upper"`
}

func runAuditJSON(t *testing.T, args ...string) auditJSON {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"audit", "--json"}, args...)...)
	require.Equal(t, 0, code, errs)
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("--json printed more than one line: %q", out)
	}
	var got auditJSON
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	return got
}

// TestAuditCorrect audits each correct mechanism at 99.9% confidence: each
// bound exceeds the claimed ε with probability at most 1e-3 for a new seed
// (3e-3 in all); seed 1 is deterministic.
func TestAuditCorrect(t *testing.T) {
	for _, m := range []string{"gaussian", "gram", "step"} {
		got := runAuditJSON(t, "--mechanism", m, "--trials", "20000", "--confidence", "0.999")
		if got.Mechanism != m || got.Break != "none" || got.Statistic != "projection" ||
			got.Epsilon != 2 || got.Delta != 1e-5 || got.Trials != 20000 || got.Confidence != 0.999 {
			t.Errorf("%s: echoed settings %+v", m, got)
		}
		if got.Exceeds || got.EpsilonLower > got.Epsilon || got.EpsilonLower <= 0 {
			t.Errorf("%s: lower bound %v, want in (0, %v]", m, got.EpsilonLower, got.Epsilon)
		}
		if got.FPRUpper < got.FPR || got.FNRUpper < got.FNR {
			t.Errorf("%s: upper bounds below the rates: %+v", m, got)
		}
	}
}

// TestAuditBreaks wants each planted bug caught (power checks, deterministic
// at the default seed; measured margins in audit's TestBrokenCaught).
func TestAuditBreaks(t *testing.T) {
	for _, tc := range []struct {
		mech, brk, trials, stat string
	}{
		{"step", "half-noise", "100000", "projection"},
		{"gram", "no-clip", "10000", "projection"},
		{"gaussian", "reuse-noise", "10000", "difference"}, // auto picks difference
	} {
		got := runAuditJSON(t, "--mechanism", tc.mech, "--break", tc.brk, "--trials", tc.trials, "--epsilon", "2")
		if !got.Exceeds || got.EpsilonLower <= 2 || got.Statistic != tc.stat {
			t.Errorf("%s --break %s: lower bound %v with %s, want > 2 with %s", tc.mech, tc.brk, got.EpsilonLower, got.Statistic, tc.stat)
		}
	}
}

func TestAuditText(t *testing.T) {
	code, out, errs := runCLI(t, "audit", "--mechanism", "gram", "--trials", "2000", "--epsilon", "1", "--delta", "1e-6")
	require.Equal(t, 0, code, errs)
	for _, want := range []string{"claimed ε = 1 at δ = 1e-06", "lower bound ε ≥", "95% confidence", "FPR = ", "FNR = ", "GDP estimate"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if errs != "" {
		t.Errorf("stderr = %q, want empty", errs)
	}
}

func TestAuditBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--mechanism", "laplace"},
		{"--mechanism", "gaussian", "--epsilon", "0"},
		{"--mechanism", "gaussian", "--epsilon", "NaN"},
		{"--mechanism", "gaussian", "--epsilon", "Inf"},
		{"--mechanism", "gaussian", "--delta", "1"},
		{"--mechanism", "gaussian", "--delta", "-1e-5"},
		{"--mechanism", "gaussian", "--trials", "10"},
		{"--mechanism", "gaussian", "--trials", "1000000000"},
		{"--mechanism", "gaussian", "--trials", "many"},
		{"--mechanism", "gaussian", "--confidence", "1"},
		{"--mechanism", "gaussian", "--break", "half"},
		{"--mechanism", "gaussian", "--statistic", "max"},
		{"--mechanism", "gaussian", "--seed", "-1"},
		{"--mechanism", "gaussian", "extra"},
		{"--mechanism", "gaussian", "--no-such-flag"},
	} {
		code, out, errs := runCLI(t, append([]string{"audit"}, args...)...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "dpopt: ") || strings.Count(errs, "\n") != 1 {
			t.Errorf("audit %q: code %d, stdout %q, stderr %q; want 2, nothing, one line", args, code, out, errs)
		}
	}
}
