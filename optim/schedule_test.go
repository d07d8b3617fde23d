package optim

import (
	"errors"
	"math"
	"testing"

	"github.com/dpopt/dpopt/accountant"
)

func TestScheduleFactor(t *testing.T) {
	const steps = 4
	tests := []struct {
		name string
		s    Schedule
		want [steps]float64
	}{
		{"constant", Constant, [steps]float64{1, 1, 1, 1}},
		{"cosine", Cosine, [steps]float64{1, (1 + math.Sqrt2/2) / 2, 0.5, (1 - math.Sqrt2/2) / 2}},
		{"linear", Linear, [steps]float64{1, 0.75, 0.5, 0.25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.String(); got != tc.name {
				t.Errorf("String() = %q, want %q", got, tc.name)
			}
			if err := tc.s.validate(); err != nil {
				t.Errorf("validate() = %v", err)
			}
			for i, want := range tc.want {
				// Closed forms; 1e-15 absorbs the rounding of cos.
				if got := tc.s.Factor(i, steps); math.Abs(got-want) > 1e-15 {
					t.Errorf("Factor(%d, %d) = %v, want %v", i, steps, got, want)
				}
			}
			if got := tc.s.Factor(steps, steps); got != 1 {
				t.Errorf("Factor out of range = %v, want 1", got)
			}
		})
	}
	for _, bad := range []Schedule{-1, Linear + 1} {
		var pe *accountant.ParamError
		if err := bad.validate(); !errors.As(err, &pe) {
			t.Errorf("Schedule(%d).validate() = %v, want *accountant.ParamError", int(bad), err)
		}
	}
}
