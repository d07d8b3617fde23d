package optim_test

import (
	"testing"

	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

// TestConformance runs the optimtest suite on every solver, on the suite's
// default synthetic data (240 rows, d = 8, K = 3) at (ε, δ) = (1, 1e-5).
func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		cfg  optimtest.Config
	}{
		{"LS", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver { return &optim.LS{Privacy: p, ClipNorm: 1, Global: true} },
			// Gram: one draw per entry of the upper triangle; class sums: d·K.
			Draws: func(n, d, k int) int { return d*(d+1)/2 + d*k },
			Exact: exactLS(1, 0, false, 0),
		}},
		{"LS/PerClass", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.LS{Privacy: p, ClipNorm: 1, PerClass: true, NegWeight: 0.5}
			},
			// K per-class Grams, each its upper triangle; class sums: d·K.
			Draws: func(n, d, k int) int { return k*d*(d+1)/2 + d*k },
			Exact: exactLS(1, 0, true, 0.5),
		}},
		{"LS/ClippedRidgeRDP", optimtest.Config{
			// Clipping active (rows have norm 1 > C), an explicit ridge, and
			// the RDP accountant in place of the default exact one.
			New: func(p optim.Privacy) optim.Solver {
				p.Accountant = rdp
				return &optim.LS{Privacy: p, ClipNorm: 0.5, Ridge: 3, Global: true}
			},
			Accountant: rdp,
			Draws:      func(n, d, k int) int { return d*(d+1)/2 + d*k },
			Exact:      exactLS(0.5, 3, false, 0),
		}},
		{"FC", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.FC{Privacy: p, ClipNorm: 1, GradClipNorm: 1, Steps: 3}
			},
			// One Gram (upper triangle), then K·d fresh draws per step.
			Draws: func(n, d, k int) int { return d*(d+1)/2 + 3*k*d },
		}},
		{"FC/Softmax", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.FC{Privacy: p, ClipNorm: 1, GradClipNorm: 1, Steps: 2, Softmax: true}
			},
			Draws: func(n, d, k int) int { return d*(d+1)/2 + 2*k*d },
		}},
		{"Newton", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.Newton{Privacy: p, ClipNorm: 1, Steps: 2}
			},
			// Per step: K·d for the gradients, d(d+1)/2 for each of the K Hessians.
			Draws: func(n, d, k int) int { return 2 * (k*d*(d+1)/2 + k*d) },
		}},
		{"SGD/FullBatch", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.SGD{Privacy: p, Steps: 3, BatchSize: optimtest.DefaultN, GradClipNorm: 1}
			},
			// K·d fresh draws per step.
			Draws: func(n, d, k int) int { return 3 * k * d },
		}},
		{"SGD/Poisson", optimtest.Config{
			// RDP rather than the default PLD: under PLD one Plan or Solve of
			// this 4-step, q = 0.25 run takes 2–3 s, and the suite makes about
			// 30 of them.
			New: func(p optim.Privacy) optim.Solver {
				p.Accountant = rdp
				return &optim.SGD{Privacy: p, Steps: 4, BatchSize: optimtest.DefaultN / 4, GradClipNorm: 1, TrainBias: true}
			},
			Accountant: rdp,
			// K·d weights and K biases per step.
			Draws:   func(n, d, k int) int { return 4 * (k*d + k) },
			Sampled: true,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { optimtest.Run(t, c.cfg) })
	}
}
