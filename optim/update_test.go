package optim

import (
	"errors"
	"math"
	"testing"

	"github.com/dpopt/dpopt/accountant"
)

// TestOptimizerFirstSteps checks each update rule against its formula on two
// steps with hand-computed values.
func TestOptimizerFirstSteps(t *testing.T) {
	g1, g2 := []float64{2, -4}, []float64{1, 1}
	const lr = 0.5
	adam := func(b1, b2, eps float64) []float64 { // two Adam steps, written out
		p := []float64{0, 0}
		for i := range p {
			m1, v1 := (1-b1)*g1[i], (1-b2)*g1[i]*g1[i]
			p[i] -= lr * (m1 / (1 - b1)) / (math.Sqrt(v1/(1-b2)) + eps)
			m2, v2 := b1*m1+(1-b1)*g2[i], b2*v1+(1-b2)*g2[i]*g2[i]
			p[i] -= lr * (m2 / (1 - b1*b1)) / (math.Sqrt(v2/(1-b2*b2)) + eps)
		}
		return p
	}
	tests := []struct {
		name string
		opt  Optimizer
		want []float64
	}{
		{"plain", Plain{}, []float64{-lr * 3, -lr * -3}},
		// v1 = 0.1·g1, v2 = 0.9·v1 + 0.1·g2.
		{"momentum default", Momentum{}, []float64{-lr * (0.2 + 0.18 + 0.1), -lr * (-0.4 - 0.36 + 0.1)}},
		{"momentum 0.5", Momentum{Beta: 0.5}, []float64{-lr * (1 + 0.5 + 0.5), -lr * (-2 - 1 + 0.5)}},
		{"adam default", Adam{}, adam(0.9, 0.999, 1e-8)},
		{"adam custom", Adam{Beta1: 0.5, Beta2: 0.9, Epsilon: 0.1}, adam(0.5, 0.9, 0.1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opt.validate(); err != nil {
				t.Fatal(err)
			}
			p := []float64{0, 0}
			u := tc.opt.start(2)
			u.update(p, g1, lr)
			u.update(p, g2, lr)
			for i := range p {
				// Same operations in another order: a few ulps.
				if math.Abs(p[i]-tc.want[i]) > 1e-12 {
					t.Errorf("%s: params[%d] = %v, want %v", tc.opt.Name(), i, p[i], tc.want[i])
				}
			}
		})
	}
}

// TestAdamFirstStepIsLR checks the bias correction: Adam's first step is
// lr·sign(g) (up to ϵ) whatever the gradient's scale.
func TestAdamFirstStepIsLR(t *testing.T) {
	for _, scale := range []float64{1e-6, 1, 1e6} {
		p := []float64{0, 0}
		Adam{}.start(2).update(p, []float64{scale, -scale}, 0.1)
		// ϵ = 1e-8 shifts the step by at most 0.1·1e-8/scale relative.
		if math.Abs(p[0]+0.1) > 1e-3 || math.Abs(p[1]-0.1) > 1e-3 {
			t.Errorf("scale %g: first step %v, want [-0.1 0.1]", scale, p)
		}
	}
}

// TestOptimizersConverge runs each optimizer on the quadratic ½‖θ − c‖².
func TestOptimizersConverge(t *testing.T) {
	c := []float64{1, -2, 3}
	for _, opt := range []Optimizer{Plain{}, Momentum{}, Adam{}} {
		t.Run(opt.Name(), func(t *testing.T) {
			p, g := make([]float64, 3), make([]float64, 3)
			u := opt.start(3)
			for k := range 3000 {
				for i := range p {
					g[i] = p[i] - c[i]
				}
				lr := 0.1 * Cosine.Factor(k, 3000)
				u.update(p, g, lr)
			}
			for i := range p {
				// Linear convergence for Plain and Momentum; Adam's decayed steps end within 1e-3.
				if math.Abs(p[i]-c[i]) > 1e-3 {
					t.Errorf("θ[%d] = %v, want %v", i, p[i], c[i])
				}
			}
		})
	}
}

func TestOptimizerValidate(t *testing.T) {
	tests := []struct {
		name string
		opt  Optimizer
	}{
		{"momentum beta 1", Momentum{Beta: 1}},
		{"momentum beta negative", Momentum{Beta: -0.1}},
		{"momentum beta NaN", Momentum{Beta: math.NaN()}},
		{"adam beta1 1", Adam{Beta1: 1}},
		{"adam beta2 NaN", Adam{Beta2: math.NaN()}},
		{"adam epsilon negative", Adam{Epsilon: -1}},
		{"adam epsilon Inf", Adam{Epsilon: math.Inf(1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pe *accountant.ParamError
			if err := tc.opt.validate(); !errors.As(err, &pe) {
				t.Errorf("validate() = %v, want *accountant.ParamError", err)
			}
		})
	}
}
