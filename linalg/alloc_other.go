//go:build !linux

package linalg

// adviseHuge does nothing where transparent huge pages are not at hand.
func adviseHuge([]float32) {}
