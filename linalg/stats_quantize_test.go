package linalg

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuantum(t *testing.T) {
	for _, c := range []struct {
		c    float64
		bits int
		want float64
	}{
		{1, 16, 0x1p-16},
		{0.75, 1, 0x1p-2},
		{3, 8, 0x1p-7},
		{4, 8, 0x1p-6},
		{1e-3, 20, 0x1p-30},
	} {
		got, err := Quantum(c.c, c.bits)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "Quantum(%g, %d)", c.c, c.bits)
		require.LessOrEqual(t, got, c.c*math.Ldexp(1, -c.bits), "Quantum(%g, %d) above C·2⁻ᵇ", c.c, c.bits)
		require.Greater(t, 2*got, c.c*math.Ldexp(1, -c.bits), "Quantum(%g, %d) not the largest power of two", c.c, c.bits)
	}
	for _, c := range []struct {
		c    float64
		bits int
	}{{0, 16}, {-1, 16}, {math.Inf(1), 16}, {math.NaN(), 16}, {1, 0}, {1, MaxQuantizeBits + 1}, {1e-40, 24}} {
		_, err := Quantum(c.c, c.bits)
		require.ErrorIs(t, err, ErrParam, "Quantum(%g, %d)", c.c, c.bits)
	}
}

func TestQuantize(t *testing.T) {
	const q = 0x1p-10
	x := &Matrix32{Rows: 1, Cols: 6, Data: []float32{0.3, -0.3, 0x1p-11, -0x1p-11, 5, float32(math.NaN())}}
	require.NoError(t, Quantize(x, q))
	want := []float64{math.Trunc(float64(float32(0.3))/q) * q, -math.Trunc(float64(float32(0.3))/q) * q, 0, 0, 5}
	for i, w := range want {
		require.Equal(t, float32(w), x.Data[i], "entry %d", i)
	}
	require.True(t, math.IsNaN(float64(x.Data[5])))
	require.ErrorIs(t, Quantize(x, 0.3), ErrParam)
	require.ErrorIs(t, Quantize(x, 0), ErrParam)

	// Norms never grow, every entry lands on the grid, and keeps its sign.
	rnd := rand.New(rand.NewPCG(3, 4))
	y := randMatrix32(rnd, 200, 7)
	z := &Matrix32{Rows: y.Rows, Cols: y.Cols, Data: append([]float32(nil), y.Data...)}
	require.NoError(t, Quantize(z, q))
	for i, v := range z.Data {
		require.LessOrEqual(t, math.Abs(float64(v)), math.Abs(float64(y.Data[i])))
		require.Less(t, math.Abs(float64(v-y.Data[i])), q)
		require.Equal(t, float64(v)/q, math.Trunc(float64(v)/q))
	}
}

// clippedRows returns n rows of dimension d with norms spread around c and
// clipped to c, as a solver feeds statistics.
func clippedRows(rnd *rand.Rand, n, d int, c float64) *Matrix32 {
	x := NewMatrix32(n, d)
	for i := range n {
		scale := math.Exp(rnd.NormFloat64())
		row := x.Data[i*d : (i+1)*d]
		var ss float64
		for j := range row {
			row[j] = float32(rnd.NormFloat64() * scale)
			ss += float64(row[j]) * float64(row[j])
		}
		if nrm := math.Sqrt(ss); nrm > c {
			for j := range row {
				row[j] = float32(float64(row[j]) * c / nrm)
			}
		}
	}
	return x
}

// exactQuantizedStats computes the statistics of x quantised to q with
// integer arithmetic: entries are m·q with |m| < 2²⁵, so Σ m_i m_j fits in an
// int64 for the sizes used here.
func exactQuantizedStats(x *Matrix32, y []int, k int, q float64) (gram, sums []float64) {
	d := x.Cols
	m := make([]int64, len(x.Data))
	for i, v := range x.Data {
		m[i] = int64(math.Trunc(float64(v) / q))
	}
	g := make([]int64, d*d)
	s := make([]int64, k*d)
	for r := range x.Rows {
		row := m[r*d : (r+1)*d]
		for i := range d {
			for j := i; j < d; j++ {
				g[i*d+j] += row[i] * row[j]
			}
			if k > 0 {
				s[y[r]*d+i] += row[i]
			}
		}
	}
	gram, sums = make([]float64, d*d), make([]float64, k*d)
	for i, v := range g {
		gram[i] = float64(v) * q * q // |v| < 2⁵³: exact
	}
	for i, v := range s {
		sums[i] = float64(v) * q
	}
	return gram, sums
}

// Quantised statistics are the exact statistics of the quantised rows, to
// the bit, however the rows are split into Adds, shards and merges, with
// any Workers and either Gram kernel.
func TestQuantizedStatsGroupingFree(t *testing.T) {
	const n, d, k, c, bits = 3000, 37, 4, 2.0, 16
	rnd := rand.New(rand.NewPCG(5, 6))
	x := clippedRows(rnd, n, d, c)
	y := randLabels(rnd, n, k)
	q, err := Quantum(c, bits)
	require.NoError(t, err)
	wantG, wantS := exactQuantizedStats(x, y, k, q)

	build := func(cuts []int, workers int) *Stats {
		s, err := NewQuantizedStats(d, k, q)
		require.NoError(t, err)
		s.Workers = workers
		for i := 0; i+1 < len(cuts); i++ {
			require.NoError(t, s.Add(x.Slice(cuts[i], cuts[i+1]), y[cuts[i]:cuts[i+1]]))
		}
		return s
	}
	one := build([]int{0, n}, 0)
	require.Equal(t, q, one.Quantum())
	for i := range d {
		for j := i; j < d; j++ {
			require.Equal(t, wantG[i*d+j], one.gram[i*d+j], "Gram(%d, %d) not exact", i, j)
		}
	}
	require.Equal(t, wantS, one.sums, "class sums not exact")

	for _, asm := range []bool{true, false} {
		t.Run(fmt.Sprintf("asm=%v", asm), func(t *testing.T) {
			withKernel(t, asm, func() {
				for trial := range 4 {
					// Random cuts into Adds, random shards, merged in a random order.
					cuts := []int{0}
					for cuts[len(cuts)-1] < n {
						cuts = append(cuts, min(n, cuts[len(cuts)-1]+1+rnd.IntN(900)))
					}
					requireSameStats(t, build(cuts, 1+trial), one)
					var shards []*Stats
					for i := 0; i+1 < len(cuts); i++ {
						shards = append(shards, build(cuts[i:i+2], 1+trial))
					}
					rnd.Shuffle(len(shards), func(i, j int) { shards[i], shards[j] = shards[j], shards[i] })
					for len(shards) > 1 { // a random merge tree
						i := rnd.IntN(len(shards) - 1)
						require.NoError(t, shards[i].Merge(shards[i+1]))
						shards = append(shards[:i+1], shards[i+2:]...)
					}
					requireSameStats(t, shards[0], one)
				}
			})
		})
	}
}

// The exactness limit 2⁵³·q² is enforced by Add and Merge, which then leave
// the statistics unchanged.
func TestQuantizedStatsInexact(t *testing.T) {
	q, err := Quantum(1, 24) // 2⁻²⁴: limit 2⁵³·2⁻⁴⁸ = 32
	require.NoError(t, err)
	x := NewMatrix32(20, 2)
	for r := range x.Rows {
		x.Data[2*r] = 1 // diagonal entry 0 grows by 1 per row
	}
	s, err := NewQuantizedStats(2, 0, q)
	require.NoError(t, err)
	require.NoError(t, s.Add(x, nil))
	before, err := s.MarshalBinary()
	require.NoError(t, err)
	require.ErrorIs(t, s.Add(x, nil), ErrInexact) // 40 ≥ 32
	require.ErrorIs(t, s.Merge(s), ErrInexact)
	after, err := s.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, before, after, "a refused Add or Merge changed the statistics")
	big := NewMatrix32(40, 2)
	for r := range big.Rows {
		big.Data[2*r+1] = 1
	}
	t2, err := NewQuantizedStats(2, 0, q)
	require.NoError(t, err)
	require.ErrorIs(t, t2.Add(big, nil), ErrInexact, "a single block over the limit")

	// Mixing quantisations is a shape error.
	u, err := NewStats(2, 0)
	require.NoError(t, err)
	require.NoError(t, u.Add(x, nil))
	require.ErrorIs(t, s.Merge(u), ErrShape)
	require.ErrorIs(t, u.Merge(s), ErrShape)
	_, err = NewQuantizedStats(2, 0, 0.1)
	require.ErrorIs(t, err, ErrParam)

	// A bad entry is reported even where truncation would hide it.
	bad := NewMatrix32(1, 2)
	bad.Data[0] = float32(math.Inf(1))
	require.ErrorIs(t, t2.Add(bad, nil), ErrNonFinite)
}

func TestQuantizedStatsEncoding(t *testing.T) {
	const n, d, k = 500, 9, 3
	rnd := rand.New(rand.NewPCG(8, 9))
	x := clippedRows(rnd, n, d, 1)
	y := randLabels(rnd, n, k)
	q, err := Quantum(1, 12)
	require.NoError(t, err)
	s, err := NewQuantizedStats(d, k, q)
	require.NoError(t, err)
	require.NoError(t, s.Add(x, y))

	b, err := s.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, uint8(statsVersionQuantized), b[len(statsMagic)], "binary version")
	var got Stats
	require.NoError(t, got.UnmarshalBinary(b))
	requireSameStats(t, &got, s)
	require.Equal(t, q, got.Quantum())

	j, err := json.Marshal(s)
	require.NoError(t, err)
	var fromJSON Stats
	require.NoError(t, json.Unmarshal(j, &fromJSON))
	requireSameStats(t, &fromJSON, s)
	require.Equal(t, q, fromJSON.Quantum())

	// A round trip keeps merging exact with statistics made afresh.
	require.NoError(t, got.Merge(s))

	// Off-grid values, a bad quantum, or version 2 without a quantum are
	// malformed.
	var m map[string]any
	require.NoError(t, json.Unmarshal(j, &m))
	for name, edit := range map[string]func(map[string]any){
		"off grid":     func(m map[string]any) { m["gramUpper"].([]any)[1] = m["gramUpper"].([]any)[1].(float64) + q*q/2 },
		"bad quantum":  func(m map[string]any) { m["quantum"] = 0.3 },
		"no quantum":   func(m map[string]any) { delete(m, "quantum") },
		"v1 quantised": func(m map[string]any) { m["version"] = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			var c map[string]any
			require.NoError(t, json.Unmarshal(j, &c))
			edit(c)
			bad, err := json.Marshal(c)
			require.NoError(t, err)
			err = new(Stats).UnmarshalJSON(bad)
			require.True(t, errors.Is(err, ErrFormat), "got %v, want ErrFormat", err)
		})
	}
}
