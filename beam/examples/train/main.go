// Command train fits DP-LS or DP-FC on feature files with an Apache Beam
// pipeline: the statistics and gradient sums are computed by the workers, the
// noise is added on the driver (this program), which also keeps the ledger.
//
// Locally, with the prism runner (the default) or --runner=direct:
//
//	go run ./examples/train --input='/data/train-*.npz' --classes=10 --method=ls --epsilon=1
//
// The default build compiles in only the local runners and local files, so
// that it needs none of the Dataflow, GCS, Flink or Spark client code. The
// others are selected by build tags (several may be combined, e.g.
// -tags dataflow,flink):
//
//	-tags dataflow   the Dataflow runner and gs:// files
//	-tags flink      the Flink runner (through a Beam job server)
//	-tags spark      the Spark runner (through a Beam job server)
//
// On Dataflow (the workers read gs:// inputs and write results to --temp_dir):
//
//	go run -tags dataflow ./examples/train --runner=dataflow --project=P --region=us-central1 \
//	    --staging_location=gs://B/staging --temp_location=gs://B/tmp --temp_dir=gs://B/dpbeam \
//	    --input='gs://B/features/train.tfr-*' --classes=1000 --method=fc --epsilon=1
//
// On Flink or Spark (a job server, e.g. the apache/beam_flink1.18_job_server
// container, and a filesystem every worker shares for --temp_dir):
//
//	go run -tags flink ./examples/train --runner=flink --endpoint=localhost:8099 --environment_type=LOOPBACK ...
//	go run -tags spark ./examples/train --runner=spark --endpoint=localhost:8099 --environment_type=LOOPBACK ...
//
// The runner flags (--runner, --project, --endpoint, --environment_type, …)
// are Beam's; see https://beam.apache.org/documentation/runners/.
//
// --quantize=16 (the default) keeps 16 bits of each clipped feature (see
// optim.LS.Quantize): the statistics are then exact, and the model for a
// given --seed is the same to the bit however the input is sharded, and the
// one optim.LS computes on one machine. --quantize=0 turns it off.
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
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec/optimized" // the reflection-free runtime, as beamx
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners" // the --runner flag
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/direct"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

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
	quantize  = flag.Int("quantize", 16, "bits kept of each clipped feature, for statistics independent of the sharding; 0 = off")
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

// builtIn maps the runners compiled into this build to the build tag that
// adds each of the others (see the runner_*.go files).
var builtIn = map[string]bool{"prism": true, "direct": true}

// tagOf names the build tag of each optional runner.
var tagOf = map[string]string{"dataflow": "dataflow", "flink": "flink", "spark": "spark"}

// runnerName returns the --runner flag's runner (prism by default), or an
// error naming the build tag it needs.
func runnerName() (string, error) {
	r := *runners.Runner
	if r == "" {
		r = "prism"
	}
	if !builtIn[r] {
		if tag, ok := tagOf[r]; ok {
			return "", fmt.Errorf("train: runner %q is not in this build: build with -tags %s", r, tag)
		}
		return "", fmt.Errorf("train: unknown runner %q (prism, direct; dataflow, flink, spark with their build tags)", r)
	}
	return r, nil
}

// runPipeline runs p on the --runner runner.
func runPipeline(ctx context.Context, p *beam.Pipeline) error {
	r, err := runnerName()
	if err != nil {
		return err
	}
	_, err = beam.Run(ctx, r, p)
	return err
}

func run(ctx context.Context) error {
	if *input == "" || *classes < 2 {
		return fmt.Errorf("train: --input and --classes (≥ 2) are required")
	}
	if _, err := runnerName(); err != nil {
		return err
	}
	p := &dpbeam.Pipeline{
		Source: func(s beam.Scope) (beam.PCollection, error) {
			return dpbeam.ReadFiles(s, *input, features.Options{Classes: *classes}, *blockRows)
		},
		Run:     runPipeline,
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
		res, err = dpbeam.SolveLS(ctx, &optim.LS{Privacy: priv, ClipNorm: *clip, Quantize: *quantize, Global: true}, p, *classes, nil, src)
	case "fc":
		res, err = dpbeam.SolveFC(ctx, &optim.FC{Privacy: priv, ClipNorm: *clip, GradClipNorm: *gradClip, Steps: *steps, Quantize: *quantize}, p, *classes, nil, src)
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
