// Package benchmarks holds Go benchmarks of dpopt's kernels and solvers at
// the MNIST (n = 60 000, d = 784, K = 10), CIFAR-100 (n = 50 000, d = 768,
// K = 100) and ImageNet (n = 200 000 of 1 281 167, d = 1280, K = 1000)
// shapes, one benchmark per step of a DP solver, shapes in the sub-benchmark
// names. It has no non-test code. README.md holds the table against numpy
// and the commands that produced it; numpy_reference.py is the numpy side.
//
// Run without the tests, skipping the ImageNet shape:
//
//	go test -short -run '^$' -bench . -benchtime=1x -count=5 ./benchmarks/
//
// and compare before/after numbers with benchstat. Besides GFLOP/s, every
// benchmark reports cpu-s/op, the process CPU time per operation summed over
// threads, which a shared machine disturbs much less than wall time.
package benchmarks
