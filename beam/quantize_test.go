package dpbeam

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
)

// permuted returns the rows of x, y in a random order.
func permuted(x *linalg.Matrix32, y []int, seed uint64) (*linalg.Matrix32, []int) {
	perm := rand.New(rand.NewPCG(seed, 9)).Perm(x.Rows)
	px, py := linalg.NewMatrix32(x.Rows, x.Cols), make([]int, len(y))
	for i, p := range perm {
		copy(px.Row(i), x.Row(p))
		py[i] = y[p]
	}
	return px, py
}

// coreQuantizedStats is the core library's statistics of the rows clipped
// to c and quantised to bits bits, in a single Add.
func coreQuantizedStats(t *testing.T, x *linalg.Matrix32, y []int, k int, c float64, bits int) *linalg.Stats {
	t.Helper()
	q, err := linalg.Quantum(c, bits)
	require.NoError(t, err)
	s, err := linalg.NewQuantizedStats(x.Cols, k, q)
	require.NoError(t, err)
	xc := &linalg.Matrix32{Rows: x.Rows, Cols: x.Cols, Data: append([]float32(nil), x.Data...)}
	_, err = dp.ClipRows(xc, c)
	require.NoError(t, err)
	require.NoError(t, s.Add(xc, y))
	return s
}

// With Quantize set, StatsFn's result is the same to the bit for the same
// rows in any blocks, any order, any grouping into accumulators and merge
// order (through the coder), and equals the core's statistics.
func TestStatsFnQuantizedShardingFree(t *testing.T) {
	const n, d, k, c, bits = 5000, 20, 4, 2.0, 16
	x, y := synthetic(n, d, k, 3)
	r := Rows{ClipNorm: c, Quantize: bits}
	want := encoded(t, coreQuantizedStats(t, x, y, k, c, bits))
	fn := &StatsFn{Rows: r, Classes: k}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 12 {
		tx, ty := x, y
		if trial%2 == 1 {
			tx, ty = permuted(x, y, uint64(trial))
		}
		blocks := blocksOf(tx, ty, 1+rng.IntN(n/3))
		accs := make([]*statsAcc, 1+rng.IntN(6))
		for i := range accs {
			accs[i] = fn.CreateAccumulator()
		}
		var err error
		for _, j := range rng.Perm(len(blocks)) {
			i := rng.IntN(len(accs))
			accs[i], err = fn.AddInput(accs[i], blocks[j])
			require.NoError(t, err)
		}
		for len(accs) > 1 {
			i := rng.IntN(len(accs) - 1)
			enc, err := encodeStatsAcc(accs[i+1])
			require.NoError(t, err)
			dec, err := decodeStatsAcc(enc)
			require.NoError(t, err)
			accs[i], err = fn.MergeAccumulators(accs[i], dec)
			require.NoError(t, err)
			accs = append(accs[:i+1], accs[i+2:]...)
		}
		out, err := fn.ExtractOutput(accs[0])
		require.NoError(t, err)
		if string(out) != want {
			t.Fatalf("trial %d (%d blocks): statistics differ from the core's", trial, len(blocks))
		}
		got, err := StatsOf(blocks, r, k)
		require.NoError(t, err)
		require.Equal(t, want, encoded(t, got), "StatsOf")
	}
	// Unquantised, the blocks show in the last bits.
	a, err := StatsOf(blocksOf(x, y, 300), Rows{ClipNorm: c}, k)
	require.NoError(t, err)
	b, err := StatsOf(blocksOf(x, y, 777), Rows{ClipNorm: c}, k)
	require.NoError(t, err)
	require.NotEqual(t, encoded(t, a), encoded(t, b), "unquantised statistics did not depend on the blocks: the test shows nothing")

	_, err = StatsOf(blocksOf(x, y, 300), Rows{ClipNorm: c, Quantize: -1}, k)
	require.Error(t, err)
}

// The same rows, sharded into different files, block sizes and row orders,
// give the same statistics to the bit on every runner, and the same DP-LS
// model for a noise seed — the core's optim.LS model with the same Quantize.
// DP-FC's Gram is exact too; its gradient sums depend on the blocks in the
// last bits, so its model agrees with the core's to 1e-9.
func TestQuantizedShardingFree(t *testing.T) {
	const n, d, k, c, bits = 3000, 12, 4, 1.0, 16
	x, y := synthetic(n, d, k, 21)
	px, py := permuted(x, y, 4)
	type layout struct {
		name   string
		x      *linalg.Matrix32
		y      []int
		shards []int
		format string
		rows   int
	}
	layouts := []layout{
		{"npz/1 file/rows 4096", x, y, []int{n}, "npz", 4096},
		{"tfrecord/3 files/rows 256", x, y, []int{1000, 999, 1001}, "tfrecord", 256},
		{"npz/4 files/rows 97/shuffled", px, py, []int{17, 1500, 1200, 283}, "npz", 97},
	}
	wantStats := encoded(t, coreQuantizedStats(t, x, y, k, c, bits))
	ctx := context.Background()
	priv := optim.Privacy{Epsilon: 2, Delta: 1e-5}
	data := &optim.Data{X: x, Labels: y, Classes: k}
	ls := &optim.LS{Privacy: priv, ClipNorm: c, Quantize: bits, Global: true}
	coreLS, err := ls.Solve(ctx, data, nil, dp.NewSeededSource(9))
	require.NoError(t, err)
	// Float64: the workers compute exact products, quantised or not.
	fc := &optim.FC{Privacy: priv, ClipNorm: c, GradClipNorm: 1, Steps: 2, Quantize: bits, Float64: true}
	coreFC, err := fc.Solve(ctx, data, nil, dp.NewSeededSource(9))
	require.NoError(t, err)
	for _, l := range layouts {
		pattern := writeShards(t, l.x, l.y, l.shards, l.format)
		for name, run := range runners {
			t.Run(fmt.Sprintf("%s/%s", l.name, name), func(t *testing.T) {
				p := filePipeline(t, run, pattern, l.rows)
				st, err := p.Stats(ctx, Rows{ClipNorm: c, Quantize: bits}, k)
				require.NoError(t, err)
				require.Equal(t, wantStats, encoded(t, st), "statistics differ from the core's")
				if name != "prism" {
					return // the drivers once per layout are enough
				}
				lg := newLedger(t, 2)
				got, err := SolveLS(ctx, ls, p, k, lg, dp.NewSeededSource(9))
				require.NoError(t, err)
				sameBits(t, got.Model.W.RawMatrix().Data, coreLS.Model.W.RawMatrix().Data, "DP-LS model")
				require.Equal(t, coreLS.Report.Releases, got.Report.Releases)
				gf, err := SolveFC(ctx, fc, p, k, nil, dp.NewSeededSource(9))
				require.NoError(t, err)
				// Tolerance: only the gradient sums' block rounding (~1e-16
				// relative) separates the two.
				if dd := maxAbsDiff(gf.Model.W, coreFC.Model.W); dd > 1e-9 {
					t.Errorf("DP-FC weights differ by %g, want ≤ 1e-9", dd)
				}
			})
		}
	}
}

// newLedger returns an exact-accountant ledger with budget (eps, 1e-5).
func newLedger(t *testing.T, eps float64) *accountant.Ledger {
	t.Helper()
	acc, err := accountant.AccountantByName("exact")
	require.NoError(t, err)
	l, err := accountant.NewLedger(accountant.Budget{Epsilon: eps, Delta: 1e-5}, acc)
	require.NoError(t, err)
	return l
}

// sameBits fails unless a and b are equal to the bit.
func sameBits(t *testing.T, a, b []float64, what string) {
	t.Helper()
	require.Equal(t, len(a), len(b), what)
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			t.Fatalf("%s: entry %d = %v, want %v bit for bit", what, i, a[i], b[i])
		}
	}
}
