package dp_test

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
)

// TestSensitivities checks the design table (add/remove) and that
// replace-one doubles every entry.
func TestSensitivities(t *testing.T) {
	const c, k, alpha = 1.5, 9, 3.0
	cases := []struct {
		name string
		f    func(dp.Adjacency) (float64, error)
		want float64 // add/remove
	}{
		{"gram", func(a dp.Adjacency) (float64, error) { return dp.GramSensitivity(c, a) }, c * c},
		{"class sums", func(a dp.Adjacency) (float64, error) { return dp.SumSensitivity(c, a) }, c},
		{"gradient sum", func(a dp.Adjacency) (float64, error) { return dp.GradientSumSensitivity(c, a) }, c},
		{"ova hessians", func(a dp.Adjacency) (float64, error) { return dp.OneVsAllHessianSensitivity(c, k, 1, a) }, 3 * c * c / 4},
		{"ova hessians α<1", func(a dp.Adjacency) (float64, error) { return dp.OneVsAllHessianSensitivity(c, k, 0.5, a) }, 3 * c * c / 4},
		{"ova hessians α>1", func(a dp.Adjacency) (float64, error) { return dp.OneVsAllHessianSensitivity(c, k, alpha, a) }, 3 * alpha * c * c / 4},
		{"ova gradients", func(a dp.Adjacency) (float64, error) { return dp.OneVsAllGradientSensitivity(c, k, 1, a) }, 3 * c},
		{"ova gradients α>1", func(a dp.Adjacency) (float64, error) { return dp.OneVsAllGradientSensitivity(c, k, alpha, a) }, 3 * alpha * c},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f(dp.AddRemove)
			require.NoError(t, err)
			if math.Abs(got-tc.want) > 1e-15*tc.want {
				t.Errorf("add/remove: got %v, want %v", got, tc.want)
			}
			got, err = tc.f(dp.ReplaceOne)
			require.NoError(t, err)
			if math.Abs(got-2*tc.want) > 1e-15*tc.want {
				t.Errorf("replace-one: got %v, want %v", got, 2*tc.want)
			}
			_, err = tc.f(dp.Adjacency(7))
			var pe *dp.ParamError
			if !errors.As(err, &pe) || pe.Param != "Adjacency" {
				t.Errorf("invalid adjacency: error %v, want *ParamError for Adjacency", err)
			}
		})
	}
	bad := []struct {
		name string
		call func() (float64, error)
	}{
		{"gram clip 0", func() (float64, error) { return dp.GramSensitivity(0, dp.AddRemove) }},
		{"gram clip overflow", func() (float64, error) { return dp.GramSensitivity(1e200, dp.AddRemove) }},
		{"sum clip NaN", func() (float64, error) { return dp.SumSensitivity(math.NaN(), dp.AddRemove) }},
		{"gradient clip Inf", func() (float64, error) { return dp.GradientSumSensitivity(math.Inf(1), dp.ReplaceOne) }},
		{"classes 0", func() (float64, error) { return dp.OneVsAllHessianSensitivity(1, 0, 1, dp.AddRemove) }},
		{"neg weight 0", func() (float64, error) { return dp.OneVsAllGradientSensitivity(1, 3, 0, dp.AddRemove) }},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := b.call()
			var pe *dp.ParamError
			if !errors.As(err, &pe) {
				t.Errorf("error = %v, want *ParamError", err)
			}
		})
	}
	if dp.AddRemove != accountant.AddRemove || dp.ReplaceOne.String() != "replace_one" {
		t.Error("dp.Adjacency is not accountant.Adjacency")
	}
}
