package optim

import (
	"math"
	"testing"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/internal/stattest"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// samplerStats draws T samples and returns the batch sizes, the number of
// samples each index is in, the first included index of each sample (n if
// none), the number of included indices i < n−1 and how many of them have
// i+1 included too, and whether every sample was strictly increasing and in
// range.
func samplerStats(p *sampler, src dp.Source, n, draws int) (sizes []float64, counts []int, first []float64, pairs, next int, ok bool) {
	sizes = make([]float64, draws)
	first = make([]float64, draws)
	counts = make([]int, n)
	in := make([]bool, n)
	ok = true
	for t := range draws {
		idx := p.draw(src)
		sizes[t] = float64(len(idx))
		first[t] = float64(n)
		if len(idx) > 0 {
			first[t] = float64(idx[0])
		}
		clear(in)
		prev := -1
		for _, i := range idx {
			if i <= prev || i >= n {
				return nil, nil, nil, 0, 0, false
			}
			counts[i]++
			in[i] = true
			prev = i
		}
		for i := range n - 1 {
			if in[i] {
				pairs++
				if in[i+1] {
					next++
				}
			}
		}
	}
	return sizes, counts, first, pairs, next, ok
}

// TestSamplerBernoulli checks that the geometric-gap sampler is one
// independent Bernoulli(q) trial per example: n = 1000, q = 0.05, T = 20 000
// samples. Five checks at α = 2e-7 each — a correct sampler fails with
// probability ≤ 1e-6 per seed:
//
//  1. the mean batch size against N(nq, nq(1−q)/T) (the total is
//     Binomial(Tn, q); CLT at Tnq = 10⁶);
//  2. the sample variance of the batch sizes against (T−1)s²/σ² ~ χ²(T−1),
//     the normal-theory interval, which Binomial(1000, 0.05) (excess
//     kurtosis 0.02) matches far inside its width;
//  3. every index's count, Binomial(T, q) under the hypothesis, inside its
//     exact two-sided binomial interval at α/(2n) per tail (union bound over
//     the n indices);
//  4. the mean first included index of a sample, geometric under the
//     hypothesis, against (1−q)/q with standard deviation √(1−q)/q (CLT
//     over T iid values; P(none of the n included) = 0.95¹⁰⁰⁰ ≈ 5·10⁻²³ is
//     negligible);
//  5. the fraction of included examples i < n−1 whose successor i+1 is
//     included too — under the hypothesis each is a fresh Bernoulli(q)
//     trial — against q (the pair dependence a wrong gap law shows first;
//     CLT over ~10⁶ trials).
//
// Power: the same checks on a sampler at rate 1.02q must fail the first
// (its mean is 1.02·50 = 51, against a tolerance of ±0.25 around 50).
func TestSamplerBernoulli(t *testing.T) {
	const n, q, draws, alpha = 1000, 0.05, 20000, 2e-7
	src := stattest.Source(t)
	p := newSampler(n, q)
	sizes, counts, first, pairs, next, ok := samplerStats(&p, src, n, draws)
	if !ok {
		t.Fatal("a sample is not strictly increasing in [0, n)")
	}
	sd := math.Sqrt(n * q * (1 - q))
	mean, variance := stat.MeanVariance(sizes, nil)
	if tol := stattest.MeanTol(sd, draws, alpha); math.Abs(mean-n*q) > tol {
		t.Errorf("mean batch size %.4f, want %g ± %.4f", mean, n*q, tol)
	}
	if lo, hi := stattest.VarianceRange(sd, draws, alpha); variance < lo || variance > hi {
		t.Errorf("batch size variance %.3f, want in [%.3f, %.3f]", variance, lo, hi)
	}
	bin := distuv.Binomial{N: draws, P: q}
	lo, hi := binomialRange(bin, alpha/n)
	for i, c := range counts {
		if c < lo || c > hi {
			t.Errorf("index %d in %d of %d samples, want in [%d, %d]", i, c, draws, lo, hi)
			break
		}
	}
	fm, _ := stat.MeanVariance(first, nil)
	if tol := stattest.MeanTol(math.Sqrt(1-q)/q, draws, alpha); math.Abs(fm-(1-q)/q) > tol {
		t.Errorf("mean first index %.4f, want %.4f ± %.4f", fm, (1-q)/q, tol)
	}
	frac := float64(next) / float64(pairs)
	if tol := stattest.MeanTol(math.Sqrt(q*(1-q)), pairs, alpha); math.Abs(frac-q) > tol {
		t.Errorf("P(i+1 included | i included) = %.5f over %d, want %g ± %.5f", frac, pairs, q, tol)
	}

	// Power: rate 1.02q is rejected by the mean batch size alone.
	wrong := newSampler(n, 1.02*q)
	sizes, _, _, _, _, _ = samplerStats(&wrong, stattest.Stream(t, 1), n, draws)
	if mean, _ := stat.MeanVariance(sizes, nil); math.Abs(mean-n*q) <= stattest.MeanTol(sd, draws, alpha) {
		t.Errorf("no power: rate 1.02q gives mean batch size %.3f, accepted as %g", mean, n*q)
	}
}

// binomialRange returns [lo, hi] with P(X < lo) ≤ a/2 and P(X > hi) ≤ a/2.
func binomialRange(b distuv.Binomial, a float64) (lo, hi int) {
	lo, hi = 0, int(b.N)
	for lo < int(b.N) && b.CDF(float64(lo)) <= a/2 {
		lo++
	}
	// P(X < lo) = CDF(lo−1) ≤ a/2 by the loop.
	for hi > 0 && 1-b.CDF(float64(hi-1)) <= a/2 {
		hi--
	}
	// P(X > hi) = 1 − CDF(hi) ≤ a/2 by the loop.
	return lo, hi
}

// TestSamplerEdges: q near 1 includes almost everything and never an index
// out of range; a tiny q gives mostly empty samples without overflowing the
// gap arithmetic.
func TestSamplerEdges(t *testing.T) {
	src := dp.NewSeededSource(3)
	p := newSampler(10, 0.999999)
	for range 100 {
		idx := p.draw(src)
		for j, i := range idx {
			if i < 0 || i >= 10 || (j > 0 && i <= idx[j-1]) {
				t.Fatalf("sample %v out of range or order", idx)
			}
		}
	}
	tiny := newSampler(1_000_000, 1e-300)
	for range 100 {
		if idx := tiny.draw(src); len(idx) != 0 {
			t.Fatalf("q = 1e-300 included %v", idx)
		}
	}
}

// TestSamplerAllocs: drawing into the sampler's buffer allocates nothing once
// it has grown.
func TestSamplerAllocs(t *testing.T) {
	src := dp.NewSeededSource(4)
	p := newSampler(60000, 256.0/60000)
	if a := testing.AllocsPerRun(100, func() { p.draw(src) }); a > 0 {
		t.Errorf("draw allocates %v times, want 0", a)
	}
}
