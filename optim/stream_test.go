package optim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
)

// Helpers of this file carry the prefix "st".

// stDigits returns the digits training split in memory and written to a
// temporary .npz file.
func stDigits(t *testing.T) (*Data, string) {
	t.Helper()
	x, y, _, _, err := digits.Split()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "digits.npz")
	require.NoError(t, features.WriteNPZ(path, x, y))
	return &Data{X: x, Labels: y, Classes: 10}, path
}

// stSynthetic returns fnProblem's data (rows of norm ≤ 1, which the clip
// norms below clip) in memory and in a temporary file of the given kind.
func stSynthetic(t *testing.T, n, d, k int, ext string) (*Data, string) {
	t.Helper()
	data := fnProblem(t, n, d, k, 3)
	for i := range data.X.Data {
		data.X.Data[i] *= 3 // rows of norm up to 3: clipping to 1 bites
	}
	path := filepath.Join(t.TempDir(), "synthetic"+ext)
	if ext == ".npz" {
		require.NoError(t, features.WriteNPZ(path, data.X, data.Labels))
	} else {
		require.NoError(t, features.WriteTFRecord(path, data.X, data.Labels))
	}
	return data, path
}

func stLedger(t *testing.T) *accountant.Ledger {
	t.Helper()
	acc, err := accountant.AccountantByName("exact")
	require.NoError(t, err)
	l, err := accountant.NewLedger(accountant.Budget{Epsilon: 10, Delta: 1e-5}, acc)
	require.NoError(t, err)
	return l
}

// stSameEntries checks that two ledgers hold the same releases, in order.
func stSameEntries(t *testing.T, got, want *accountant.Ledger) {
	t.Helper()
	g, w := got.Entries(), want.Entries()
	require.Equal(t, len(w), len(g), "ledger entries")
	for i := range w {
		if g[i].Label != w[i].Label || fmt.Sprintf("%#v", g[i].Event) != fmt.Sprintf("%#v", w[i].Event) {
			t.Errorf("entry %d = %q %v, want %q %v", i, g[i].Label, g[i].Event, w[i].Label, w[i].Event)
		}
	}
	if got.Epsilon() != want.Epsilon() {
		t.Errorf("ledger ε = %v, want %v", got.Epsilon(), want.Epsilon())
	}
}

// stClose checks that got and want agree to tol relative to want's largest entry.
func stClose(t *testing.T, name string, got, want *mat.Dense, tol float64) {
	t.Helper()
	var diff mat.Dense
	diff.Sub(got, want)
	scale := mat.Norm(want, math.Inf(1))
	e := mat.Norm(&diff, math.Inf(1))
	t.Logf("%s: max |streamed − in memory| / scale = %.3g", name, e/scale)
	if !(e <= tol*scale) {
		t.Errorf("%s: max |streamed − in memory| = %g, want ≤ %g·%g", name, e, tol, scale)
	}
}

func TestStreamEqualsSolve(t *testing.T) {
	dig, digPath := stDigits(t)
	syn, synPath := stSynthetic(t, 1500, 24, 4, ".npz")
	_, synTFR := stSynthetic(t, 1500, 24, 4, ".tfrecord") // same data (same seed)
	priv := Privacy{Epsilon: 2, Delta: 1e-5}
	// Tolerances, relative: with exact products (Float64: true) other block
	// sizes only reorder float64 sums (relative error ~1e-15 per entry),
	// amplified by the conditioning of the ridge solves and, for FC, by ten
	// steps of the same preconditioner: 1e-9. With the default float32
	// blocks (linalg.Float32) other block sizes also move the float32 block
	// boundaries (~1e-7 relative per entry): 2e-5.
	cases := []struct {
		name   string
		solver StreamSolver
		data   *Data
		path   string
		block  int
		n      int
		exact  bool // bit-identical
	}{
		{"LS/digits/float64/block=100", &LS{Privacy: priv, ClipNorm: 1, Global: true, Float64: true}, dig, digPath, 100, 0, false},
		{"FC/digits/float64/block=256", &FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1, Float64: true}, dig, digPath, 256, 0, false},
		{"LS/digits/default-block", &LS{Privacy: priv, ClipNorm: 1, Global: true}, dig, digPath, 0, 0, true},
		{"LS/digits/block=100", &LS{Privacy: priv, ClipNorm: 1, Global: true}, dig, digPath, 100, 0, false},
		{"LS/digits/per-class/block=333", &LS{Privacy: priv, ClipNorm: 1, PerClass: true}, dig, digPath, 333, 0, false},
		{"LS/synthetic/tfrecord/N", &LS{Privacy: priv, ClipNorm: 1, Global: true}, syn, synTFR, 0, 1500, true},
		{"LS/synthetic/non-private", &LS{Privacy: Privacy{Epsilon: math.Inf(1)}, ClipNorm: 1, Global: true}, syn, synPath, 7, 0, false},
		// Neither form forced, N known: the stream picks Solve's form.
		{"LS/synthetic/auto-form/N", &LS{Privacy: priv, ClipNorm: 1}, syn, synTFR, 0, 1500, false},
		{"FC/digits/one-block", &FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1}, dig, digPath, 1 << 20, 0, true},
		{"FC/digits/block=256", &FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1}, dig, digPath, 256, 0, false},
		{"FC/synthetic/softmax/block=100", &FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 0.5, Softmax: true, Steps: 5}, syn, synPath, 100, 0, false},
		{"FC/synthetic/tfrecord/block=512", &FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1, WeightDecay: 1}, syn, synTFR, 512, 0, false},
		{"FC/synthetic/non-private/block=1", &FC{Privacy: Privacy{Epsilon: math.Inf(1)}, ClipNorm: 1, GradClipNorm: 1, Steps: 3}, syn, synPath, 1, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lw, ls *accountant.Ledger
			if !c.solver.(interface{ NonPrivate() bool }).NonPrivate() {
				lw, ls = stLedger(t), stLedger(t)
			}
			want, err := c.solver.Solve(context.Background(), c.data, lw, dp.NewSeededSource(9))
			require.NoError(t, err)
			sd := FileData(c.path, features.Options{Classes: c.data.Classes})
			sd.BlockRows, sd.N = c.block, c.n
			got, err := c.solver.SolveStream(context.Background(), sd, ls, dp.NewSeededSource(9))
			require.NoError(t, err)
			if c.exact {
				if !mat.Equal(got.Model.W, want.Model.W) {
					stClose(t, "W", got.Model.W, want.Model.W, 0)
				}
			} else {
				tol := 2e-5
				switch s := c.solver.(type) {
				case *LS:
					if s.Float64 {
						tol = 1e-9
					}
				case *FC:
					if s.Float64 {
						tol = 1e-9
					}
				}
				stClose(t, "W", got.Model.W, want.Model.W, tol)
			}
			require.Equal(t, want.Model.Bias, got.Model.Bias)
			if lw != nil {
				stSameEntries(t, ls, lw)
			}
			gr, wr := *got.Report, *want.Report
			gr.Seconds, wr.Seconds = 0, 0
			if c.exact {
				require.Equal(t, wr, gr, "reports")
			} else {
				require.Equal(t, wr.Releases, gr.Releases)
				require.Equal(t, [3]int{wr.N, wr.Dim, wr.Classes}, [3]int{gr.N, gr.Dim, gr.Classes})
				require.Equal(t, len(wr.Steps), len(gr.Steps))
			}
		})
	}
}

// stStream serves an in-memory data set as a features.Stream, for fault
// injection: hook runs before each block is returned and may fail it.
type stStream struct {
	d      *Data
	at     int
	blocks int
	hook   func(block int, x *linalg.Matrix32, y []int) error
	closed *int
}

func (s *stStream) Dim() int { return s.d.X.Cols }
func (s *stStream) Close() error {
	if s.closed != nil {
		*s.closed++
	}
	return nil
}
func (s *stStream) Next(maxRows int) (*linalg.Matrix32, []int, error) {
	if s.at == s.d.X.Rows {
		return nil, nil, errEOFForTest
	}
	j := min(s.at+maxRows, s.d.X.Rows)
	x := &linalg.Matrix32{Rows: j - s.at, Cols: s.d.X.Cols, Data: append([]float32(nil), s.d.X.Slice(s.at, j).Data...)}
	y := append([]int(nil), s.d.Labels[s.at:j]...)
	s.at = j
	s.blocks++
	if s.hook != nil {
		if err := s.hook(s.blocks-1, x, y); err != nil {
			return nil, nil, err
		}
	}
	return x, y, nil
}

var errEOFForTest = io.EOF

// stData returns StreamData over d whose pass-th Open (from 0) gets hook.
func stData(d *Data, block int, hooks map[int]func(int, *linalg.Matrix32, []int) error, opens, closes *int) *StreamData {
	return &StreamData{
		Open: func() (features.Stream, error) {
			s := &stStream{d: d, hook: hooks[*opens], closed: closes}
			*opens++
			return s, nil
		},
		Classes:   d.Classes,
		BlockRows: block,
	}
}

func TestStreamFailures(t *testing.T) {
	data := fnProblem(t, 400, 8, 3, 5)
	errDisk := errors.New("disk on fire")
	failAt := func(block int, err error) func(int, *linalg.Matrix32, []int) error {
		return func(b int, _ *linalg.Matrix32, _ []int) error {
			if b == block {
				return err
			}
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cases := []struct {
		name     string
		solver   StreamSolver
		ctx      context.Context
		hooks    map[int]func(int, *linalg.Matrix32, []int) error
		n        int
		want     error
		released []string // ledger labels after the failure
	}{
		{"LS/read error mid-pass", &LS{ClipNorm: 1}, nil,
			map[int]func(int, *linalg.Matrix32, []int) error{0: failAt(2, errDisk)}, 0, errDisk, nil},
		{"FC/read error in the gram pass", &FC{ClipNorm: 1, GradClipNorm: 1, Steps: 4}, nil,
			map[int]func(int, *linalg.Matrix32, []int) error{0: failAt(3, errDisk)}, 0, errDisk, nil},
		{"FC/read error in step 2", &FC{ClipNorm: 1, GradClipNorm: 1, Steps: 4}, nil,
			map[int]func(int, *linalg.Matrix32, []int) error{3: failAt(1, errDisk)}, 0, errDisk, []string{"gram", "gradient", "gradient"}},
		{"FC/NaN in step 1", &FC{ClipNorm: 1, GradClipNorm: 1, Steps: 4}, nil,
			map[int]func(int, *linalg.Matrix32, []int) error{2: func(b int, x *linalg.Matrix32, _ []int) error {
				if b == 2 {
					x.Data[5] = float32(math.NaN())
				}
				return nil
			}}, 0, linalg.ErrNonFinite, []string{"gram", "gradient"}},
		{"LS/bad label", &LS{ClipNorm: 1}, nil,
			map[int]func(int, *linalg.Matrix32, []int) error{0: func(b int, _ *linalg.Matrix32, y []int) error {
				if b == 3 {
					y[7] = 3
				}
				return nil
			}}, 0, linalg.ErrLabel, nil},
		{"FC/fewer rows in step 3", &FC{ClipNorm: 1, GradClipNorm: 1, Steps: 4}, nil,
			map[int]func(int, *linalg.Matrix32, []int) error{4: failAt(3, errEOFForTest)}, 0, linalg.ErrShape, []string{"gram", "gradient", "gradient", "gradient"}},
		{"LS/N too large", &LS{ClipNorm: 1}, nil, nil, 401, linalg.ErrShape, nil},
		{"FC/N too small", &FC{ClipNorm: 1, GradClipNorm: 1}, nil, nil, 399, linalg.ErrShape, nil},
		{"FC/cancelled in step 1", &FC{ClipNorm: 1, GradClipNorm: 1, Steps: 4}, ctx,
			map[int]func(int, *linalg.Matrix32, []int) error{2: func(b int, _ *linalg.Matrix32, _ []int) error {
				if b == 1 {
					cancel()
				}
				return nil
			}}, 0, context.Canceled, []string{"gram", "gradient"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			switch s := c.solver.(type) {
			case *LS:
				s.Privacy = Privacy{Epsilon: 1, Delta: 1e-5}
			case *FC:
				s.Privacy = Privacy{Epsilon: 1, Delta: 1e-5}
			}
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var opens, closes int
			sd := stData(data, 64, c.hooks, &opens, &closes)
			sd.N = c.n
			l := stLedger(t)
			res, err := c.solver.SolveStream(ctx, sd, l, dp.NewSeededSource(1))
			require.Error(t, err)
			require.Nil(t, res)
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want one wrapping %v", err, c.want)
			}
			var labels []string
			for _, e := range l.Entries() {
				labels = append(labels, e.Label)
			}
			require.Equal(t, c.released, labels, "released before failing")
			require.Equal(t, opens, closes, "streams closed")
		})
	}
}

func TestStreamCorruptFile(t *testing.T) {
	for _, ext := range []string{".npz", ".tfrecord"} {
		t.Run(ext, func(t *testing.T) {
			data, path := stSynthetic(t, 1000, 16, 3, ext)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			// Flip the lowest bit of a byte mid-way: whichever byte of a float32
			// it hits, the value stays finite and small, so only a zip or record
			// CRC can catch it.
			b[len(b)/2] ^= 0x01
			require.NoError(t, os.WriteFile(path, b, 0o644))
			for _, s := range []StreamSolver{
				&LS{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1},
				&FC{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, GradClipNorm: 1},
			} {
				l := stLedger(t)
				sd := FileData(path, features.Options{Classes: data.Classes})
				sd.BlockRows = 100
				res, err := s.SolveStream(context.Background(), sd, l, dp.NewSeededSource(1))
				require.Nil(t, res)
				if !errors.Is(err, features.ErrChecksum) {
					t.Errorf("%T: error %v, want one wrapping features.ErrChecksum", s, err)
				}
				require.Empty(t, l.Entries(), "released from a corrupt file")
			}
		})
	}
}

func TestStreamBadParams(t *testing.T) {
	data := fnProblem(t, 50, 4, 2, 1)
	var opens, closes int
	ok := stData(data, 0, nil, &opens, &closes)
	s := &LS{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1}
	for _, c := range []struct {
		name string
		sd   *StreamData
	}{
		{"nil", nil},
		{"no Open", &StreamData{Classes: 2}},
		{"one class", &StreamData{Open: ok.Open, Classes: 1}},
		{"negative N", &StreamData{Open: ok.Open, Classes: 2, N: -1}},
		{"negative BlockRows", &StreamData{Open: ok.Open, Classes: 2, BlockRows: -1}},
		{"Open fails", &StreamData{Open: func() (features.Stream, error) { return nil, errors.New("no") }, Classes: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := stLedger(t)
			res, err := s.SolveStream(context.Background(), c.sd, l, dp.NewSeededSource(1))
			require.Error(t, err)
			require.Nil(t, res)
			require.Empty(t, l.Entries())
		})
	}
}

func TestStreamHeaderN(t *testing.T) {
	data, path := stSynthetic(t, 300, 8, 3, ".npz")
	s := &FC{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, GradClipNorm: 1, Steps: 2}
	for _, n := range []int{299, 301} {
		l := stLedger(t)
		sd := FileData(path, features.Options{Classes: data.Classes})
		sd.N = n
		res, err := s.SolveStream(context.Background(), sd, l, dp.NewSeededSource(1))
		require.Nil(t, res)
		require.ErrorIs(t, err, linalg.ErrShape, "N = %d for a file of 300 rows", n)
		require.Empty(t, l.Entries())
	}
	sd := FileData(path, features.Options{Classes: data.Classes})
	sd.N = 300
	res, err := s.SolveStream(context.Background(), sd, nil, dp.NewSeededSource(1))
	require.NoError(t, err)
	require.Equal(t, 300, res.Report.N)
}
