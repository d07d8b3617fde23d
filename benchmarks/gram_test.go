package benchmarks

import (
	"math/rand/v2"
	"testing"

	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// gramShapes are CIFAR-10 features of a ViT-B (n = 50 000, d = 768) and an
// ImageNet-scale shard at d = 1280 (EfficientNet features).
var gramShapes = []struct {
	name  string
	n, d  int
	large bool // skipped under -short
}{
	{"n=50000/d=768", 50000, 768, false},
	{"n=200000/d=1280", 200000, 1280, true},
}

// gramInput returns an n×d matrix of uniform [-1, 1) float32 values from
// rand.NewPCG(1, 2).
func gramInput(n, d int) *linalg.Matrix32 {
	rnd := rand.New(rand.NewPCG(1, 2))
	x := linalg.NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(2*rnd.Float64() - 1)
	}
	return x
}

// reportGFLOPS reports 2·n·d² floating-point operations per iteration, the
// count of a full XᵀX product (as numpy's X.T @ X is usually counted), even
// though symmetric kernels do about half.
func reportGFLOPS(b *testing.B, n, d int) {
	flops := 2 * float64(n) * float64(d) * float64(d)
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkGram times linalg.GramPrecision on float32 rows with GOMAXPROCS
// workers, in both precisions: Float64 (linalg.Gram, exact products) and
// Float32 (float32 blocks, as numpy's X.T @ X), back to back (GFLOP/s as
// reportGFLOPS, and CPU seconds per operation).
func BenchmarkGram(b *testing.B) {
	for _, s := range gramShapes {
		for _, p := range []linalg.Precision{linalg.Float64, linalg.Float32} {
			b.Run(s.name+"/"+p.String(), func(b *testing.B) {
				if s.large && testing.Short() {
					b.Skip("large shape skipped under -short")
				}
				x := gramInput(s.n, s.d)
				t := startTimer()
				for b.Loop() {
					if _, err := linalg.GramPrecision(x, 0, p); err != nil {
						b.Fatal(err)
					}
				}
				t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.d))
			})
		}
	}
}

// BenchmarkDsyrk is the baseline: blas64.Syrk (gonum's pure-Go Dsyrk unless
// another BLAS is installed) on the same data already in float64.
func BenchmarkDsyrk(b *testing.B) {
	for _, s := range gramShapes {
		b.Run(s.name, func(b *testing.B) {
			if s.large && testing.Short() {
				b.Skip("large shape skipped under -short")
			}
			x := gramInput(s.n, s.d)
			a := blas64.General{Rows: s.n, Cols: s.d, Stride: s.d, Data: make([]float64, s.n*s.d)}
			for i, v := range x.Data {
				a.Data[i] = float64(v)
			}
			c := mat.NewSymDense(s.d, nil).RawSymmetric()
			b.ResetTimer()
			for b.Loop() {
				blas64.Syrk(blas.Trans, 1, a, 0, c)
			}
			reportGFLOPS(b, s.n, s.d)
		})
	}
}
