// Package benchmarks holds Go benchmarks of dpopt's kernels and solvers at
// CIFAR and ImageNet shapes. It has no non-test code.
//
// Run a shape once, without the tests, on a quiet machine:
//
//	go test -run '^$' -bench 'Gram|Dsyrk' -benchtime=3x ./benchmarks/
//
// and compare before/after numbers with benchstat. The largest shapes are
// skipped under -short.
package benchmarks
