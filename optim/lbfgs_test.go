package optim_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/losses"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

// lbfgsMinimum minimises scale·Σ_i loss_i(W, bias) + (wd/2)‖W‖²_F over W (K×d)
// with gonum's L-BFGS, from W = 0, using the losses package for the value and
// gradient (themselves checked against finite differences in losses/).
func lbfgsMinimum(t *testing.T, d *optim.Data, loss losses.Loss, bias []float64, scale, wd float64) *mat.Dense {
	t.Helper()
	k, dim := d.Classes, d.X.Cols
	var batch losses.Batch
	gw := mat.NewDense(k, dim, nil)
	eval := func(x []float64) (float64, []float64) {
		w := mat.NewDense(k, dim, x)
		require.NoError(t, loss.Eval(&batch, d.X, d.Labels, w, bias, 1))
		require.NoError(t, batch.Grad(gw, nil, 1))
		g := make([]float64, len(x))
		floats.ScaleTo(g, scale, gw.RawMatrix().Data)
		floats.AddScaled(g, wd, x)
		return scale*batch.Loss + wd/2*floats.Dot(x, x), g
	}
	p := optimize.Problem{
		Func: func(x []float64) float64 { f, _ := eval(x); return f },
		Grad: func(g, x []float64) { _, gg := eval(x); copy(g, gg) },
	}
	res, err := optimize.Minimize(p, make([]float64, k*dim),
		&optimize.Settings{GradientThreshold: 1e-10, MajorIterations: 10000}, &optimize.LBFGS{})
	// A line search that fails at the floating-point floor is not a failure
	// when the gradient is already tiny: check the gradient itself. With the
	// objective wd-strongly convex, ‖x − x*‖ ≤ ‖∇f(x)‖/wd, so a gradient of
	// 1e-7 puts L-BFGS within 2e-7 of the minimiser at wd = 0.5.
	_, g := eval(res.X)
	if gn := floats.Norm(g, 2); err != nil && gn > 1e-7 {
		t.Fatalf("L-BFGS: %v (gradient norm %.3g)", err, gn)
	}
	return mat.NewDense(k, dim, res.X)
}

// Non-private full-batch solvers must converge to the minimum that gonum's
// L-BFGS finds for the objective they document, on a small, well-conditioned
// problem whose features are inside the clip norm and whose per-example
// gradients are below the gradient clip (so clipping is the identity).
func TestNonPrivateSolversReachLBFGSMinimum(t *testing.T) {
	data := optimtest.Synthetic(120, 6, 3, 7)
	inf := optim.Privacy{Epsilon: math.Inf(1)}
	const wd = 0.5 // strong convexity makes the minimiser unique and convergence fast
	cases := []struct {
		name   string
		solver optim.Solver
		loss   losses.Loss
		bias   []float64
		scale  float64 // objective = scale·Σ loss + wd/2‖W‖²
		wd     float64
		tol    float64 // relative ‖W − W*‖/‖W*‖
	}{
		{
			// FC minimises Σ loss + (WeightDecay/2)‖W‖² with the bias fixed at −10.
			name:   "FC",
			solver: &optim.FC{Privacy: inf, ClipNorm: 10, GradClipNorm: 1e6, Steps: 2000, LearningRate: 4, Ridge: 1e-9, WeightDecay: wd},
			loss:   losses.Sigmoid{FixedBias: losses.PaperFixedBias}, bias: nil, scale: 1, wd: wd,
			tol: 1e-6, // P = G overestimates the curvature at bias −10, so steps are short: 2000 of them
		},
		{
			// Newton minimises Σ loss + (WeightDecay/2)‖W‖², no bias; NegWeight 1
			// pins the loss (the default α depends on the shape).
			name:   "Newton",
			solver: &optim.Newton{Privacy: inf, ClipNorm: 10, Steps: 30, Ridge: 1e-12, WeightDecay: wd, NegWeight: 1},
			loss:   losses.Sigmoid{}, bias: nil, scale: 1, wd: wd,
			tol: 1e-6,
		},
		{
			// Full-batch DP-GD minimises (1/n)Σ loss + (L2/2)‖W‖² (softmax, no bias).
			name:   "SGD full batch",
			solver: &optim.SGD{Privacy: inf, Steps: 4000, BatchSize: 120, GradClipNorm: 1e6, LearningRate: 2, L2: 0.05},
			loss:   losses.Softmax{}, bias: nil, scale: 1.0 / 120, wd: 0.05,
			tol: 1e-5, // plain gradient descent: linear convergence, 4000 steps
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.solver.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
			require.NoError(t, err)
			want := lbfgsMinimum(t, data, c.loss, c.bias, c.scale, c.wd)
			diff := mat.NewDense(data.Classes, data.X.Cols, nil)
			diff.Sub(res.Model.W, want)
			rel := mat.Norm(diff, 2) / mat.Norm(want, 2)
			_, gSolver := objectiveGrad(t, data, c.loss, c.scale, c.wd, res.Model.W)
			t.Logf("relative distance %.3g, solver's gradient norm %.3g", rel, gSolver)
			if !(rel <= c.tol) {
				t.Errorf("‖W − W_LBFGS‖/‖W_LBFGS‖ = %.3g, want ≤ %.0e", rel, c.tol)
			}
		})
	}
}

func objectiveGrad(t *testing.T, d *optim.Data, loss losses.Loss, scale, wd float64, w *mat.Dense) (float64, float64) {
	var batch losses.Batch
	require.NoError(t, loss.Eval(&batch, d.X, d.Labels, w, nil, 1))
	g := mat.NewDense(d.Classes, d.X.Cols, nil)
	require.NoError(t, batch.Grad(g, nil, 1))
	g.Scale(scale, g)
	var reg mat.Dense
	reg.Scale(wd, w)
	g.Add(g, &reg)
	return batch.Loss, mat.Norm(g, 2)
}
