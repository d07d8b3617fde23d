package optim

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/internal/stattest"
)

// TestLSReleaseNoise checks the noise DP-LS adds to its two releases, through
// the run that Solve uses (Privacy.start with LS's release kinds, then
// run.releaseSym and run.releaseDense) on known matrices, so that the noise is
// the released statistic minus the known one. With (ε, δ) = (1, 1e-5) and
// C = 0.7 the exact GDP calibration of two equal noise multipliers is
// z = √2/μ(ε, δ), so σ_G = z·C² for the Gram and σ_B = z·C for the class sums;
// the Gram noise is symmetric, N(0, σ_G²) on the diagonal and N(0, σ_G²/2) off it.
//
// Nine checks (mean, variance by χ², KS by DKW, for each of the three noise
// families) at α = 1e-6 each: a correct implementation fails with probability
// ≤ 9e-6 per seed. Three power checks (KS rejects the off-diagonal variance on
// the diagonal, the diagonal one off it, and a 10 % larger σ_B) fail falsely
// with probability ≤ 2·exp(−2n(D − tol)²) each, D the KS distance between the
// right and the wrong normal, below 1e-12 at these sample sizes (computed and
// checked below).
func TestLSReleaseNoise(t *testing.T) {
	const (
		dim, k, reps = 64, 30, 100
		eps, delta   = 1.0, 1e-5
		clip         = 0.7
		alpha        = 1e-6
	)
	s := &LS{Privacy: Privacy{Epsilon: eps, Delta: delta}, ClipNorm: clip}
	mu, err := accountant.GaussianMu(eps, delta)
	if err != nil {
		t.Fatal(err)
	}
	z := math.Sqrt2 / mu
	sigmaG, sigmaB := z*clip*clip, z*clip

	// Known statistics: any fixed values; the noise is what a release adds.
	known := mat.NewSymDense(dim, nil)
	for i := range dim {
		for j := i; j < dim; j++ {
			known.SetSym(i, j, float64(i*j%7)-3.5)
		}
	}
	knownB := mat.NewDense(k, dim, nil)
	for i := range k {
		for j := range dim {
			knownB.Set(i, j, float64(i+j))
		}
	}

	src := stattest.Source(t)
	var diag, off, sums []float64
	for rep := range reps {
		r, err := s.Privacy.start(s.kinds(false), nil, src)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if rep == 0 {
			if !lsNoiseClose(r.sigma(0), sigmaG, 1e-9) || !lsNoiseClose(r.sigma(1), sigmaB, 1e-9) {
				t.Fatalf("σ = %g, %g; want %g, %g (z = √2/μ = %g)", r.sigma(0), r.sigma(1), sigmaG, sigmaB, z)
			}
		}
		g := mat.NewSymDense(dim, nil)
		g.CopySym(known)
		if err := r.releaseSym(0, g); err != nil {
			t.Fatalf("releaseSym: %v", err)
		}
		for i := range dim {
			diag = append(diag, g.At(i, i)-known.At(i, i))
			for j := i + 1; j < dim; j++ {
				off = append(off, g.At(i, j)-known.At(i, j))
			}
		}
		b := mat.DenseCopyOf(knownB)
		if err := r.releaseDense(1, b); err != nil {
			t.Fatalf("releaseDense: %v", err)
		}
		for i := range k {
			for j := range dim {
				sums = append(sums, b.At(i, j)-knownB.At(i, j))
			}
		}
		if rep == 0 {
			entries := r.ledger.Entries()
			if len(entries) != 2 || entries[0].Label != "gram" || entries[1].Label != "class_sums" {
				t.Errorf("ledger entries %v, want gram then class_sums", entries)
			}
		}
	}
	stattest.CheckNormal(t, "Gram diagonal noise", diag, sigmaG, alpha, 0)
	stattest.CheckNormal(t, "Gram off-diagonal noise", off, sigmaG/math.Sqrt2, alpha, 0)
	stattest.CheckNormal(t, "class-sum noise", sums, sigmaB, alpha, 0)

	power := []struct {
		name         string
		x            []float64
		right, wrong float64
	}{
		{"diagonal against σ_G/√2", diag, sigmaG, sigmaG / math.Sqrt2},
		{"off-diagonal against σ_G", off, sigmaG / math.Sqrt2, sigmaG},
		{"class sums against 1.1·σ_B", sums, sigmaB, 1.1 * sigmaB},
	}
	for _, p := range power {
		n := len(p.x)
		tol := stattest.DKW(n, alpha)
		// D = sup |Φ(x/a) − Φ(x/b)|, on a fine grid (a lower bound of the sup).
		var d float64
		for x := 0.0; x < 5*max(p.right, p.wrong); x += p.right / 1000 {
			d = max(d, math.Abs(distuv.Normal{Sigma: p.right}.CDF(x)-distuv.Normal{Sigma: p.wrong}.CDF(x)))
		}
		if fp := 2 * math.Exp(-2*float64(n)*(d-tol)*(d-tol)); d <= tol || fp > 1e-12 {
			t.Fatalf("power check %s: D = %.4f, tol = %.4f, false-failure bound %.2g: too few samples", p.name, d, tol, fp)
		}
		if ks := stattest.KS(p.x, distuv.Normal{Sigma: p.wrong}.CDF); ks <= tol {
			t.Errorf("no power: KS of the %s = %.4f ≤ %.4f", p.name, ks, tol)
		}
	}
}

// TestLSReleaseNonPrivate checks that a non-private run releases the
// statistics unchanged and spends nothing.
func TestLSReleaseNonPrivate(t *testing.T) {
	s := &LS{Privacy: Privacy{Epsilon: math.Inf(1)}, ClipNorm: 1}
	src := stattest.Source(t)
	r, err := s.Privacy.start(s.kinds(false), nil, src)
	if err != nil {
		t.Fatal(err)
	}
	g := mat.NewSymDense(3, []float64{1, 2, 3, 2, 4, 5, 3, 5, 6})
	want := mat.NewSymDense(3, nil)
	want.CopySym(g)
	if err := r.releaseSym(0, g); err != nil {
		t.Fatal(err)
	}
	b := mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})
	wantB := mat.DenseCopyOf(b)
	if err := r.releaseDense(1, b); err != nil {
		t.Fatal(err)
	}
	if !mat.Equal(g, want) || !mat.Equal(b, wantB) {
		t.Errorf("non-private releases changed the statistics: got %v, %v; want %v, %v", g, b, want, wantB)
	}
}

// lsNoiseClose reports whether a and b agree to relative tolerance tol.
func lsNoiseClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}
