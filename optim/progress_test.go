package optim_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/optim"
)

// TestProgress checks, for every solver, that the progress callback sees the
// documented stages in order, each starting at 0, never going back and
// ending at its total, and that watching progress does not change the model.
func TestProgress(t *testing.T) {
	x, y, _, _, err := digits.Split()
	require.NoError(t, err)
	data := &optim.Data{X: x, Labels: y, Classes: 10}
	path := filepath.Join(t.TempDir(), "digits.npz")
	require.NoError(t, features.WriteNPZ(path, x, y))
	n, k := x.Rows, data.Classes
	const block = 256 // several blocks per pass: per-block reports
	stream := func(n int) *optim.StreamData {
		sd := optim.FileData(path, features.Options{Classes: k})
		sd.BlockRows, sd.N = block, n
		return sd
	}
	p := optim.Privacy{Epsilon: 1, Delta: 1e-5}
	ls := &optim.LS{Privacy: p, ClipNorm: 1}
	perClass := &optim.LS{Privacy: p, ClipNorm: 1, PerClass: true}
	fc := &optim.FC{Privacy: p, ClipNorm: 1, GradClipNorm: 1, Steps: 3}
	solve := func(s optim.Solver) func(context.Context) (*optim.Result, error) {
		return func(ctx context.Context) (*optim.Result, error) {
			return s.Solve(ctx, data, nil, dp.NewSeededSource(1))
		}
	}
	solveStream := func(s optim.StreamSolver, n int) func(context.Context) (*optim.Result, error) {
		return func(ctx context.Context) (*optim.Result, error) {
			return s.SolveStream(ctx, stream(n), nil, dp.NewSeededSource(1))
		}
	}
	type stage struct {
		name  string
		total int
	}
	for _, tc := range []struct {
		name   string
		run    func(context.Context) (*optim.Result, error)
		stages []stage
		blocks bool // the row passes report every block
	}{
		{"ls", solve(ls), []stage{{"statistics", n}, {"solve", 1}}, false},
		{"ls/per-class", solve(perClass), []stage{{"statistics", n}, {"solve", k}}, false},
		{"ls/stream", solveStream(ls, 0), []stage{{"statistics", n}, {"solve", 1}}, true},
		{"ls/stream/per-class", solveStream(perClass, n), []stage{{"statistics", n}, {"solve", k}}, true},
		{"fc", solve(fc), []stage{{"gram", n}, {"preconditioner", 1}, {"steps", 3}}, false},
		{"fc/stream", solveStream(fc, 0), []stage{{"gram", n}, {"preconditioner", 1}, {"steps", 3}}, true},
		{"sgd", solve(&optim.SGD{Privacy: p, Steps: 20, BatchSize: n, GradClipNorm: 1}), []stage{{"steps", 20}}, false},
		{"newton", solve(&optim.Newton{Privacy: p, ClipNorm: 1, Steps: 2}), []stage{{"hessians", 2 * k}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []optim.Progress
			ctx := optim.WithProgress(context.Background(), func(p optim.Progress) { got = append(got, p) })
			res, err := tc.run(ctx)
			require.NoError(t, err)
			var names []string
			for i, p := range got {
				if i == 0 || p.Stage != got[i-1].Stage {
					names = append(names, p.Stage)
					if p.Done != 0 {
						t.Errorf("stage %q starts at %d, want 0", p.Stage, p.Done)
					}
					continue
				}
				prev := got[i-1]
				if p.Done < prev.Done {
					t.Errorf("stage %q goes back from %d to %d", p.Stage, prev.Done, p.Done)
				}
				if prev.Total != 0 && p.Total != prev.Total {
					t.Errorf("stage %q changes its total from %d to %d", p.Stage, prev.Total, p.Total)
				}
			}
			var want []string
			for _, s := range tc.stages {
				want = append(want, s.name)
			}
			require.Equal(t, want, names, "stages")
			for _, s := range tc.stages {
				var reports []optim.Progress
				for _, p := range got {
					if p.Stage == s.name {
						reports = append(reports, p)
					}
				}
				last := reports[len(reports)-1]
				if last.Done != s.total || last.Total != s.total {
					t.Errorf("stage %q ends at %d of %d, want %d of %d", s.name, last.Done, last.Total, s.total, s.total)
				}
				if tc.blocks && (s.name == "statistics" || s.name == "gram") {
					if want := (n+block-1)/block + 1; len(reports) != want {
						t.Errorf("stage %q: %d reports, want %d (start and one per block)", s.name, len(reports), want)
					}
				}
			}

			// The same run without a callback gives the same model, bit for bit.
			plain, err := tc.run(context.Background())
			require.NoError(t, err)
			if !mat.Equal(plain.Model.W, res.Model.W) || !slices.Equal(plain.Model.Bias, res.Model.Bias) {
				t.Error("the model depends on whether progress is watched")
			}
		})
	}
}
