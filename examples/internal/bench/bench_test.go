package bench

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/optim"
)

func digitsFiles(t *testing.T) (train, test string) {
	t.Helper()
	xtr, ytr, xte, yte, err := digits.Split()
	require.NoError(t, err)
	dir := t.TempDir()
	train, test = filepath.Join(dir, "train.npz"), filepath.Join(dir, "test.npz")
	require.NoError(t, features.WriteNPZ(train, xtr, ytr))
	require.NoError(t, features.WriteNPZ(test, xte, yte))
	return train, test
}

// The table holds a row per method; a method over the Newton limit is skipped.
func TestRunDigits(t *testing.T) {
	xtr, ytr, xte, yte, err := digits.Split()
	require.NoError(t, err)
	train := &optim.Data{X: xtr, Labels: ytr, Classes: digits.Classes}
	test := &optim.Data{X: xte, Labels: yte, Classes: digits.Classes}
	tab, err := Run(context.Background(), "digits", train, test, Config{
		Methods: []string{"ls", "fc", "newton"}, Epsilons: []float64{1, 8}, Delta: 1e-5, Seed: 1, Seeds: 2,
		NewtonLimit: 1, // digits: K·d²·(n+d) is far above 1
	})
	require.NoError(t, err)
	if len(tab.Rows) != 3 || tab.Rows[2].Skipped == "" || tab.Rows[0].Skipped != "" {
		t.Fatalf("rows %+v: want ls, fc run and newton skipped", tab.Rows)
	}
	// FC at ε = 8, mean of seeds 1–2: optim's TestFCDigits floor.
	if acc := tab.Rows[1].Accuracy[1]; acc < 0.91 || math.IsNaN(acc) {
		t.Errorf("fc at ε = 8: %.3f, want ≥ 0.91", acc)
	}
	var b bytes.Buffer
	tab.Print(&b)
	for _, want := range []string{"ε = 1", "ε = 8", "non-private", "newton skipped"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestFilesMain(t *testing.T) {
	train, test := digitsFiles(t)
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"ok", []string{"-train", train, "-test", test, "-methods", "ls", "-epsilons", "1"}, 0},
		{"no files", nil, 2},
		{"bad delta", []string{"-train", train, "-test", test, "-delta", "2"}, 2},
		{"bad method", []string{"-train", train, "-test", test, "-methods", "svm"}, 2},
		{"bad epsilon", []string{"-train", train, "-test", test, "-epsilons", "0"}, 2},
		{"missing file", []string{"-train", train + ".missing", "-test", test}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := FilesMain("cifar", 1e-5, c.args, &out, &errs)
			if code != c.code {
				t.Errorf("status %d, want %d (stderr %q)", code, c.code, errs.String())
			}
			if (c.code == 0) != (out.Len() > 0) {
				t.Errorf("stdout %q", out.String())
			}
		})
	}
}
