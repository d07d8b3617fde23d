package optim_test

import (
	"errors"
	"math"
	"testing"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/optim"
)

// TestDefaultRules checks the documented default rules that depend on public
// sizes and the calibrated noise, against their closed forms.
func TestDefaultRules(t *testing.T) {
	t.Run("LSLambda", func(t *testing.T) {
		n, d, k, sigma := 50_000, 784, 10, 12.0
		noise := math.Sqrt(2*float64(d)) * sigma
		pcNoise := noise * math.Sqrt(1+0.2*0.2*float64(k)) // Ĝ_l + α·Ĝ at α = 0.2
		for _, c := range []struct {
			ls   optim.LS
			n    int
			want float64
		}{
			{optim.LS{ClipNorm: 1, Global: true}, n, 0.5 * noise},
			{optim.LS{ClipNorm: 1, PerClass: true}, n, 0.35 * pcNoise},
			{optim.LS{ClipNorm: 1}, n, 0.35 * pcNoise},      // n ≥ 4·K·d: per-class
			{optim.LS{ClipNorm: 1}, 4*k*d - 1, 0.5 * noise}, // fewer: global
			{optim.LS{ClipNorm: 1, Global: true, RidgeScale: 2}, n, 2 * noise},
			{optim.LS{ClipNorm: 1, Ridge: 3}, n, 3},
		} {
			if got := c.ls.Lambda(c.n, d, k, sigma); math.Abs(got-c.want) > 1e-12*c.want {
				t.Errorf("%+v, n = %d: Lambda = %g, want %g", c.ls, c.n, got, c.want)
			}
			if pc := c.ls.UsesPerClass(c.n, d, k); pc != (c.ls.PerClass || (!c.ls.Global && c.n >= 4*k*d)) {
				t.Errorf("%+v, n = %d: UsesPerClass = %t", c.ls, c.n, pc)
			}
		}
		// Without noise the floor 1e-3·n·C²/d applies.
		ls := optim.LS{ClipNorm: 2}
		if got, want := ls.Lambda(n, d, k, 0), 1e-3*float64(n)*4/float64(d); math.Abs(got-want) > 1e-12*want {
			t.Errorf("non-private Lambda = %g, want %g", got, want)
		}
	})
	t.Run("FCStepSize", func(t *testing.T) {
		fc := optim.FC{ClipNorm: 1, GradClipNorm: 1}
		n, k, d := 50_000, 10, 784
		if got := fc.StepSize(n, k, d, 0); got != 20 {
			t.Errorf("non-private StepSize = %g, want 20", got)
		}
		// ρ = σ·√(K·d)/n; η = max(10, 20/(1+4ρ)).
		for _, rho := range []float64{0.01, 0.1, 0.25, 1, 10} {
			sigma := rho * float64(n) / math.Sqrt(float64(k*d))
			want := math.Max(10, 20/(1+4*rho))
			if got := fc.StepSize(n, k, d, sigma); math.Abs(got-want) > 1e-12*want {
				t.Errorf("ρ = %g: StepSize = %g, want %g", rho, got, want)
			}
		}
		fc.LearningRate = 3
		if got := fc.StepSize(n, k, d, 5); got != 3 {
			t.Errorf("StepSize with LearningRate 3 = %g", got)
		}
		fc.LearningRate, fc.Softmax = 0, true
		if got := fc.StepSize(n, k, d, 5); got != 4 {
			t.Errorf("softmax StepSize = %g, want 4", got)
		}
	})
	t.Run("NewtonDefaults", func(t *testing.T) {
		nt := optim.Newton{ClipNorm: 1}
		k, d := 10, 784
		for _, c := range []struct {
			n            int
			rho          float64
			alpha, scale float64
		}{
			{50_000, 0, 0.2, 0.35},    // many rows per class, no noise
			{50_000, 0.15, 0.2, 0.35}, // at the noise threshold
			{50_000, 0.24, 1, 0},      // too noisy
			{4*k*d - 1, 0, 1, 0},      // too few rows per class
		} {
			sigma := c.rho * float64(c.n) / math.Sqrt(float64(k*d))
			a, s := nt.Defaults(c.n, d, k, sigma*(1-1e-12))
			if a != c.alpha || s != c.scale {
				t.Errorf("n = %d, ρ = %g: Defaults = (%g, %g), want (%g, %g)", c.n, c.rho, a, s, c.alpha, c.scale)
			}
		}
		nt.NegWeight, nt.RidgeScale = 0.5, 2
		if a, s := nt.Defaults(50_000, d, k, 0); a != 0.5 || s != 2 {
			t.Errorf("explicit Defaults = (%g, %g), want (0.5, 2)", a, s)
		}
	})
}

// TestLSBothFormsRefused checks that forcing both forms is a parameter error
// that releases nothing.
func TestLSBothFormsRefused(t *testing.T) {
	s := &optim.LS{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, PerClass: true, Global: true}
	_, err := s.Plan(100)
	var pe *accountant.ParamError
	if !errors.As(err, &pe) || pe.Param != "Global" {
		t.Fatalf("Plan with PerClass and Global: err = %v, want a ParamError on Global", err)
	}
}
