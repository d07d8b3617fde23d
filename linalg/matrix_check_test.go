package linalg

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxAbsBits32 checks the constant against its definition: the largest
// float32 whose value is at most MaxAbs.
func TestMaxAbsBits32(t *testing.T) {
	lim := math.Float32frombits(maxAbsBits32)
	if float64(lim) > MaxAbs {
		t.Fatalf("limit %v above MaxAbs", lim)
	}
	if next := math.Nextafter32(lim, float32(math.Inf(1))); float64(next) <= MaxAbs {
		t.Fatalf("next float32 %v not above MaxAbs", next)
	}
}

// TestCheckFirstBad puts one bad entry at every position of short and long
// vectors and checks that Check reports exactly that entry, as the naive
// per-entry test would, and that values at the limit pass.
func TestCheckFirstBad(t *testing.T) {
	lim := math.Float32frombits(maxAbsBits32)
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Nextafter32(lim, 1e38), -math.Nextafter32(lim, 1e38), 3e38}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cols := range []int{1, 3, 8, 13, 37} {
		for _, rows := range []int{1, 2, 5} {
			m := NewMatrix32(rows, cols)
			for i := range m.Data {
				m.Data[i] = float32(rng.NormFloat64())
			}
			m.Data[rng.IntN(len(m.Data))] = lim
			m.Data[rng.IntN(len(m.Data))] = -lim
			if err := m.Check(); err != nil {
				t.Fatalf("%d×%d at the limit: %v", rows, cols, err)
			}
			for pos := range m.Data {
				for _, b := range bad {
					old := m.Data[pos]
					m.Data[pos] = b
					// A second bad entry later must not be the one reported.
					if pos+1 < len(m.Data) {
						m.Data[len(m.Data)-1] = float32(math.NaN())
					}
					if got := firstBad32(m.Data); got != pos {
						t.Fatalf("%d×%d: bad %v at %d, found at %d", rows, cols, b, pos, got)
					}
					if err := m.Check(); !errors.Is(err, ErrNonFinite) {
						t.Fatalf("%d×%d: bad %v at %d: %v", rows, cols, b, pos, err)
					}
					m.Data[len(m.Data)-1] = lim
					m.Data[pos] = old
				}
			}
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	m := NewMatrix32(50000, 768)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range m.Data {
		m.Data[i] = float32(rng.NormFloat64())
	}
	b.SetBytes(int64(4 * len(m.Data)))
	for b.Loop() {
		if err := m.Check(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckParallelFirst puts bad entries in several chunks of a matrix long
// enough for the parallel scan and checks that the first one is reported.
func TestCheckParallelFirst(t *testing.T) {
	m := NewMatrix32(5*checkChunk/100+3, 100)
	require := func(want int) {
		t.Helper()
		if got := firstBadParallel(m.Data); got != want {
			t.Fatalf("first bad entry at %d, want %d", got, want)
		}
	}
	require(-1)
	for _, pos := range []int{len(m.Data) - 1, 3*checkChunk + 5, 3*checkChunk + 2, checkChunk, 7} {
		m.Data[pos] = float32(math.NaN())
		require(pos)
		if err := m.Check(); !errors.Is(err, ErrNonFinite) {
			t.Fatalf("bad entry at %d: %v", pos, err)
		}
	}
}
