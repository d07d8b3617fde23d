// Command imagenet prints the privacy–utility table of dpopt's methods on
// ImageNet-1k features extracted by a pretrained model, as in Mehta,
// Krichene, Thakurta, Kurakin, Cutkosky, "Differentially Private Image
// Classification from Features" (arXiv 2211.13403): mean test accuracy at
// each ε, δ = 8·10⁻⁷ (the paper's ImageNet setting, about 1/n for
// n = 1 281 167), next to each method's non-private ceiling.
//
// Run it on your feature files (.npz with arrays "features" and "labels",
// sharded TFRecord of tf.train.Example with "repr" and "label" as written by
// the paper's dp_transfer code, .npy or CSV):
//
//	go run ./examples/imagenet -train 'imagenet_train.tfr*' -test 'imagenet_val.tfr*'
//	go run ./examples/imagenet -train train.npz -test val.npz -methods ls,fc -epsilons 0.1,1,8
//
// Rows are L2-normalised and clipped to norm 1; each method uses the
// defaults of `dpopt train`. Runs use seeded noise sources so the table
// replays exactly. DP-Newton (K = 1000 per-class Hessians of size d×d per
// step) is skipped unless -newton-limit allows it. Memory: the features as
// float32, n·d·4 bytes (6.6 GB at d = 1280) plus a clipped copy for FC and
// SGD; the Gram costs n·d² multiply-adds (build with -tags openblas for speed).
package main

import (
	"os"

	"github.com/dpopt/dpopt/examples/internal/bench"
)

func main() {
	os.Exit(bench.FilesMain("imagenet", 8e-7, os.Args[1:], os.Stdout, os.Stderr))
}
