package dp

import (
	"math/rand/v2"
	"testing"
)

// benchSink keeps BenchmarkSeededNormal's ChaCha8 words alive.
var benchSink uint64

// BenchmarkSeededNormal measures the cost per N(0, 1) draw of a seeded Source,
// 7840 draws per call (one DP-SGD step's noise), through Normal and through
// AddGaussian, each with the stdlib path (the fast path turned off, as before
// it existed) and the fast path, so one run gives before and after. ChaCha8
// is the floor that both pay: one (*rand.ChaCha8).Uint64 call per draw.
func BenchmarkSeededNormal(b *testing.B) {
	const n = 7840
	perDraw := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/normal")
	}
	source := func(b *testing.B, fast bool) *plain {
		p := NewSeededSource(1).(*plain)
		if p.cc == nil {
			b.Fatal("the fast path is off")
		}
		if !fast {
			p.cc = nil
		}
		return p
	}
	for _, fast := range []bool{false, true} {
		name := map[bool]string{false: "stdlib", true: "fast"}[fast]
		b.Run("Normal/"+name, func(b *testing.B) {
			p, z := source(b, fast), make([]float64, n)
			for b.Loop() {
				p.Normal(z)
			}
			perDraw(b)
			b.ReportMetric(float64(p.slowDraws)/float64(b.N*n), "slow/normal")
		})
		b.Run("AddGaussian/"+name, func(b *testing.B) {
			p, x := source(b, fast), make([]float64, n)
			for b.Loop() {
				if err := AddGaussian(x, 1.5, p); err != nil {
					b.Fatal(err)
				}
			}
			perDraw(b)
		})
	}
	b.Run("ChaCha8", func(b *testing.B) {
		cc := rand.NewChaCha8(seededKey(1))
		var s uint64
		for b.Loop() {
			for range n {
				s += cc.Uint64()
			}
		}
		benchSink = s
		perDraw(b)
	})
}
