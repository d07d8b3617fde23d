package dp

import "math/rand/v2"

// A Source supplies all randomness of a DP computation: uniform bits (for
// Poisson sampling and shuffles) and standard normal draws (for noise).
// Randomness is always an argument, never a global; a nil Source is an error.
type Source interface {
	rand.Source           // uniform 64-bit words
	Normal(dst []float64) // fills dst with independent N(0, 1) draws
}
