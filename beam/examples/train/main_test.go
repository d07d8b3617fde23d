package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/features"
)

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	os.Exit(m.Run())
}

// DP-LS and DP-FC end to end on digits with the prism runner (beamx.Run's
// default), as the command runs them.
func TestTrainDigits(t *testing.T) {
	x, y, _, _, err := digits.Split()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, features.WriteTFRecord(filepath.Join(dir, "train.tfr-00000-of-00002"), x.Slice(0, 900), y[:900]))
	require.NoError(t, features.WriteTFRecord(filepath.Join(dir, "train.tfr-00001-of-00002"), x.Slice(900, x.Rows), y[900:]))
	for _, m := range []string{"ls", "fc"} {
		t.Run(m, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model.json")
			*input, *classes, *method, *epsilon, *steps, *seed, *output, *tempDir =
				filepath.Join(dir, "train.tfr-*"), digits.Classes, m, 2, 3, 1, out, t.TempDir()
			require.NoError(t, run(context.Background()))
			var res struct {
				W      [][]float64
				Report struct {
					Spent    float64 `json:"epsilon_spent"`
					Releases []struct{ Label string }
				}
			}
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &res))
			require.Len(t, res.W, digits.Classes)
			require.LessOrEqual(t, res.Report.Spent, 2.0)
			require.NotEmpty(t, res.Report.Releases)
		})
	}
}
