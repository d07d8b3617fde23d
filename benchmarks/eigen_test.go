package benchmarks

import (
	"fmt"
	"testing"

	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/mat"
)

// eigenDims are the sizes of the eigendecomposition benchmarks: CIFAR
// (768), ImageNet (1280) and random-feature MNIST (2048, skipped under
// -short).
var eigenDims = []int{768, 1280, 2048}

// eigenInput returns the noisy covariance of noisyCov for d features (from
// 4·d rows): the matrix DP-LS and DP-FC project.
func eigenInput(d int) *mat.SymDense {
	return noisyCov(shape{name: "eigen", n: 4 * d, d: d, k: 10})
}

// BenchmarkEigenSym times linalg.EigenSym (eigenvalues and eigenvectors) of
// a noisy d×d covariance, linalg.ProjectPSD of the same matrix, and gonum's
// mat.EigenSym with vectors (LAPACK Dsyev in pure Go) as the baseline. The
// gonum baseline at d = 2048 takes minutes and runs only without -short.
func BenchmarkEigenSym(b *testing.B) {
	for _, d := range eigenDims {
		var a *mat.SymDense
		input := func(b *testing.B) *mat.SymDense {
			if d > 1500 && testing.Short() {
				b.Skip("large size skipped under -short")
			}
			if a == nil {
				a = eigenInput(d)
			}
			return a
		}
		b.Run(fmt.Sprintf("linalg/d=%d", d), func(b *testing.B) {
			a := input(b)
			t := startTimer()
			for b.Loop() {
				if _, _, err := linalg.EigenSym(a); err != nil {
					b.Fatal(err)
				}
			}
			t.report(b, 0)
		})
		b.Run(fmt.Sprintf("ProjectPSD/d=%d", d), func(b *testing.B) {
			a := input(b)
			t := startTimer()
			for b.Loop() {
				if _, err := linalg.ProjectPSD(a, 0); err != nil {
					b.Fatal(err)
				}
			}
			t.report(b, 0)
		})
		b.Run(fmt.Sprintf("gonum/d=%d", d), func(b *testing.B) {
			a := input(b)
			if d > 1500 && testing.Short() {
				b.Skip("gonum at this size takes minutes")
			}
			t := startTimer()
			for b.Loop() {
				var e mat.EigenSym
				if !e.Factorize(a, true) {
					b.Fatal("gonum's EigenSym failed")
				}
			}
			t.report(b, 0)
		})
	}
}
