package accountant

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// PLD calibration searches with the pilot pass, then refines with the full
// accountant: the answer must still never overshoot and be within 0.1 %.
func TestCalibratePLDPilotThenRefine(t *testing.T) {
	if testing.Short() {
		t.Skip("several PLD calibrations")
	}
	cases := []struct {
		name       string
		q          float64
		steps      int
		eps, delta float64
	}{
		{"mnist eps 1", 256.0 / 60000, 10000, 1, 1e-5},
		{"imagenet eps 8", 4096.0 / 1281167, 3000, 8, 8e-7},
		{"small eps", 1e-3, 1000, 0.1, 1e-6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := PoissonSteps(c.q, c.steps)
			z, err := Calibrate(PLD{}, b, c.eps, c.delta)
			require.NoError(t, err)
			e, _ := b(z)
			got, err := PLD{}.Epsilon(e, c.delta)
			require.NoError(t, err)
			if got > c.eps {
				t.Errorf("ε(z*) = %.9g > target %g", got, c.eps)
			}
			e2, _ := b(z * (1 - 1e-3))
			lower, err := PLD{}.Epsilon(e2, c.delta)
			require.NoError(t, err)
			if lower <= c.eps {
				t.Errorf("ε(z*·(1−1e-3)) = %.9g ≤ target %g: z* is not within 0.1 %% of the smallest", lower, c.eps)
			}
			// The pilot pass is a valid, looser upper bound.
			pilot, err := PLD{pilot: true}.Epsilon(e, c.delta)
			require.NoError(t, err)
			if pilot < got {
				t.Errorf("pilot ε %.9g below the full ε %.9g", pilot, got)
			}
		})
	}
}
