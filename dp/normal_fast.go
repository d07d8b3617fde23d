package dp

import (
	"math"
	"math/rand/v2"
	"sync"
)

// The fast path of the seeded normal sampler.
//
// math/rand/v2's NormFloat64 is a ziggurat sampler: it draws one word u, takes
// j = int32(u) and the strip i = u>>32 & 0x7F, and returns float64(j)·w[i]
// at once when |j| < k[i], which is over 98% of draws; otherwise it goes on
// with more draws (a wedge or tail test) and possibly starts over. Its
// per-strip constants k and w are not exported, so the fast path learns them
// by probing NormFloat64 through its public API (probeZiggurat), checks the
// result against NormFloat64 itself (verifyFast), and computes only the
// accepted one-word draws itself (zigTables.draw, called by plain.Normal and
// addGaussianPlain on words read from the *rand.ChaCha8 directly): every
// other draw is handed, with its first word pushed back, to NormFloat64
// (plain.slowNormal), which then makes exactly the draws and the computations
// it would have made. If the probe or the check finds anything out of place,
// the fast path stays off and plain uses NormFloat64 for every draw, so the
// bits never differ from math/rand/v2's.
//
// The gain is modest (about 1.2-1.3× on amd64): the stdlib path pays little
// for its interface call, and most of a draw's cost is the ChaCha8 word
// itself (the call to (*rand.ChaCha8).Uint64, which does not inline, and its
// block function), which both paths pay. About 2.8% of draws (all of strip 1,
// whose k is 0, and the wedge and tail rejections) take the slow path.

// zigStrips is the number of strips of math/rand/v2's ziggurat.
const zigStrips = 128

// zigTables is the one-word part of math/rand/v2's ziggurat sampler, as
// probed: a word u with j = int32(u) and i = u>>32 & (zigStrips-1) yields
// float64(j)·wn[i] without further draws exactly when absInt32(j) < kn[i].
// wn[i] is 0 for a strip whose kn[i] is 0 (it never yields at once).
type zigTables struct {
	kn [zigStrips]uint32
	wn [zigStrips]float64
}

// absInt32 is |j| as NormFloat64 compares it: uint32(-j) for a negative j,
// which makes |MinInt32| = 2^31 (probeZiggurat checks the strips' bounds on
// both signs).
func absInt32(j int32) uint32 {
	if j < 0 {
		return uint32(-j)
	}
	return uint32(j)
}

// draw is the model of NormFloat64's first step on the word u: the value it
// returns and true when it needs no further word, or false.
func (t *zigTables) draw(u uint64) (float64, bool) {
	j := int32(u)
	i := u >> 32 & (zigStrips - 1)
	if absInt32(j) < t.kn[i] {
		return float64(j) * t.wn[i], true
	}
	return 0, false
}

// slowNormal finishes a draw whose first word u, taken from p.cc, the fast
// path cannot take (zigTables.draw refused it): it pushes u back in front of
// the stream and lets NormFloat64 do the rest. It is kept out of line so that
// the fast loops stay small.
//
//go:noinline
func (p *plain) slowNormal(u uint64) float64 {
	p.slowDraws++
	p.rep.w, p.rep.pending = u, true
	return p.rr.NormFloat64()
}

// setFast turns the fast path on over cc, which must be p.src, with the tables
// t; a nil t leaves it off.
func (p *plain) setFast(cc *rand.ChaCha8, t *zigTables) {
	if t == nil {
		return
	}
	p.cc, p.zig = cc, t
	p.rep = replaySource{cc: cc}
	p.rr = rand.New(&p.rep)
}

// replaySource is a ChaCha8 with at most one word pushed back in front of it:
// Uint64 returns the pushed word first, then continues the ChaCha8 stream.
type replaySource struct {
	cc      *rand.ChaCha8
	w       uint64 // the pushed-back word, if pending
	pending bool
}

// Uint64 implements rand.Source.
func (s *replaySource) Uint64() uint64 {
	if s.pending {
		s.pending = false
		return s.w
	}
	return s.cc.Uint64()
}

// fastZig returns the verified tables of math/rand/v2's NormFloat64, or nil
// if the fast path must stay off. It probes once, on the first call (by the
// first NewSeededSource; it takes about a millisecond), not at package init.
var fastZig = sync.OnceValue(func() *zigTables {
	t := probeZiggurat(func(r *rand.Rand) float64 { return r.NormFloat64() })
	if t == nil || !verifyFast(t) {
		return nil
	}
	return t
})

// probeMaxWords bounds the words one probed call may ask for: NormFloat64
// over probeSource's zeros ends in at most three.
const probeMaxWords = 64

// errProbeRunaway is the panic of a probeSource asked for too many words.
type errProbeRunaway struct{}

// probeSource is the rand.Source of the probe: it returns first, then zeros,
// and counts the words it is asked for.
type probeSource struct {
	first uint64
	words int
}

// Uint64 implements rand.Source.
func (s *probeSource) Uint64() uint64 {
	s.words++
	switch {
	case s.words == 1:
		return s.first
	case s.words > probeMaxWords:
		panic(errProbeRunaway{})
	}
	return 0
}

// prober runs a normal sampler on a probeSource.
type prober struct {
	norm func(*rand.Rand) float64
	src  probeSource
	r    *rand.Rand
}

// run returns norm's value when its first word is u, and whether it asked for
// no other word.
func (pr *prober) run(u uint64) (float64, bool) {
	pr.src = probeSource{first: u}
	x := pr.norm(pr.r)
	return x, pr.src.words == 1
}

// probeVerifyWords is how many ChaCha8 words probeZiggurat feeds to both the
// sampler and its model, and verifyFast's number of draws.
const probeVerifyWords = 1 << 13

// probeZiggurat learns the one-word part of the normal sampler norm, a
// NormFloat64 on the given *rand.Rand, and returns it, or nil if norm does not
// follow the model of zigTables.draw: for each strip i it finds kn[i] by binary
// search on |j| (the least |j| that makes norm ask for a second word), checks
// the bound on both signs, reads wn[i] as the value for j = 1, and then
// compares norm with the model on edge words and on pseudo-random words.
func probeZiggurat(norm func(*rand.Rand) float64) (t *zigTables) {
	defer func() {
		if recover() != nil { // a runaway or broken sampler: no fast path
			t = nil
		}
	}()
	pr := &prober{norm: norm}
	pr.r = rand.New(&pr.src)
	t = new(zigTables)
	// word is the first word with strip i and j = sign·a, 0 ≤ a ≤ 2^31.
	word := func(i uint64, a uint32, neg bool) uint64 {
		if neg {
			a = -a
		}
		return i<<32 | uint64(a)
	}
	accepts := func(i uint64, a uint32, neg bool) bool {
		_, once := pr.run(word(i, a, neg))
		return once
	}
	fast := 0
	for i := range uint64(zigStrips) {
		// The least a in [0, 2^31] that norm rejects (on j = +a).
		lo, hi := uint64(0), uint64(1)<<31
		if accepts(i, uint32(hi), false) {
			return nil // even |MinInt32| accepted: not the modelled sampler
		}
		for lo < hi {
			mid := (lo + hi) / 2
			if accepts(i, uint32(mid), false) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		kn := uint32(lo)
		if kn == 1 {
			return nil // only j = 0 yields at once: wn[i] cannot be read
		}
		if kn > 0 {
			if !accepts(i, kn-1, true) || !accepts(i, kn-1, false) {
				return nil
			}
			x, _ := pr.run(word(i, 1, false))
			if !(x > 0) || math.IsInf(x, 0) || x != float64(float32(x)) {
				return nil // the model wants a positive float32 width
			}
			t.wn[i] = x
			fast++
		}
		if accepts(i, kn, true) {
			return nil
		}
		t.kn[i] = kn
	}
	if fast < zigStrips/2 {
		return nil // not a ziggurat that the fast path can speed up
	}
	check := func(u uint64) bool {
		x, once := pr.run(u)
		y, ok := t.draw(u)
		return once == ok && (!ok || math.Float64bits(x) == math.Float64bits(y))
	}
	for i := range uint64(zigStrips) {
		kn := t.kn[i]
		for _, a := range []uint32{0, 1, 2, kn - 1, kn, kn + 1, 1<<31 - 1, 1 << 31} {
			if !check(word(i, a, false)) || !check(word(i, a, true)) || !check(word(i, a, false)|0xFFFFFF80<<32) {
				return nil
			}
		}
	}
	var key [32]byte
	copy(key[:], "dpopt/dp ziggurat probe words")
	cc := rand.NewChaCha8(key)
	for range probeVerifyWords {
		if !check(cc.Uint64()) {
			return nil
		}
	}
	return t
}

// verifyFast reports whether a plain with the fast path on tables t gives
// exactly the normals of math/rand/v2's NormFloat64 over the same ChaCha8,
// through some slow draws, and leaves the stream at the same word.
func verifyFast(t *zigTables) bool {
	var key [32]byte
	copy(key[:], "dpopt/dp ziggurat verify stream")
	cc := rand.NewChaCha8(key)
	p := newPlain(cc)
	p.setFast(cc, t)
	ref := rand.New(rand.NewChaCha8(key))
	z := make([]float64, probeVerifyWords)
	p.Normal(z)
	for _, x := range z {
		if math.Float64bits(x) != math.Float64bits(ref.NormFloat64()) {
			return false
		}
	}
	return p.slowDraws > 0 && p.Uint64() == ref.Uint64()
}
