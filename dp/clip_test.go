package dp_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

func norm64(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

func TestClipRowsExact(t *testing.T) {
	cases := []struct {
		name  string
		rows  [][]float32
		clip  float64
		want  [][]float32
		norms []float64
	}{
		{"below", [][]float32{{0.3, 0.4}}, 1, [][]float32{{0.3, 0.4}}, []float64{norm64([]float32{0.3, 0.4})}},
		{"above", [][]float32{{3, 4}}, 1, [][]float32{{0.6, 0.8}}, []float64{5}},
		{"zero row", [][]float32{{0, 0, 0}}, 2, [][]float32{{0, 0, 0}}, []float64{0}},
		{"mixed", [][]float32{{6, 8}, {1, 0}, {0, -20}}, 5, [][]float32{{3, 4}, {1, 0}, {0, -5}}, []float64{10, 1, 20}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := linalg.NewMatrix32(len(c.rows), len(c.rows[0]))
			for i, r := range c.rows {
				copy(x.Row(i), r)
			}
			norms, err := dp.ClipRows(x, c.clip)
			require.NoError(t, err)
			for i := range c.rows {
				if math.Abs(norms[i]-c.norms[i]) > 1e-12*c.norms[i] {
					t.Errorf("norm %d = %v, want %v", i, norms[i], c.norms[i])
				}
				for j, v := range x.Row(i) {
					// A clipped entry is within a few float32 ulps of the
					// exact x·C/‖x‖ (the shrink that keeps ‖x̃‖ ≤ C).
					if w := c.want[i][j]; math.Abs(float64(v-w)) > 4e-7*math.Abs(float64(w)) {
						t.Errorf("row %d = %v, want %v", i, x.Row(i), c.want[i])
					}
				}
				if n := norm64(x.Row(i)); n > c.clip {
					t.Errorf("row %d norm %v > clip %v", i, n, c.clip)
				}
			}
		})
	}
}

// TestClipRowsBound checks ‖x̃_i‖ ≤ C for many random rows of all scales —
// the bound every sensitivity rests on — and that clipped rows keep their
// direction and reach C to float32 precision.
func TestClipRowsBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 2000, 97
	for _, clip := range []float64{1e-3, 0.1, 1, 3.7, 1e6} {
		x := linalg.NewMatrix32(rows, cols)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(9)-4)))
		}
		orig := append([]float32(nil), x.Data...)
		norms, err := dp.ClipRows(x, clip)
		require.NoError(t, err)
		for i := range rows {
			got, o := x.Row(i), orig[i*cols:(i+1)*cols]
			n := norm64(got)
			if n > clip {
				t.Fatalf("clip %g: row %d has norm %.17g > clip", clip, i, n)
			}
			if norms[i] <= clip {
				require.Equal(t, o, got, "row within the clip norm changed")
				continue
			}
			if n < clip*(1-1e-6) {
				t.Errorf("clip %g: clipped row %d has norm %v, want ≈ clip", clip, i, n)
			}
			f := clip / norms[i]
			for j := range got {
				if math.Abs(float64(got[j])-float64(o[j])*f) > 1e-6*math.Abs(float64(o[j])*f)+1e-30 {
					t.Fatalf("clip %g: row %d entry %d = %v, want %v", clip, i, j, got[j], float64(o[j])*f)
				}
			}
		}
	}
}

func TestClipErrors(t *testing.T) {
	good := func() *linalg.Matrix32 { m := linalg.NewMatrix32(2, 2); m.Data[0] = 3; return m }
	isParam := func(err error) bool { var pe *dp.ParamError; return errors.As(err, &pe) }
	cases := []struct {
		name string
		x    *linalg.Matrix32
		clip float64
		ok   func(error) bool
	}{
		{"clip 0", good(), 0, isParam},
		{"clip negative", good(), -1, isParam},
		{"clip NaN", good(), math.NaN(), isParam},
		{"clip Inf", good(), math.Inf(1), isParam},
		{"nil", nil, 1, func(err error) bool { return errors.Is(err, linalg.ErrEmpty) }},
		{"shape", &linalg.Matrix32{Rows: 2, Cols: 2, Data: make([]float32, 3)}, 1, func(err error) bool { return errors.Is(err, linalg.ErrShape) }},
		{"NaN", &linalg.Matrix32{Rows: 1, Cols: 2, Data: []float32{5, float32(math.NaN())}}, 1, func(err error) bool { return errors.Is(err, linalg.ErrNonFinite) }},
		// The bad entry comes after rows that need clipping: they must stay
		// as they were.
		{"Inf after clipped rows", &linalg.Matrix32{Rows: 3, Cols: 2, Data: []float32{5, 5, 3, 4, 1, float32(math.Inf(-1))}}, 1, func(err error) bool { return errors.Is(err, linalg.ErrNonFinite) }},
		{"above MaxAbs", &linalg.Matrix32{Rows: 2, Cols: 2, Data: []float32{5, 5, 2e30, 0}}, 1, func(err error) bool { return errors.Is(err, linalg.ErrNonFinite) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before []float32
			if c.x != nil {
				before = append(before, c.x.Data...)
			}
			_, err := dp.ClipRows(c.x, c.clip)
			if err == nil || !c.ok(err) {
				t.Fatalf("error = %v, not the one wanted", err)
			}
			if c.x != nil && !slices.EqualFunc(c.x.Data[:min(len(before), len(c.x.Data))], before, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Error("data changed on error")
			}
		})
	}
}

// TestClipLargeRows checks that rows whose squared norm exceeds MaxAbs² but
// whose entries are all within MaxAbs are accepted and clipped.
func TestClipLargeRows(t *testing.T) {
	x := linalg.NewMatrix32(2, 1000)
	for i := range x.Data {
		x.Data[i] = 1e29
	}
	norms, err := dp.ClipRows(x, 2)
	require.NoError(t, err)
	for i, n := range norms {
		if want := float64(float32(1e29)) * math.Sqrt(1000); math.Abs(n-want) > 1e-12*want {
			t.Errorf("norm %d = %v, want %v", i, n, want)
		}
		var s float64
		for _, v := range x.Row(i) {
			s += float64(v) * float64(v)
		}
		if math.Sqrt(s) > 2 || math.Sqrt(s) < 2*(1-1e-5) {
			t.Errorf("row %d has norm %v after clipping to 2", i, math.Sqrt(s))
		}
	}
}

func TestClipFactors(t *testing.T) {
	got, err := dp.ClipFactors(nil, []float64{0, 0.5, 2, 8, math.MaxFloat64}, 2)
	require.NoError(t, err)
	want := []float64{1, 1, 1, 0.25, 2 / math.MaxFloat64}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-15*want[i] {
			t.Errorf("ClipFactors[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	// ‖g_i‖ = ‖r_i‖·‖x_i‖: factors for products 0.5, 6, 0, 1e30·1e30.
	dst := make([]float64, 4)
	lin, err := dp.LinearClipFactors(dst, []float64{0.5, 2, 0, 1e30}, []float64{1, 3, 7, 1e30}, 1.5)
	require.NoError(t, err)
	require.Same(t, &dst[0], &lin[0], "dst not used")
	for i, w := range []float64{1, 0.25, 1, 1.5e-60} {
		if math.Abs(lin[i]-w) > 1e-15*w {
			t.Errorf("LinearClipFactors[%d] = %v, want %v", i, lin[i], w)
		}
	}
	// The clipped norm never exceeds the clip norm in float64.
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		a, b, c := r.ExpFloat64()*10, r.ExpFloat64()*10, r.Float64()+0.01
		f, err := dp.LinearClipFactors(nil, []float64{a}, []float64{b}, c)
		require.NoError(t, err)
		if f[0]*(a*b) > c {
			t.Fatalf("factor %v · %v > clip %v", f[0], a*b, c)
		}
	}

	errCases := []struct {
		name string
		call func() error
		ok   func(error) bool
	}{
		{"clip 0", func() error { _, err := dp.ClipFactors(nil, []float64{1}, 0); return err }, func(err error) bool { var pe *dp.ParamError; return errors.As(err, &pe) }},
		{"negative norm", func() error { _, err := dp.ClipFactors(nil, []float64{-1}, 1); return err }, func(err error) bool { return errors.Is(err, linalg.ErrNonFinite) }},
		{"NaN norm", func() error { _, err := dp.ClipFactors(nil, []float64{math.NaN()}, 1); return err }, func(err error) bool { return errors.Is(err, linalg.ErrNonFinite) }},
		{"dst length", func() error { _, err := dp.ClipFactors(make([]float64, 2), []float64{1}, 1); return err }, func(err error) bool { return errors.Is(err, linalg.ErrShape) }},
		{"linear lengths", func() error { _, err := dp.LinearClipFactors(nil, []float64{1}, []float64{1, 2}, 1); return err }, func(err error) bool { return errors.Is(err, linalg.ErrShape) }},
		{"linear Inf", func() error {
			_, err := dp.LinearClipFactors(nil, []float64{math.Inf(1)}, []float64{1}, 1)
			return err
		}, func(err error) bool { return errors.Is(err, linalg.ErrNonFinite) }},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); err == nil || !c.ok(err) {
				t.Errorf("error = %v, not the one wanted", err)
			}
		})
	}
}
