package accountant

import "testing"

// Benchmarks of the cases in the brief. Reference times (dp_accounting 0.6.0
// PLDAccountant, grid 1e-4, 2-vCPU machine, from the vectors' README):
// MNIST 0.74 s (ε 2.3451), small-ε 0.007 s at grid 1e-4 (ε 0.0240, far off)
// and 2.1 s-class at 1e-5; ImageNet T=10 000 0.76 s.
func BenchmarkPLDEpsilon(b *testing.B) {
	for _, bc := range []struct {
		name  string
		a     PLD
		e     Event
		delta float64
		long  bool
	}{
		{name: "mnist/q=256÷60000/z=1/T=1e4/adaptive", e: pldPoisson(256.0/60000, 1, 10000), delta: 1e-5},
		{name: "mnist/q=256÷60000/z=1/T=1e4/h=1e-4", a: PLD{ValueDiscretization: 1e-4}, e: pldPoisson(256.0/60000, 1, 10000), delta: 1e-5},
		{name: "small-eps/q=1e-4/z=10/T=1e5/adaptive", e: pldPoisson(1e-4, 10, 100000), delta: 1e-5},
		{name: "imagenet/q=4096÷1281167/z=1/T=3000/adaptive", e: pldPoisson(4096.0/1281167, 1, 3000), delta: 8e-7},
		{name: "dpfc/z1=10/q=4096÷1281167/z=2/T=1e4/adaptive", e: Composed{Events: []Event{Gaussian{NoiseMultiplier: 10}, pldPoisson(4096.0/1281167, 2, 10000)}}, delta: 8e-7},
		{name: "fullbatch/z=1/T=100/adaptive", e: Repeated{Event: Gaussian{NoiseMultiplier: 1}, Count: 100}, delta: 1e-6},
		{name: "large-q/q=0.5/z=1/T=10/adaptive", e: pldPoisson(0.5, 1, 10), delta: 1e-5, long: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.long && testing.Short() {
				b.Skip("skipped under -short")
			}
			var eps float64
			for b.Loop() {
				var err error
				if eps, err = bc.a.Epsilon(bc.e, bc.delta); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(eps, "ε")
		})
	}
}
