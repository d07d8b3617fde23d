// Command cifar prints the privacy–utility table of every dpopt method on
// CIFAR-10 or CIFAR-100 features extracted by a pretrained model, as in
// Mehta, Krichene, Thakurta, Kurakin, Cutkosky, "Differentially Private Image
// Classification from Features" (arXiv 2211.13403): mean test accuracy at
// each ε, δ = 1e-5 (the paper's CIFAR setting), next to each method's
// non-private ceiling.
//
// Run it on your feature files (.npz with arrays "features" and "labels",
// TFRecord of tf.train.Example with "repr" and "label" as written by the
// paper's dp_transfer code, .npy or CSV):
//
//	go run ./examples/cifar -train cifar10_train.npz -test cifar10_test.npz
//	go run ./examples/cifar -train 'train.tfr*' -test 'test.tfr*' -epsilons 0.1,1,8 -seeds 3
//
// Rows are L2-normalised and clipped to norm 1; each method uses the
// defaults of `dpopt train`. Runs use seeded noise sources (Seed, Seed+1, …)
// so the table replays exactly. DP-Newton is skipped when K·d²·(n+d) exceeds
// -newton-limit (CIFAR-100 at d ≥ 1280, for instance). Memory: the features
// as float32 (n·d·4 bytes: 150 MB at n = 50 000, d = 768) plus a clipped copy.
package main

import (
	"os"

	"github.com/dpopt/dpopt/examples/internal/bench"
)

func main() {
	os.Exit(bench.FilesMain("cifar", 1e-5, os.Args[1:], os.Stdout, os.Stderr))
}
