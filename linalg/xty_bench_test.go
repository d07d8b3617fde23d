package linalg

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkClassSums times the XᵀY half of Stats.Add alone: the per-class
// sums of the rows by scatter-add (row r added to the sum of its class),
// float32 rows into float64 sums, at the shapes of benchmarks/ (inputs as
// there, from rand.NewPCG(1, 2)). GFLOP/s counts n·d additions.
func BenchmarkClassSums(b *testing.B) {
	for _, s := range []struct {
		name    string
		n, d, k int
		large   bool
	}{
		{"mnist", 60000, 784, 10, false},
		{"cifar100", 50000, 768, 100, false},
		{"imagenet", 200000, 1280, 1000, true},
	} {
		b.Run(fmt.Sprintf("%s/n=%d/d=%d/K=%d", s.name, s.n, s.d, s.k), func(b *testing.B) {
			if s.large && testing.Short() {
				b.Skip("large shape skipped under -short")
			}
			rnd := rand.New(rand.NewPCG(1, 2))
			x := NewMatrix32(s.n, s.d)
			for i := range x.Data {
				x.Data[i] = float32(2*rnd.Float64() - 1)
			}
			labels := make([]int, s.n)
			for i := range labels {
				labels[i] = rnd.IntN(s.k)
			}
			workers, _ := workerCount(0) // GOMAXPROCS, as Stats.Add
			for b.Loop() {
				classSums(x, labels, s.k, workers)
			}
			b.ReportMetric(float64(s.n)*float64(s.d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
