package optim_test

import (
	"testing"

	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

// LS and FC with quantised rows pass the conformance suite: quantisation
// changes neither the releases nor the noise draws. (The closed form of the
// suite's exactness check is that of the unquantised rows, so it is left
// out; TestQuantizeAccuracy and the linalg tests cover the values.)
func TestQuantizeConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  optimtest.Config
	}{
		{"LS", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.LS{Privacy: p, ClipNorm: 1, Quantize: 16, Global: true}
			},
			Draws: func(n, d, k int) int { return d*(d+1)/2 + d*k },
		}},
		{"LS/PerClass", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.LS{Privacy: p, ClipNorm: 1, PerClass: true, Quantize: 16}
			},
			Draws: func(n, d, k int) int { return k*d*(d+1)/2 + d*k },
		}},
		{"FC", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.FC{Privacy: p, ClipNorm: 1, GradClipNorm: 1, Steps: 3, Quantize: 16}
			},
			Draws: func(n, d, k int) int { return d*(d+1)/2 + 3*k*d },
		}},
	} {
		t.Run(c.name, func(t *testing.T) { optimtest.Run(t, c.cfg) })
	}
}
