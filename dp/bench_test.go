package dp_test

import (
	"testing"

	"github.com/dpopt/dpopt/dp"
)

// BenchmarkNoise measures the cost per sample of the plain and the hardened
// Gaussian paths, adding noise to a vector of 4096 values.
func BenchmarkNoise(b *testing.B) {
	const n, sigma = 4096, 2.5
	cases := []struct {
		name string
		src  dp.Source
		add  func(x []float64, src dp.Source) error
	}{
		{"plain/seeded", dp.NewSeededSource(1), func(x []float64, s dp.Source) error { return dp.AddGaussian(x, sigma, s) }},
		{"hardened/seeded", dp.NewSeededSource(1), func(x []float64, s dp.Source) error { return dp.AddSecureGaussian(x, sigma, s) }},
		{"hardened/secure", dp.NewSecureSource(), func(x []float64, s dp.Source) error { return dp.AddGaussian(x, sigma, s) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			x := make([]float64, n)
			for b.Loop() {
				if err := c.add(x, c.src); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sample")
		})
	}
}
