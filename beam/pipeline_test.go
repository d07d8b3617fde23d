package dpbeam

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/direct"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
)

func TestMain(m *testing.M) {
	beam.Init()
	os.Exit(m.Run())
}

// runners are the local runners the pipelines are tested on.
var runners = map[string]func(ctx context.Context, p *beam.Pipeline) error{
	"prism": func(ctx context.Context, p *beam.Pipeline) error {
		_, err := prism.Execute(ctx, p)
		return err
	},
	"direct": func(ctx context.Context, p *beam.Pipeline) error {
		_, err := direct.Execute(ctx, p)
		return err
	},
}

// writeShards writes x, y as shards of the given sizes in format ("npz" or
// "tfrecord") and returns the glob that matches them.
func writeShards(t *testing.T, x *linalg.Matrix32, y []int, sizes []int, format string) string {
	t.Helper()
	dir := t.TempDir()
	i0 := 0
	for s, m := range sizes {
		xs, ys := x.Slice(i0, i0+m), y[i0:i0+m]
		i0 += m
		var err error
		switch format {
		case "npz":
			err = features.WriteNPZ(filepath.Join(dir, fmt.Sprintf("train-%05d.npz", s)), xs, ys)
		case "tfrecord":
			err = features.WriteTFRecord(filepath.Join(dir, fmt.Sprintf("train.tfr-%05d-of-%05d", s, len(sizes))), xs, ys)
		}
		require.NoError(t, err)
	}
	require.Equal(t, x.Rows, i0)
	if format == "npz" {
		return filepath.Join(dir, "train-*.npz")
	}
	return filepath.Join(dir, "train.tfr-*")
}

// referenceBlocks reads the files as the sources do, in memory.
func referenceBlocks(t *testing.T, pattern string, rows int) []Block {
	t.Helper()
	files, err := filepath.Glob(pattern)
	require.NoError(t, err)
	var all []Block
	for _, f := range files {
		s, err := features.Open(f, features.Options{})
		require.NoError(t, err)
		b, err := ReadBlocks(s, f, rows)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		all = append(all, b...)
	}
	return all
}

func filePipeline(t *testing.T, run func(context.Context, *beam.Pipeline) error, pattern string, rows int) *Pipeline {
	return &Pipeline{
		Source: func(s beam.Scope) (beam.PCollection, error) {
			return ReadFiles(s, pattern, features.Options{}, rows)
		},
		Run:     run,
		TempDir: t.TempDir(),
	}
}

// The Beam statistics of sharded files equal the in-memory ones, bit for
// bit, on each runner and format.
func TestPipelineStatsSharded(t *testing.T) {
	const n, d, k, rows, c = 6000, 16, 5, 700, 2.0
	x, y := synthetic(n, d, k, 11)
	for _, format := range []string{"npz", "tfrecord"} {
		pattern := writeShards(t, x, y, []int{1500, 2200, 37, 2263}, format)
		want, err := StatsOf(referenceBlocks(t, pattern, rows), Rows{ClipNorm: c}, k)
		require.NoError(t, err)
		for name, run := range runners {
			t.Run(format+"/"+name, func(t *testing.T) {
				got, err := filePipeline(t, run, pattern, rows).Stats(context.Background(), Rows{ClipNorm: c}, k)
				require.NoError(t, err)
				if encoded(t, got) != encoded(t, want) {
					t.Fatal("Beam statistics differ from the in-memory statistics")
				}
			})
		}
	}
}

// ledgerReleases lists a ledger's entries as label and event.
func ledgerReleases(l *accountant.Ledger) []string {
	var out []string
	for _, e := range l.Entries() {
		out = append(out, fmt.Sprintf("%s %#v", e.Label, e.Event))
	}
	return out
}

func maxAbsDiff(a, b *mat.Dense) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, math.Inf(1))
}

// solveCase compares a Beam driver with the in-memory core solver on the
// same rows, with the same seed, and the ledgers they fill.
func solveCase(t *testing.T, x *linalg.Matrix32, y []int, k int, p *Pipeline, eps float64) {
	ctx := context.Background()
	data := &optim.Data{X: x, Labels: y, Classes: k}
	priv := optim.Privacy{Epsilon: eps, Delta: 1e-5}
	budget := func() *accountant.Ledger {
		if math.IsInf(eps, 1) {
			return nil
		}
		acc, err := accountant.AccountantByName("exact")
		require.NoError(t, err)
		l, err := accountant.NewLedger(accountant.Budget{Epsilon: eps, Delta: 1e-5}, acc)
		require.NoError(t, err)
		return l
	}
	// Tolerance 1e-9 on weights of size ~1: the statistics differ from the
	// core's only by its rounding (relative ~1e-15), the noise is the same.
	// The core runs with Float64 set: exact products, as the Beam workers.
	t.Run("LS", func(t *testing.T) {
		s := &optim.LS{Privacy: priv, ClipNorm: 1, Global: true, Float64: true}
		lw, lg := budget(), budget()
		want, err := s.Solve(ctx, data, lw, dp.NewSeededSource(9))
		require.NoError(t, err)
		got, err := SolveLS(ctx, s, p, k, lg, dp.NewSeededSource(9))
		require.NoError(t, err)
		if dd := maxAbsDiff(got.Model.W, want.Model.W); dd > 1e-9 {
			t.Errorf("weights differ by %g, want ≤ 1e-9", dd)
		}
		require.Equal(t, want.Report.Releases, got.Report.Releases)
		require.Equal(t, want.Report.Spent, got.Report.Spent)
		if lw != nil {
			require.Equal(t, ledgerReleases(lw), ledgerReleases(lg))
		}
	})
	t.Run("FC", func(t *testing.T) {
		s := &optim.FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1, Steps: 3, Float64: true}
		lw, lg := budget(), budget()
		want, err := s.Solve(ctx, data, lw, dp.NewSeededSource(9))
		require.NoError(t, err)
		got, err := SolveFC(ctx, s, p, k, lg, dp.NewSeededSource(9))
		require.NoError(t, err)
		if dd := maxAbsDiff(got.Model.W, want.Model.W); dd > 1e-9 {
			t.Errorf("weights differ by %g, want ≤ 1e-9", dd)
		}
		require.Equal(t, want.Model.Bias, got.Model.Bias)
		require.Equal(t, want.Report.Releases, got.Report.Releases)
		for i := range want.Report.Steps {
			require.InDelta(t, want.Report.Steps[i].Loss, got.Report.Steps[i].Loss, 1e-12)
		}
		if lw != nil {
			require.Equal(t, ledgerReleases(lw), ledgerReleases(lg))
		}
	})
}

func TestSolveDigits(t *testing.T) {
	x, y, _, _, err := digits.Split()
	require.NoError(t, err)
	pattern := writeShards(t, x, y, []int{x.Rows}, "npz")
	for _, eps := range []float64{math.Inf(1), 1} {
		t.Run(fmt.Sprintf("eps=%g", eps), func(t *testing.T) {
			solveCase(t, x, y, digits.Classes, filePipeline(t, runners["prism"], pattern, 0), eps)
		})
	}
}

func TestSolveSharded(t *testing.T) {
	x, y := synthetic(3000, 12, 4, 21)
	pattern := writeShards(t, x, y, []int{1000, 999, 1001}, "tfrecord")
	solveCase(t, x, y, 4, filePipeline(t, runners["prism"], pattern, 256), 2)
}

// A ledger that cannot afford the run refuses it before any pipeline runs.
func TestSolveOverBudget(t *testing.T) {
	acc, err := accountant.AccountantByName("exact")
	require.NoError(t, err)
	l, err := accountant.NewLedger(accountant.Budget{Epsilon: 0.5, Delta: 1e-5}, acc)
	require.NoError(t, err)
	p := &Pipeline{Source: func(beam.Scope) (beam.PCollection, error) {
		t.Fatal("pipeline built over budget")
		return beam.PCollection{}, nil
	}, Run: runners["direct"], TempDir: t.TempDir()}
	_, err = SolveLS(context.Background(), &optim.LS{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1}, p, 3, l, dp.NewSeededSource(1))
	require.ErrorIs(t, err, accountant.ErrBudgetExceeded)
	require.Empty(t, l.Entries())
}
