package dp

import (
	"math"
	"math/rand/v2"
	"testing"
)

// stdNorm is math/rand/v2's NormFloat64, the sampler probeZiggurat models.
func stdNorm(r *rand.Rand) float64 { return r.NormFloat64() }

// zigTail is a bound below the ziggurat's base-strip edge r ≈ 3.4426: a draw
// beyond it came from NormFloat64's tail loop, which the fast path never takes.
const zigTail = 3.44

// sameNormalsAsStdlib draws at least n normals from p, in chunks of varied
// length, through Normal and through addGaussianPlain, interleaved with
// Uint64 calls, and the same from math/rand/v2 over a fresh ChaCha8 with
// seed's key; it fails t at the first bit that differs, and checks that the
// next Uint64 of both agrees. It returns the number of tail draws it saw.
func sameNormalsAsStdlib(t *testing.T, p *plain, seed uint64, n int) (tails int) {
	t.Helper()
	ref := rand.New(rand.NewChaCha8(seededKey(seed)))
	lens := []int{1, 7, 0, 31, 32, 33, 4096, 7840, 2, 1000, 12345, 127, 129}
	got, want := make([]float64, 12345), make([]float64, 12345)
	bits := math.Float64bits
	for c, drawn := 0, 0; drawn < n; c++ {
		m := lens[c%len(lens)]
		g, w := got[:m], want[:m]
		if c%2 == 0 {
			p.Normal(g)
			for i := range w {
				w[i] = ref.NormFloat64()
			}
		} else { // dst += σ·z on values with all sorts of exponents
			const sigma = 0.7310585786300049
			for i := range g {
				g[i] = float64(i-m/2) * 1.25e-3
				w[i] = g[i]
			}
			addGaussianPlain(g, sigma, p)
			for i := range w {
				w[i] += sigma * ref.NormFloat64()
			}
		}
		for i := range g {
			if bits(g[i]) != bits(w[i]) {
				t.Fatalf("seed %d, chunk %d (len %d, after %d draws): draw %d is %v (%#x), math/rand/v2 gives %v (%#x)",
					seed, c, m, drawn, i, g[i], bits(g[i]), w[i], bits(w[i]))
			}
			if c%2 == 0 && math.Abs(g[i]) > zigTail {
				tails++
			}
		}
		drawn += m
		for k := range c % 3 {
			if a, b := p.Uint64(), ref.Uint64(); a != b {
				t.Fatalf("seed %d, chunk %d: Uint64 #%d after the draws is %#x, math/rand/v2's stream gives %#x", seed, c, k, a, b)
			}
		}
	}
	if a, b := p.Uint64(), ref.Uint64(); a != b {
		t.Fatalf("seed %d: the stream after the draws is at %#x, math/rand/v2's at %#x", seed, a, b)
	}
	return tails
}

// TestSeededNormalSameBits checks that the fast path of NewSeededSource gives
// math/rand/v2's NormFloat64 bits over its ChaCha8, two million draws a seed,
// leaves the stream where NormFloat64 would, and takes the slow path (wedges
// and tails) as it goes.
func TestSeededNormalSameBits(t *testing.T) {
	n := 2_000_000
	if testing.Short() {
		n = 200_000
	}
	for _, seed := range []uint64{0, 1, 42, 1<<63 + 12345} {
		p := NewSeededSource(seed).(*plain)
		if p.cc == nil {
			t.Fatal("the fast path is off: math/rand/v2's NormFloat64 no longer fits the probed model (the bits are still right, but slower)")
		}
		tails := sameNormalsAsStdlib(t, p, seed, n)
		frac := float64(p.slowDraws) / float64(n)
		t.Logf("seed %d: %d of about %d draws took the slow path (%.2f%%), %d of them tails", seed, p.slowDraws, n, 100*frac, tails)
		if p.slowDraws == 0 || tails == 0 {
			t.Errorf("seed %d: %d slow draws and %d tail draws: the slow path went untested", seed, p.slowDraws, tails)
		}
		if frac > 0.05 {
			t.Errorf("seed %d: %.2f%% of draws took the slow path, expected about 2.8%%", seed, 100*frac)
		}
	}
}

// TestSeededNormalFallback checks that a seeded plain whose fast path is off
// (setFast given no tables, as when the probe fails) gives the same bits
// through NormFloat64 alone.
func TestSeededNormalFallback(t *testing.T) {
	const seed = 7
	cc := rand.NewChaCha8(seededKey(seed))
	p := newPlain(cc)
	p.setFast(cc, nil)
	if p.cc != nil || p.rr != nil {
		t.Fatal("setFast(cc, nil) turned the fast path on")
	}
	sameNormalsAsStdlib(t, p, seed, 300_000)
	if p.slowDraws != 0 {
		t.Fatalf("%d draws went through the fast path's slow draw with the fast path off", p.slowDraws)
	}

	// The fast and the fallback path continue each other's stream.
	a, b := NewSeededSource(seed).(*plain), NewSeededSource(seed).(*plain)
	b.cc = nil
	za, zb := make([]float64, 5000), make([]float64, 5000)
	for k := range 20 {
		if k%2 == 0 {
			a.cc, a.zig = nil, nil
		} else {
			a.setFast(a.src.(*rand.ChaCha8), fastZig())
		}
		a.Normal(za)
		b.Normal(zb)
		for i := range za {
			if math.Float64bits(za[i]) != math.Float64bits(zb[i]) {
				t.Fatalf("round %d, draw %d: %v after switching paths, %v without", k, i, za[i], zb[i])
			}
		}
	}
}

// TestProbeZiggurat checks the probe: it reads math/rand/v2's tables in a form
// that honours |MinInt32| = 2^31, and it refuses samplers that do not follow
// the model, so that the fast path stays off for them.
func TestProbeZiggurat(t *testing.T) {
	zt := probeZiggurat(stdNorm)
	if zt == nil {
		t.Fatal("probeZiggurat refuses math/rand/v2's NormFloat64")
	}
	if !verifyFast(zt) {
		t.Fatal("verifyFast refuses the probed tables")
	}
	for i, kn := range zt.kn {
		if kn > 1<<31-1 {
			t.Errorf("strip %d: kn = %#x accepts j = MinInt32, which NormFloat64 rejects", i, kn)
		}
		if (kn == 0) != (zt.wn[i] == 0) {
			t.Errorf("strip %d: kn = %#x with wn = %v", i, kn, zt.wn[i])
		}
	}

	// Samplers that must be refused.
	reshape := func(f func(u uint64) uint64) func(*rand.Rand) float64 {
		return func(r *rand.Rand) float64 {
			first := true
			return rand.New(wordFunc(func() uint64 {
				u := r.Uint64()
				if first {
					first, u = false, f(u)
				}
				return u
			})).NormFloat64()
		}
	}
	bad := []struct {
		name string
		norm func(*rand.Rand) float64
	}{
		{"strip from other bits", reshape(func(u uint64) uint64 { return u&^(0x7F<<32) | (u>>40&0x7F)<<32 })},
		{"sign from bit 40", reshape(func(u uint64) uint64 {
			if u>>40&1 == 1 {
				return u&^0xFFFFFFFF | uint64(uint32(-int32(u)))
			}
			return u
		})},
		{"off by an ulp on odd words", func(r *rand.Rand) float64 {
			odd := false
			x := rand.New(wordFunc(func() uint64 {
				u := r.Uint64()
				odd = odd || u&1 == 1
				return u
			})).NormFloat64()
			if odd {
				return math.Nextafter(x, math.Inf(1))
			}
			return x
		}},
		{"one word, always", func(r *rand.Rand) float64 { return float64(int32(r.Uint64())) }},
		{"two words, always", func(r *rand.Rand) float64 { r.Uint64(); return r.NormFloat64() }},
		{"never done", func(r *rand.Rand) float64 {
			for {
				r.Uint64()
			}
		}},
		{"panics", func(r *rand.Rand) float64 { panic("no") }},
	}
	for _, c := range bad {
		if probeZiggurat(c.norm) != nil {
			t.Errorf("probeZiggurat accepts a sampler that is not NormFloat64's model: %s", c.name)
		}
	}

	// Tables that must fail verifyFast: one width off by an ulp.
	off := *zt
	off.wn[5] = math.Nextafter(off.wn[5], 1)
	if verifyFast(&off) {
		t.Error("verifyFast accepts a width off by an ulp")
	}
}

// wordFunc is a rand.Source from a function.
type wordFunc func() uint64

// Uint64 implements rand.Source.
func (f wordFunc) Uint64() uint64 { return f() }
