package accountant

import "testing"

func BenchmarkRDPEpsilon(b *testing.B) {
	for _, bc := range []struct {
		name string
		q, z float64
		T    int
	}{
		{"q=256÷60000/z=1/T=10000", 256.0 / 60000.0, 1, 10000},
		{"q=0.01/z=1/T=100000", 0.01, 1, 100000},
		{"q=1e-4/z=3.7/T=100000", 1e-4, 3.7, 100000},
		{"q=0.1/z=0.7/T=100", 0.1, 0.7, 100},
		{"q=0.5/z=1.67/T=10", 0.5, 1.67, 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := Repeated{Count: bc.T, Event: PoissonSampled{Rate: bc.q, Event: Gaussian{NoiseMultiplier: bc.z}}}
			acc := RDP{Orders: DefaultOrders()} // non-nil orders: no curve cache
			for b.Loop() {
				if _, err := acc.Epsilon(e, 1e-5); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
