package dp

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
)

// A Source supplies all randomness of a DP computation: uniform bits (for
// Poisson sampling and shuffles) and standard normal draws (for noise).
// Randomness is always an argument, never a global; a nil Source is an error.
type Source interface {
	rand.Source           // uniform 64-bit words
	Normal(dst []float64) // fills dst with independent N(0, 1) draws
}

// A GaussianAdder is a Source that adds Gaussian noise itself. It is an
// optional interface, found by type assertion: AddGaussian and every mechanism
// of this package hand the noise addition to the Source when it implements
// GaussianAdder, which is how the Sources returned by NewSecureSource and
// Harden make every Gaussian release go through the hardened sampler.
//
// AddGaussian adds independent N(0, sigma²) noise to every element of dst,
// leaving dst unchanged if it returns an error. The caller has already checked
// that sigma is positive and finite and that dst holds finite values.
type GaussianAdder interface {
	AddGaussian(dst []float64, sigma float64) error
}

// NewSeededSource returns a fast, deterministic Source: ChaCha8 (math/rand/v2)
// keyed by seed, with N(0, 1) draws from math/rand/v2's ziggurat sampler. The
// same seed gives the same bits and the same normals, on every platform and Go
// release that keeps math/rand/v2's ChaCha8 and NormFloat64 stable.
//
// Successive calls continue the stream: no draw is ever reused. It is meant for
// research and tests. Its noise is a plain floating-point N(0, 1) scaled by σ,
// which is exposed to the floating-point attacks of Mironov (2012); use
// NewSecureSource for releases that must resist them.
//
// The Source is not safe for concurrent use.
func NewSeededSource(seed uint64) Source {
	cc := rand.NewChaCha8(seededKey(seed))
	p := newPlain(cc)
	p.setFast(cc, fastZig())
	p.seed = seed
	return p
}

// seededKey is the ChaCha8 key of NewSeededSource(seed).
func seededKey(seed uint64) [32]byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:8], seed)
	copy(key[8:], "dpopt/dp seeded source v1")
	return key
}

// NewSecureSource returns a Source for releases that must be secure: a ChaCha8
// generator keyed with 32 bytes from crypto/rand (ChaCha8 is the CSPRNG that
// the Go runtime itself uses), wrapped by Harden, so that its Normal draws and
// all Gaussian noise added through this package come from the hardened
// sampler of AddSecureGaussian.
//
// The Source is not safe for concurrent use.
func NewSecureSource() Source {
	var key [32]byte
	_, _ = crand.Read(key[:]) // crypto/rand.Read never fails (Go ≥ 1.24).
	return Harden(newPlain(rand.NewChaCha8(key)))
}

// plain is a Source over a rand.Source, with the ziggurat normal sampler.
//
// Its normals are always those of r.NormFloat64, in order. When src is a
// *rand.ChaCha8 and setFast has found math/rand/v2's ziggurat tables, Normal
// and addGaussianPlain take a faster road to the same bits (see zigTables):
// they read words from cc directly and finish the rare slow draws by handing
// their first word back to NormFloat64 through rep, so src, r and rr all share
// the one ChaCha8 stream and Uint64 continues it exactly where the stdlib path
// would.
type plain struct {
	src  rand.Source
	r    *rand.Rand
	seed uint64 // the seed of NewSeededSource (a secure source's plain part is never exposed)

	cc        *rand.ChaCha8 // src, when the fast path is on; nil otherwise
	zig       *zigTables    // the fast path's tables, when cc is set
	rep       replaySource  // cc with one word pushed back, for slow draws
	rr        *rand.Rand    // rand.New(&rep)
	slowDraws uint64        // draws the fast path handed to NormFloat64 (tests read it)
}

// A Seeded Source can say the seed it was made from, so that a run's report
// can record it and the run can be replayed. Sources from NewSeededSource
// implement it; secure sources do not, so a report can never mistake one for
// the other.
type Seeded interface {
	Source
	Seed() uint64
}

// Seed returns the seed of a Source made by NewSeededSource.
func (p *plain) Seed() uint64 { return p.seed }

func newPlain(src rand.Source) *plain {
	return &plain{src: src, r: rand.New(src)}
}

// Uint64 implements rand.Source.
func (p *plain) Uint64() uint64 { return p.src.Uint64() }

// Normal fills dst with independent N(0, 1) draws.
func (p *plain) Normal(dst []float64) {
	if p.cc == nil {
		for i := range dst {
			dst[i] = p.r.NormFloat64()
		}
		return
	}
	cc, t := p.cc, p.zig
	for i := range dst { // NormFloat64's draws, bit for bit (see zigTables)
		u := cc.Uint64()
		z, ok := t.draw(u)
		if !ok {
			z = p.slowNormal(u)
		}
		dst[i] = z
	}
}

// addGaussianChunk is the most normal draws addGaussianPlain asks of a
// Source's Normal at a time (DrawNormals makes the same calls).
const addGaussianChunk = NormalsChunk

// NormalsChunk is the most draws AddGaussian and DrawNormals ask of the
// Normal method of a Source this package did not make, at offsets that are
// multiples of it: so DrawNormals over consecutive pieces of z, each but the
// last of a length that is a multiple of NormalsChunk, makes the same calls
// of src.Normal as DrawNormals over z, and gives the same draws. (The
// seeded Source's draws do not depend on how they are asked for.) A solver
// can so draw a release's noise in pieces, in order, between other work.
const NormalsChunk = 1024

// addGaussian is the plain Gaussian addition: dst[i] += sigma·z_i. It is used
// for Sources that are not GaussianAdders; the inputs are already checked.
func addGaussianPlain(dst []float64, sigma float64, src Source) {
	if p, ok := src.(*plain); ok { // no scratch buffer needed
		if p.cc == nil {
			for i := range dst {
				dst[i] += sigma * p.r.NormFloat64()
			}
			return
		}
		cc, t := p.cc, p.zig
		for i := range dst { // Normal's draws, inlined
			u := cc.Uint64()
			z, ok := t.draw(u)
			if !ok {
				z = p.slowNormal(u)
			}
			dst[i] += sigma * z
		}
		return
	}
	buf := make([]float64, min(len(dst), addGaussianChunk))
	for len(dst) > 0 {
		n := min(len(dst), len(buf))
		src.Normal(buf[:n])
		for i, z := range buf[:n] {
			dst[i] += sigma * z
		}
		dst = dst[n:]
	}
}
