package dpbeam

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// synthetic returns n rows of dimension d with labels in [0, k), of widely
// varying norms (so that clipping matters) and signs.
func synthetic(n, d, k int, seed uint64) (*linalg.Matrix32, []int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := linalg.NewMatrix32(n, d)
	y := make([]int, n)
	for i := range n {
		y[i] = rng.IntN(k)
		scale := math.Exp(rng.NormFloat64())
		for j := range d {
			v := rng.NormFloat64() * scale
			if j == y[i]%d {
				v += 2 * scale
			}
			x.Data[i*d+j] = float32(v)
		}
	}
	return x, y
}

// blocksOf splits x into blocks of rows rows.
func blocksOf(x *linalg.Matrix32, y []int, rows int) []Block {
	var out []Block
	for i := 0; i < x.Rows; i += rows {
		j := min(i+rows, x.Rows)
		out = append(out, Block{X: x.Slice(i, j), Labels: y[i:j]})
	}
	return out
}

// coreStats is the single-machine statistics of the core library: rows
// clipped to c, one Stats.Add per block of rows rows, in order.
func coreStats(t *testing.T, x *linalg.Matrix32, y []int, k int, c float64, rows int) *linalg.Stats {
	t.Helper()
	s, err := linalg.NewStats(x.Cols, k)
	require.NoError(t, err)
	for _, b := range blocksOf(x, y, rows) {
		xc := &linalg.Matrix32{Rows: b.X.Rows, Cols: b.X.Cols, Data: append([]float32(nil), b.X.Data...)}
		_, err := dp.ClipRows(xc, c)
		require.NoError(t, err)
		require.NoError(t, s.Add(xc, b.Labels))
	}
	return s
}

func encoded(t *testing.T, s *linalg.Stats) string {
	t.Helper()
	b, err := s.MarshalBinary()
	require.NoError(t, err)
	return string(b)
}

// On one block the exact sum is the core's single-machine result, bit for
// bit: digits (1797 rows) fits one block of DefaultBlockRows.
func TestStatsOfDigitsEqualsCore(t *testing.T) {
	x, y, _, _, err := digits.Split()
	require.NoError(t, err)
	const c = 1.0
	got, err := StatsOf(blocksOf(x, y, DefaultBlockRows), Rows{ClipNorm: c}, digits.Classes)
	require.NoError(t, err)
	want := coreStats(t, x, y, digits.Classes, c, DefaultBlockRows)
	if encoded(t, got) != encoded(t, want) {
		t.Fatal("statistics differ from the core's single-machine statistics")
	}
}

// Any grouping of the blocks into accumulators, merged in any order, gives
// the same bits as StatsOf; the core's sequential fold agrees to rounding.
func TestStatsFnShardingInvariant(t *testing.T) {
	const n, d, k, rows, c = 5000, 20, 4, 300, 2.0
	x, y := synthetic(n, d, k, 3)
	blocks := blocksOf(x, y, rows)
	want, err := StatsOf(blocks, Rows{ClipNorm: c}, k)
	require.NoError(t, err)
	fn := &StatsFn{Rows: Rows{ClipNorm: c}, Classes: k}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 20 {
		accs := make([]*statsAcc, 1+rng.IntN(6))
		for i := range accs {
			accs[i] = fn.CreateAccumulator()
		}
		for _, j := range rng.Perm(len(blocks)) {
			i := rng.IntN(len(accs))
			accs[i], err = fn.AddInput(accs[i], blocks[j])
			require.NoError(t, err)
		}
		for len(accs) > 1 { // through the Beam coder, as between workers
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
		if out := string(out); out != encoded(t, want) {
			t.Fatalf("trial %d: statistics differ from StatsOf", trial)
		}
	}
	// The core's fold rounds at each of the 17 merges: relative 1e-14 is
	// ~50 ulps of headroom.
	core := coreStats(t, x, y, k, c, rows)
	gw, gc := want.Gram(), core.Gram()
	for i := range d {
		for j := i; j < d; j++ {
			if a, b := gw.At(i, j), gc.At(i, j); math.Abs(a-b) > 1e-14*n*c*c {
				t.Fatalf("Gram(%d, %d) = %v, core %v", i, j, a, b)
			}
		}
	}
	require.Equal(t, core.ClassCounts(), want.ClassCounts())
	require.Equal(t, core.Count(), want.Count())
}
