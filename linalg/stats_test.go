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

// randLabels returns n labels uniform in [0, k).
func randLabels(rnd *rand.Rand, n, k int) []int {
	y := make([]int, n)
	for i := range y {
		y[i] = rnd.IntN(k)
	}
	return y
}

// requireSameStats fails unless a and b hold the same statistics to the bit.
func requireSameStats(t *testing.T, a, b *Stats) {
	t.Helper()
	require.Equal(t, a.d, b.d, "dim")
	require.Equal(t, a.k, b.k, "classes")
	require.Equal(t, a.n, b.n, "count")
	require.Equal(t, a.counts, b.counts, "class counts")
	for i := range a.d {
		for j := i; j < a.d; j++ {
			if x, y := a.gram[i*a.d+j], b.gram[i*a.d+j]; math.Float64bits(x) != math.Float64bits(y) {
				t.Fatalf("Gram(%d, %d) = %v, want %v bit for bit", i, j, x, y)
			}
		}
	}
	for i := range a.sums {
		if x, y := a.sums[i], b.sums[i]; math.Float64bits(x) != math.Float64bits(y) {
			t.Fatalf("class sum (%d, %d) = %v, want %v bit for bit", i/a.d, i%a.d, x, y)
		}
	}
}

func TestStatsNaive(t *testing.T) {
	for _, s := range []struct{ n, d, k int }{
		{1, 1, 1}, {1, 5, 3}, {300, 1, 2}, {gramKC + 3, 13, 4}, {1000, 70, 10}, {700, 150, 0},
	} {
		t.Run(fmt.Sprintf("n=%d/d=%d/k=%d", s.n, s.d, s.k), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(s.n), 9))
			x := randMatrix32(rnd, s.n, s.d)
			var y []int
			if s.k > 0 {
				y = randLabels(rnd, s.n, s.k)
			}
			st, err := NewStats(s.d, s.k)
			require.NoError(t, err)
			// Two batches, the second ending off the block grid.
			h := max(1, s.n/2)
			require.NoError(t, st.Add(x.Slice(0, h), sliceOrNil(y, 0, h)))
			if h < s.n {
				require.NoError(t, st.Add(x.Slice(h, s.n), sliceOrNil(y, h, s.n)))
			}
			require.Equal(t, int64(s.n), st.Count())

			want, abs := naiveGram(x)
			g := st.Gram()
			tol := gramTol(s.n) // see gramTol; one more addition for the merge of batches
			for i := range s.d {
				for j := range s.d {
					if diff := math.Abs(g.At(i, j) - want[i*s.d+j]); diff > tol*abs[i*s.d+j] {
						t.Fatalf("Gram(%d, %d) = %v, want %v", i, j, g.At(i, j), want[i*s.d+j])
					}
				}
			}
			if s.k == 0 {
				require.Nil(t, st.ClassSums())
				return
			}
			counts := make([]int64, s.k)
			sums := make([]float64, s.k*s.d)
			sumAbs := make([]float64, s.k*s.d)
			for r, l := range y {
				counts[l]++
				for j, v := range x.Row(r) {
					sums[l*s.d+j] += float64(v)
					sumAbs[l*s.d+j] += math.Abs(float64(v))
				}
			}
			require.Equal(t, counts, st.ClassCounts())
			cs := st.ClassSums()
			for l := range s.k {
				for j := range s.d {
					// Same float64 sums with one regrouping (the two batches):
					// error ≤ 2·n·2⁻⁵³·Σ|x| as for the Gram.
					if diff := math.Abs(cs.At(l, j) - sums[l*s.d+j]); diff > tol*sumAbs[l*s.d+j] {
						t.Fatalf("ClassSums(%d, %d) = %v, want %v", l, j, cs.At(l, j), sums[l*s.d+j])
					}
				}
			}
		})
	}
}

func sliceOrNil(y []int, i, j int) []int {
	if y == nil {
		return nil
	}
	return y[i:j]
}

// TestStatsShards checks the documented bit-identities: workers and kernel
// do not matter, and a pass of Adds equals merging single-Add shards.
func TestStatsShards(t *testing.T) {
	const d, k = 37, 5
	rnd := rand.New(rand.NewPCG(10, 11))
	sizes := []int{300, 1, gramKC, 777}
	var xs []*Matrix32
	var ys [][]int
	for _, n := range sizes {
		xs = append(xs, randMatrix32(rnd, n, d))
		ys = append(ys, randLabels(rnd, n, k))
	}
	onePass := func(workers int) *Stats {
		s, err := NewStats(d, k)
		require.NoError(t, err)
		s.Workers = workers
		for i := range xs {
			require.NoError(t, s.Add(xs[i], ys[i]))
		}
		return s
	}
	ref := onePass(1)
	t.Run("workers", func(t *testing.T) {
		requireSameStats(t, onePass(2), ref)
		requireSameStats(t, onePass(5), ref)
	})
	t.Run("kernel", func(t *testing.T) {
		for _, asm := range []bool{false, true} {
			withKernel(t, asm, func() { requireSameStats(t, onePass(0), ref) })
		}
	})
	t.Run("merge", func(t *testing.T) {
		merged, err := NewStats(d, k)
		require.NoError(t, err)
		for i := range xs {
			shard, err := NewStats(d, k)
			require.NoError(t, err)
			shard.Workers = 1 + i%2
			require.NoError(t, shard.Add(xs[i], ys[i]))
			require.NoError(t, merged.Merge(shard))
		}
		requireSameStats(t, merged, ref)
	})
	t.Run("serialised shards", func(t *testing.T) {
		// Shards travel as bytes from other machines.
		var merged *Stats
		for i := range xs {
			shard, err := NewStats(d, k)
			require.NoError(t, err)
			require.NoError(t, shard.Add(xs[i], ys[i]))
			b, err := shard.MarshalBinary()
			require.NoError(t, err)
			var got Stats
			require.NoError(t, got.UnmarshalBinary(b))
			if merged == nil {
				merged = &got
			} else {
				require.NoError(t, merged.Merge(&got))
			}
		}
		requireSameStats(t, merged, ref)
	})
}

func TestStatsEncoding(t *testing.T) {
	for _, k := range []int{0, 3} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(12, 13))
			s, err := NewStats(11, k)
			require.NoError(t, err)
			x := randMatrix32(rnd, 50, 11)
			x.Data[3] = math.Nextafter32(MaxAbs, 0) // extreme but valid values survive
			x.Data[4] = 1e-45                       // a float32 subnormal
			var y []int
			if k > 0 {
				y = randLabels(rnd, 50, k)
			}
			require.NoError(t, s.Add(x, y))

			b, err := s.MarshalBinary()
			require.NoError(t, err)
			var fromBin Stats
			require.NoError(t, fromBin.UnmarshalBinary(b))
			requireSameStats(t, &fromBin, s)

			j, err := json.Marshal(s)
			require.NoError(t, err)
			var fromJSON Stats
			require.NoError(t, json.Unmarshal(j, &fromJSON))
			requireSameStats(t, &fromJSON, s)

			// Corruptions are detected and leave the target unchanged.
			for name, bad := range map[string][]byte{
				"empty":     nil,
				"truncated": b[:len(b)-1],
				"trailing":  append(append([]byte(nil), b...), 0),
				"flipped":   flipBit(b, len(b)/2),
				"magic":     flipBit(b, 0),
				"version":   flipBit(b, 8),
			} {
				target := fromBin
				if err := target.UnmarshalBinary(bad); !errors.Is(err, ErrFormat) {
					t.Errorf("%s: error %v, want ErrFormat", name, err)
				}
				requireSameStats(t, &target, s)
			}
			for name, bad := range map[string]string{
				"syntax":  `{"format":`,
				"version": `{"format":"dpopt.linalg.Stats","version":2,"dim":1,"classes":0,"count":0,"classCounts":[],"gramUpper":[0],"classSums":[]}`,
				"length":  `{"format":"dpopt.linalg.Stats","version":1,"dim":2,"classes":0,"count":0,"classCounts":[],"gramUpper":[0],"classSums":[]}`,
				"counts":  `{"format":"dpopt.linalg.Stats","version":1,"dim":1,"classes":1,"count":2,"classCounts":[1],"gramUpper":[1],"classSums":[[1]]}`,
				"row":     `{"format":"dpopt.linalg.Stats","version":1,"dim":1,"classes":1,"count":1,"classCounts":[1],"gramUpper":[1],"classSums":[[1,2]]}`,
				"dim":     `{"format":"dpopt.linalg.Stats","version":1,"dim":0,"classes":0,"count":0,"classCounts":[],"gramUpper":[],"classSums":[]}`,
			} {
				if err := new(Stats).UnmarshalJSON([]byte(bad)); !errors.Is(err, ErrFormat) {
					t.Errorf("JSON %s: error %v, want ErrFormat", name, err)
				}
			}
		})
	}
}

func flipBit(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

func TestStatsErrors(t *testing.T) {
	const d, k = 4, 3
	ok := randMatrix32(rand.New(rand.NewPCG(14, 15)), 5, d)
	okY := []int{0, 1, 2, 0, 1}
	withValue := func(v float32) *Matrix32 {
		x := &Matrix32{Rows: ok.Rows, Cols: d, Data: append([]float32(nil), ok.Data...)}
		x.Data[7] = v
		return x
	}
	cases := []struct {
		name string
		x    *Matrix32
		y    []int
		want error
	}{
		{"empty", &Matrix32{Rows: 0, Cols: d}, nil, ErrEmpty},
		{"nil", nil, okY, ErrEmpty},
		{"dim", randMatrix32(rand.New(rand.NewPCG(1, 1)), 5, d+1), okY, ErrShape},
		{"data length", &Matrix32{Rows: 5, Cols: d, Data: ok.Data[:19]}, okY, ErrShape},
		{"labels length", ok, okY[:4], ErrShape},
		{"no labels", ok, nil, ErrShape},
		{"negative label", ok, []int{0, 1, -1, 0, 1}, ErrLabel},
		{"label K", ok, []int{0, 1, 3, 0, 1}, ErrLabel},
		{"NaN", withValue(float32(math.NaN())), okY, ErrNonFinite},
		{"+Inf", withValue(float32(math.Inf(1))), okY, ErrNonFinite},
		{"-Inf", withValue(float32(math.Inf(-1))), okY, ErrNonFinite},
		{"huge", withValue(-2e30), okY, ErrNonFinite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewStats(d, k)
			require.NoError(t, err)
			require.NoError(t, s.Add(ok, okY))
			before, err := s.MarshalBinary()
			require.NoError(t, err)
			err = s.Add(c.x, c.y)
			if !errors.Is(err, c.want) {
				t.Fatalf("Add: error %v, want %v", err, c.want)
			}
			after, err := s.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, before, after, "Stats changed by a failed Add")
		})
	}
	t.Run("constructor", func(t *testing.T) {
		for _, dk := range [][2]int{{0, 1}, {-1, 0}, {3, -1}} {
			if s, err := NewStats(dk[0], dk[1]); err == nil || s != nil {
				t.Errorf("NewStats(%d, %d) = %v, %v; want an error", dk[0], dk[1], s, err)
			}
		}
	})
	t.Run("merge", func(t *testing.T) {
		a, _ := NewStats(d, k)
		for _, o := range []*Stats{mustStats(t, d+1, k), mustStats(t, d, k+1), nil, {}} {
			if err := a.Merge(o); err == nil {
				t.Errorf("Merge of mismatched statistics: no error")
			}
		}
		var zero Stats
		require.ErrorIs(t, zero.Add(ok, okY), ErrEmpty)
		unlabelled := mustStats(t, d, 0)
		require.ErrorIs(t, unlabelled.Add(ok, okY), ErrShape)
	})
}

func mustStats(t *testing.T, d, k int) *Stats {
	s, err := NewStats(d, k)
	require.NoError(t, err)
	return s
}

// TestClassSumsBits checks that classSums gives, bit for bit, the naive sums
// from zero in row order, for any workers count (which changes how classes
// and columns are split into tasks), with empty, tiny and dominant classes.
func TestClassSumsBits(t *testing.T) {
	for _, s := range []struct{ n, d, k int }{
		{1, 1, 1}, {500, 3, 1}, {500, 130, 2}, {1000, 63, 7}, {2000, 200, 100}, {300, 1, 1000},
	} {
		t.Run(fmt.Sprintf("n=%d/d=%d/k=%d", s.n, s.d, s.k), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(s.n), uint64(s.k)))
			x := randMatrix32(rnd, s.n, s.d)
			y := make([]int, s.n)
			for r := range y {
				if rnd.IntN(3) == 0 {
					y[r] = 0 // a dominant class
				} else {
					y[r] = rnd.IntN(s.k)
				}
			}
			want := make([]float64, s.k*s.d)
			wantCounts := make([]int64, s.k)
			for r, l := range y {
				wantCounts[l]++
				for j, v := range x.Row(r) {
					want[l*s.d+j] += float64(v)
				}
			}
			for _, w := range []int{1, 2, 3, 8} {
				sums, counts := classSums(x, y, s.k, w)
				require.Equal(t, wantCounts, counts, "workers = %d", w)
				for i := range want {
					if math.Float64bits(sums[i]) != math.Float64bits(want[i]) {
						t.Fatalf("workers = %d: sum (%d, %d) = %v, want %v bit for bit", w, i/s.d, i%s.d, sums[i], want[i])
					}
				}
			}
		})
	}
}
