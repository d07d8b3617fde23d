//go:build openblas && cgo

// Package openblaslink links the OpenBLAS library (-lopenblas) into builds
// with the openblas tag, for gonum.org/v1/netlib's cgo bindings, which do not
// name a library themselves. It is a separate package because linalg has Go
// assembly, which a package using cgo may not.
package openblaslink

// #cgo LDFLAGS: -lopenblas
import "C"
