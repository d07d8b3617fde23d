//go:build !amd64 || purego

package linalg

// rowsPrefetch does nothing in this build: Go has no portable prefetch, and
// the hardware's own prefetchers serve the pure-Go kernels.
func rowsPrefetch(row []float32) {}
