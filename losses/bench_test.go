package losses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dpopt/dpopt/linalg"

	"gonum.org/v1/gonum/mat"
)

// benchShapes: MNIST (raw pixels) and CIFAR-100 with d = 768 features.
var benchShapes = []struct {
	n, d, k int
	large   bool // skipped under -short
}{
	{60000, 784, 10, false},
	{50000, 768, 100, true},
}

// BenchmarkClippedStep times one full-batch DP-SGD gradient on the one-vs-all
// sigmoid loss with the paper's fixed bias: Eval (scores X·Wᵀ, residuals,
// norms) then ClipSum ((c∘R)ᵀ·X). GFLOP/s counts the two GEMMs, 4·n·d·K.
func BenchmarkClippedStep(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("n=%d/d=%d/K=%d", s.n, s.d, s.k), func(b *testing.B) {
			if s.large && testing.Short() {
				b.Skip("large shape skipped under -short")
			}
			p := newProblem(b, 1, s.n, s.d, s.k, 0.01, false)
			loss := Sigmoid{FixedBias: PaperFixedBias}
			var batch Batch
			grad := mat.NewDense(s.k, s.d, nil)
			for b.Loop() {
				if err := loss.Eval(&batch, p.x, p.labels, p.w, nil, 0); err != nil {
					b.Fatal(err)
				}
				if err := batch.ClipSum(grad, nil, 1, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(4*float64(s.n*s.d*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkPerExampleClip compares, on a batch of 1024, the clipped gradient
// sum by the norm identity (Eval + ClipSum) with the naive way (Eval, then
// materialise every per-example gradient r_i x_iᵀ, take its norm, scale and
// add). GFLOP/s is the same useful work for both, 4·n·d·K, so the rates
// compare directly.
func BenchmarkPerExampleClip(b *testing.B) {
	const n, d, k, clip = 1024, 768, 100, 1.0
	p := newProblem(b, 2, n, d, k, 0.01, false)
	loss := Sigmoid{FixedBias: PaperFixedBias}
	flops := 4 * float64(n*d*k)
	b.Run(fmt.Sprintf("method=identity/n=%d/d=%d/K=%d", n, d, k), func(b *testing.B) {
		var batch Batch
		grad := mat.NewDense(k, d, nil)
		for b.Loop() {
			if err := loss.Eval(&batch, p.x, p.labels, p.w, nil, 0); err != nil {
				b.Fatal(err)
			}
			if err := batch.ClipSum(grad, nil, clip, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run(fmt.Sprintf("method=naive/n=%d/d=%d/K=%d", n, d, k), func(b *testing.B) {
		var batch Batch
		sum := make([]float64, k*d)
		g := make([]float64, k*d)
		xi := make([]float64, d)
		for b.Loop() {
			if err := loss.Eval(&batch, p.x, p.labels, p.w, nil, 0); err != nil {
				b.Fatal(err)
			}
			clear(sum)
			for i := range n {
				for j, v := range p.x.Row(i) {
					xi[j] = float64(v)
				}
				r := batch.R.RawRowView(i)
				var ss float64
				for l, rl := range r {
					gl := g[l*d : (l+1)*d]
					for j, v := range xi {
						gl[j] = rl * v
						ss += gl[j] * gl[j]
					}
				}
				c := min(1, clip/math.Sqrt(ss))
				for j, v := range g {
					sum[j] += c * v
				}
			}
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// BenchmarkMinibatchStep times one DP-SGD minibatch gradient at the MNIST and
// CIFAR-100 shapes: 256 random rows of the data set (a fresh selection per
// iteration, as Poisson sampling gives), one-vs-all sigmoid with the paper's
// fixed bias, clip 1. path=fused is EvalClipSum on the row indices;
// path=gather copies the rows into a block and calls Eval and ClipSum, as
// EvalClipSum's general path does. GFLOP/s counts the two GEMMs, 4·B·d·K.
func BenchmarkMinibatchStep(b *testing.B) {
	const batch, sets = 256, 64
	for _, s := range benchShapes {
		p := newProblem(b, 1, s.n, s.d, s.k, 0.01, false)
		rnd := rand.New(rand.NewPCG(1, 2))
		selections := make([][]int, sets)
		for i := range selections {
			selections[i] = rnd.Perm(s.n)[:batch]
		}
		var loss Loss = Sigmoid{FixedBias: PaperFixedBias}
		for _, workers := range []int{1, 0} {
			name := fmt.Sprintf("n=%d/d=%d/K=%d/B=%d/workers=%d", s.n, s.d, s.k, batch, workers)
			b.Run("path=fused/"+name, func(b *testing.B) {
				if s.large && testing.Short() {
					b.Skip("large shape skipped under -short")
				}
				var bt Batch
				grad := mat.NewDense(s.k, s.d, nil)
				t := 0
				for b.Loop() {
					if err := EvalClipSum(&bt, loss, p.x, p.labels, selections[t%sets], p.w, nil, 1, grad, nil, workers); err != nil {
						b.Fatal(err)
					}
					t++
				}
				b.ReportMetric(4*float64(batch*s.d*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			b.Run("path=gather/"+name, func(b *testing.B) {
				if s.large && testing.Short() {
					b.Skip("large shape skipped under -short")
				}
				var bt Batch
				grad := mat.NewDense(s.k, s.d, nil)
				xb := &linalg.Matrix32{Rows: batch, Cols: s.d, Data: make([]float32, batch*s.d)}
				yb := make([]int, batch)
				t := 0
				for b.Loop() {
					for j, i := range selections[t%sets] {
						copy(xb.Row(j), p.x.Row(i))
						yb[j] = p.labels[i]
					}
					if err := loss.Eval(&bt, xb, yb, p.w, nil, workers); err != nil {
						b.Fatal(err)
					}
					if err := bt.ClipSum(grad, nil, 1, workers); err != nil {
						b.Fatal(err)
					}
					t++
				}
				b.ReportMetric(4*float64(batch*s.d*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
