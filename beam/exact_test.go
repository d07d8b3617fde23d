package dpbeam

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactRef returns the correctly rounded float64 of the exact sum of xs.
func exactRef(xs []float64) float64 {
	s := new(big.Float).SetPrec(4000)
	for _, x := range xs {
		s.Add(s, new(big.Float).SetPrec(4000).SetFloat64(x))
	}
	f, _ := s.Float64() // nearest, ties to even
	return f
}

func TestFixedExactAndOrderFree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		xs := make([]float64, n)
		for i := range xs {
			// Products of float32 values of widely varying scale and sign,
			// with cancellation: multiples of 2⁻²⁹⁸ below 2⁴⁰.
			a := float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(60)-40))
			b := float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(60)-40))
			xs[i] = float64(a) * float64(b)
			if trial%3 == 0 && i%2 == 1 {
				xs[i] = -xs[i-1] * (1 + 0x1p-40)
			}
		}
		lsb, w := fixedLayout(gramLSB, 0x1p40)
		whole := newFixed(1, lsb, w)
		for _, x := range xs {
			if err := whole.add(0, x); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := whole.float(0), exactRef(xs); got != want {
			t.Fatalf("trial %d: got %v, want the correctly rounded %v", trial, got, want)
		}
		// Random parts merged in a random order give the same bits.
		parts := make([]*fixed, 1+rng.IntN(5))
		for i := range parts {
			parts[i] = newFixed(1, lsb, w)
		}
		for _, j := range rng.Perm(n) {
			if err := parts[rng.IntN(len(parts))].add(0, xs[j]); err != nil {
				t.Fatal(err)
			}
		}
		for len(parts) > 1 {
			i := rng.IntN(len(parts) - 1)
			if err := parts[i].merge(parts[i+1]); err != nil {
				t.Fatal(err)
			}
			parts = append(parts[:i+1], parts[i+2:]...)
		}
		if got, want := parts[0].float(0), whole.float(0); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("trial %d: merged %v, want %v", trial, got, want)
		}
	}
}

func TestFixedRoundsToGrid(t *testing.T) {
	f := newFixed(1, -10, 2)
	// 2⁻¹¹ is half a step: ties to even gives 0; 3·2⁻¹¹ gives 2·2⁻¹⁰.
	for _, c := range []struct{ x, want float64 }{{0x1p-11, 0}, {3 * 0x1p-11, 0x1p-9}, {-3 * 0x1p-11, -0x1p-9}, {0x1p-80, 0}} {
		f.v[0], f.v[1] = 0, 0
		if err := f.add(0, c.x); err != nil {
			t.Fatal(err)
		}
		if got := f.float(0); got != c.want {
			t.Errorf("add(%g): got %g, want %g", c.x, got, c.want)
		}
	}
	if err := f.add(0, math.NaN()); err == nil {
		t.Error("NaN accepted")
	}
	if err := f.add(0, 0x1p120); err == nil {
		t.Error("overflow not detected")
	}
}
