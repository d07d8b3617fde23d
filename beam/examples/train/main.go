// Command train fits DP-LS or DP-FC on feature files with an Apache Beam
// pipeline: the statistics and gradient sums are computed by the workers, the
// noise is added on the driver (this program), which also keeps the ledger.
//
// Locally, with the prism runner (the default):
//
//	go run ./examples/train --input='/data/train-*.npz' --classes=10 --method=ls --epsilon=1
//
// On Dataflow (the workers read gs:// inputs and write results to --temp_dir):
//
//	go run ./examples/train --runner=dataflow --project=P --region=us-central1 \
//	    --staging_location=gs://B/staging --temp_location=gs://B/tmp --temp_dir=gs://B/dpbeam \
//	    --input='gs://B/features/train.tfr-*' --classes=1000 --method=fc --epsilon=1
//
// On Flink or Spark (a job server, e.g. the apache/beam_flink1.18_job_server
// container, and a filesystem every worker shares for --temp_dir):
//
//	go run ./examples/train --runner=flink --endpoint=localhost:8099 --environment_type=LOOPBACK ...
//	go run ./examples/train --runner=spark --endpoint=localhost:8099 --environment_type=LOOPBACK ...
//
// The runner flags (--runner, --project, --endpoint, --environment_type, …)
// are Beam's; see https://beam.apache.org/documentation/runners/.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs" // gs:// inputs and temp_dir
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	dpbeam "github.com/dpopt/dpopt/beam"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/optim"
)

var (
	input     = flag.String("input", "", "feature files: a path or glob, .npz or TFRecord (required)")
	classes   = flag.Int("classes", 0, "number of classes K, public (required)")
	method    = flag.String("method", "ls", "ls (DP-LS) or fc (DP-FC)")
	epsilon   = flag.Float64("epsilon", 1, "target ε; +Inf for a non-private run")
	delta     = flag.Float64("delta", 1e-6, "target δ")
	clip      = flag.Float64("clip", 1, "feature clip norm C")
	gradClip  = flag.Float64("grad_clip", 1, "gradient clip norm C_g (fc)")
	steps     = flag.Int("steps", 10, "full-batch steps (fc)")
	blockRows = flag.Int("block_rows", dpbeam.DefaultBlockRows, "rows per block (see the package documentation, Reproducibility)")
	tempDir   = flag.String("temp_dir", os.TempDir(), "directory on a Beam filesystem for pipeline results (gs://… on Dataflow)")
	seed      = flag.Uint64("seed", 0, "noise seed for a replayable research run; 0 uses a secure source")
	output    = flag.String("output", "", "write the model and report as JSON here (default stdout)")
)

func main() {
	flag.Parse()
	beam.Init()
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	if *input == "" || *classes < 2 {
		return fmt.Errorf("train: --input and --classes (≥ 2) are required")
	}
	p := &dpbeam.Pipeline{
		Source: func(s beam.Scope) (beam.PCollection, error) {
			return dpbeam.ReadFiles(s, *input, features.Options{Classes: *classes}, *blockRows)
		},
		Run:     beamx.Run,
		TempDir: *tempDir,
	}
	src := dp.NewSecureSource()
	if *seed != 0 {
		src = dp.NewSeededSource(*seed)
	}
	priv := optim.Privacy{Epsilon: *epsilon, Delta: *delta}
	var res *optim.Result
	var err error
	switch *method {
	case "ls":
		res, err = dpbeam.SolveLS(ctx, &optim.LS{Privacy: priv, ClipNorm: *clip}, p, *classes, nil, src)
	case "fc":
		res, err = dpbeam.SolveFC(ctx, &optim.FC{Privacy: priv, ClipNorm: *clip, GradClipNorm: *gradClip, Steps: *steps}, p, *classes, nil, src)
	default:
		return fmt.Errorf("train: unknown --method %q (ls or fc)", *method)
	}
	if err != nil {
		return err
	}
	k, d := res.Model.W.Dims()
	w := make([][]float64, k)
	for i := range w {
		w[i] = res.Model.W.RawRowView(i)[:d]
	}
	rep := *res.Report
	if math.IsInf(rep.Spent, 1) {
		rep.Spent = -1 // JSON has no +Inf; -1 marks a non-private run
	}
	if math.IsInf(rep.Epsilon, 1) {
		rep.Epsilon = -1
	}
	out := os.Stdout
	if *output != "" {
		f, err := os.Create(*output)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	enc := json.NewEncoder(out)
	return enc.Encode(struct {
		W      [][]float64   `json:"w"`
		Bias   []float64     `json:"bias,omitempty"`
		Report *optim.Report `json:"report"`
	}{w, res.Model.Bias, &rep})
}
