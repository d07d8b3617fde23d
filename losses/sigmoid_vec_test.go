package losses

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// ulps returns |got − want| in units of want's last place.
func ulps(got, want float64) float64 {
	if got == want {
		return 0
	}
	ulp := math.Nextafter(math.Abs(want), math.Inf(1)) - math.Abs(want)
	return math.Abs(got-want) / ulp
}

// TestSigExpAccuracy compares the vectorised algorithm's eˣ with math.Exp
// (itself within 1 ulp), within 3 ulps (2.0 measured), on 2·10⁶ points of [−700, 0]: random, plus the ends
// and the multiples of ln 2/2 where the range reduction switches k.
func TestSigExpAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := []float64{0, math.Copysign(0, -1), -sigVecMaxScore, -1e-300, -0x1p-1074, -math.Ln2 / 2, -math.Ln2}
	for j := 1; j < 2020; j++ {
		m := -float64(j) * math.Ln2 / 2
		xs = append(xs, m, math.Nextafter(m, 0), math.Nextafter(m, -1000))
	}
	for range 2_000_000 {
		xs = append(xs, -sigVecMaxScore*rng.Float64())
	}
	var worst float64
	for _, x := range xs {
		if x < -sigVecMaxScore {
			continue
		}
		worst = max(worst, ulps(sigExp(x), math.Exp(x)))
	}
	t.Logf("max |sigExp − math.Exp| = %.2f ulp", worst)
	if worst > 3 {
		t.Errorf("sigExp is %.2f ulps from math.Exp, want ≤ 3", worst)
	}
}

// TestSigLog1pAccuracy compares the atanh series with math.Log1p on (0, 1],
// within 4 ulps (3.0 measured): a logarithmic grid down to e^−700 and 10⁶ random points.
func TestSigLog1pAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	es := []float64{1, 0.5, math.Exp(-sigVecMaxScore), 0x1p-12}
	for e := 1.0; e > math.Exp(-sigVecMaxScore); e *= 0.9937 {
		es = append(es, e)
	}
	for range 1_000_000 {
		es = append(es, 1-rng.Float64()) // (0, 1]
	}
	var worst float64
	for _, e := range es {
		worst = max(worst, ulps(sigLog1p(e), math.Log1p(e)))
	}
	t.Logf("max |sigLog1p − math.Log1p| = %.2f ulp", worst)
	if worst > 4 {
		t.Errorf("sigLog1p is %.2f ulps from math.Log1p, want ≤ 4", worst)
	}
}

// vecRow draws a row of n scores of one of several kinds.
func vecRow(rng *rand.Rand, n, kind int) []float64 {
	s := make([]float64, n)
	for i := range s {
		switch kind {
		case 0: // the paper's regime: fixed bias −10, small weights
			s[i] = -10 + rng.NormFloat64()
		case 1: // wide
			s[i] = sigVecMaxScore * (2*rng.Float64() - 1)
		case 2: // near zero, with signed zeros
			s[i] = []float64{0, math.Copysign(0, -1), 1e-300, -1e-300, rng.NormFloat64() * 1e-8}[rng.IntN(5)]
		default: // the bounds and the middle
			s[i] = []float64{sigVecMaxScore, -sigVecMaxScore, 37, -37, 1, -1}[rng.IntN(6)]
		}
	}
	return s
}

// TestSigmoidRowAsmBits holds the assembly kernel to sigmoidRowGo bit for
// bit on rows of 1–41 entries (every tail length), labels inside and outside
// the row, several α and score ranges; and checks that both refuse, leaving
// the row untouched, a row with a score beyond ±sigVecMaxScore or a NaN.
func TestSigmoidRowAsmBits(t *testing.T) {
	if !sigmoidHasAsm {
		t.Skip("no assembly sigmoid kernel in this build")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 20000 {
		n := 1 + trial%41
		s := vecRow(rng, n, trial%4)
		y := rng.IntN(n+2) - 1 // −1 and n: no entry is the label
		alpha := []float64{1, 0.3, 2.5, 1e-3}[rng.IntN(4)]
		s1, s2 := slices.Clone(s), slices.Clone(s)
		c1, c2 := make([]float64, n), make([]float64, n)
		l1, ok1 := sigmoidRowAsm(s1, c1, y, alpha)
		l2, ok2 := sigmoidRowGo(s2, c2, y, alpha)
		if !ok1 || !ok2 {
			t.Fatalf("trial %d: ok = %v (asm), %v (Go) on in-range scores %v", trial, ok1, ok2, s)
		}
		if math.Float64bits(l1) != math.Float64bits(l2) {
			t.Fatalf("trial %d: loss %v (asm) ≠ %v (Go); scores %v, y %d, α %v", trial, l1, l2, s, y, alpha)
		}
		for i := range n {
			if math.Float64bits(s1[i]) != math.Float64bits(s2[i]) || math.Float64bits(c1[i]) != math.Float64bits(c2[i]) {
				t.Fatalf("trial %d, entry %d (score %v): residual %v / %v, curvature %v / %v (asm / Go)",
					trial, i, s[i], s1[i], s2[i], c1[i], c2[i])
			}
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Nextafter(sigVecMaxScore, 1000), -701} {
		for n := 1; n <= 9; n++ {
			for at := range n {
				s := vecRow(rng, n, 0)
				s[at] = bad
				orig := slices.Clone(s)
				for name, f := range map[string]func([]float64, []float64, int, float64) (float64, bool){
					"asm": sigmoidRowAsm, "Go": sigmoidRowGo,
				} {
					row := slices.Clone(orig)
					if _, ok := f(row, make([]float64, n), 0, 1); ok {
						t.Fatalf("%s accepted score %v at %d of %d", name, bad, at, n)
					}
					if !slices.EqualFunc(row, orig, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }) {
						t.Fatalf("%s changed a refused row: %v → %v", name, orig, row)
					}
				}
			}
		}
	}
}

// TestSigmoidRowVecMatchesScalar compares the vectorised row with
// sigmoidRow (math.Exp, math.Log1p): residuals and curvatures within 4 ulps
// (e within 2 ulps, then one addition, one division and up to two
// products), the loss within (n+8)·2⁻⁵³ of the sum of the terms'
// magnitudes (the two sum the n terms in different orders);
// and out-of-range rows give sigmoidRow's results exactly.
func TestSigmoidRowVecMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 20000 {
		n := 1 + trial%23
		s := vecRow(rng, n, trial%4)
		y := rng.IntN(n)
		alpha := []float64{1, 0.3, 2.5}[rng.IntN(3)]
		sv, ss := slices.Clone(s), slices.Clone(s)
		cv, cs := make([]float64, n), make([]float64, n)
		lv := sigmoidRowVec(sv, cv, y, alpha)
		ls := sigmoidRow(ss, cs, y, alpha)
		for i := range n {
			if u := ulps(sv[i], ss[i]); u > 4 {
				t.Fatalf("trial %d: residual of score %v: %v, sigmoidRow %v (%.1f ulps)", trial, s[i], sv[i], ss[i], u)
			}
			if u := ulps(cv[i], cs[i]); u > 4 {
				t.Fatalf("trial %d: curvature of score %v: %v, sigmoidRow %v (%.1f ulps)", trial, s[i], cv[i], cs[i], u)
			}
		}
		var mag float64
		for i, v := range s {
			w, m := alpha, max(v, 0)
			if i == y {
				w, m = 1, max(-v, 0)
			}
			mag += w * (m + math.Log1p(math.Exp(-math.Abs(v))))
		}
		if math.Abs(lv-ls) > float64(n+8)*0x1p-53*mag {
			t.Fatalf("trial %d: loss %v, sigmoidRow %v (Σ|terms| %v)", trial, lv, ls, mag)
		}
	}
	s := []float64{800, -3, 0.5, -750}
	sv, ss := slices.Clone(s), slices.Clone(s)
	cv, cs := make([]float64, 4), make([]float64, 4)
	if lv, ls := sigmoidRowVec(sv, cv, 1, 0.5), sigmoidRow(ss, cs, 1, 0.5); lv != ls || !slices.Equal(sv, ss) || !slices.Equal(cv, cs) {
		t.Errorf("out-of-range row: %v %v %v, sigmoidRow %v %v %v", lv, sv, cv, ls, ss, cs)
	}
}
