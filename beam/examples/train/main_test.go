package main

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/optim"
)

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	os.Exit(m.Run())
}

// DP-LS and DP-FC end to end on digits with the local runners, as the
// command runs them, against the core solvers on the same rows with the
// same seed: the DP-LS model is the core's to the bit (quantised statistics
// are exact whatever the sharding), the DP-FC model agrees to 1e-9 (its
// gradient sums depend on the blocks in the last bits), and the releases
// and ε spent are the core's.
func TestTrainDigits(t *testing.T) {
	x, y, _, _, err := digits.Split()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, features.WriteTFRecord(filepath.Join(dir, "train.tfr-00000-of-00002"), x.Slice(0, 900), y[:900]))
	require.NoError(t, features.WriteTFRecord(filepath.Join(dir, "train.tfr-00001-of-00002"), x.Slice(900, x.Rows), y[900:]))
	data := &optim.Data{X: x, Labels: y, Classes: digits.Classes}
	const eps, del, bits, nSteps = 2.0, 1e-6, 16, 3
	priv := optim.Privacy{Epsilon: eps, Delta: del}
	core := map[string]optim.Solver{
		"ls": &optim.LS{Privacy: priv, ClipNorm: 1, Quantize: bits, Global: true},
		// Float64: the Beam workers compute exact products (see dpbeam).
		"fc": &optim.FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1, Steps: nSteps, Quantize: bits, Float64: true},
	}
	defer func(r string) { *runners.Runner = r }(*runners.Runner)
	for _, c := range []struct{ method, runner string }{{"ls", "prism"}, {"ls", "direct"}, {"fc", "prism"}} {
		t.Run(c.method+"/"+c.runner, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model.json")
			*input, *classes, *method, *epsilon, *delta, *steps, *quantize, *seed, *output, *tempDir, *runners.Runner =
				filepath.Join(dir, "train.tfr-*"), digits.Classes, c.method, eps, del, nSteps, bits, 1, out, t.TempDir(), c.runner
			require.NoError(t, run(context.Background()))
			var got struct {
				W      [][]float64
				Bias   []float64
				Report optim.Report
			}
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &got))

			want, err := core[c.method].Solve(context.Background(), data, nil, dp.NewSeededSource(1))
			require.NoError(t, err)
			require.Len(t, got.W, digits.Classes)
			for i := range got.W {
				row := want.Model.W.RawRowView(i)
				for j, v := range got.W[i] {
					switch {
					case c.method == "ls" && math.Float64bits(v) != math.Float64bits(row[j]):
						t.Fatalf("W(%d, %d) = %v, core %v: want the same bits", i, j, v, row[j])
					case math.Abs(v-row[j]) > 1e-9:
						t.Fatalf("W(%d, %d) = %v, core %v: want within 1e-9", i, j, v, row[j])
					}
				}
			}
			require.Equal(t, want.Model.Bias, got.Bias)
			require.Equal(t, want.Report.Releases, got.Report.Releases)
			require.Equal(t, want.Report.Spent, got.Report.Spent)
			require.LessOrEqual(t, got.Report.Spent, eps)
			require.Equal(t, x.Rows, got.Report.N)
		})
	}
}

// A runner left out of the build is an error that names its build tag.
func TestTrainRunnerTag(t *testing.T) {
	if builtIn["dataflow"] {
		t.Skip("built with -tags dataflow")
	}
	defer func(r string) { *runners.Runner = r }(*runners.Runner)
	*input, *classes, *runners.Runner = "unused", 10, "dataflow"
	err := run(context.Background())
	require.ErrorContains(t, err, "-tags dataflow")
}
