package dpbeam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local paths
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
)

func init() {
	beam.RegisterCoder(reflect.TypeOf(Block{}), encodeBlock, decodeBlock)
	beam.RegisterCoder(reflect.TypeOf(gradPart{}), encodeGradPart, decodeGradPart)
	beam.RegisterCoder(reflect.TypeOf((*statsAcc)(nil)), encodeStatsAcc, decodeStatsAcc)
	beam.RegisterCoder(reflect.TypeOf((*gradAcc)(nil)), encodeGradAcc, decodeGradAcc)
	register.Combiner3[*statsAcc, Block, []byte](&StatsFn{})
	register.Combiner3[*gradAcc, gradPart, []byte](&GradSumFn{})
	register.DoFn2x2[Block, []byte, gradPart, error](&gradFn{})
	register.DoFn3x1[context.Context, string, func(Block), error](&readFn{})
	register.Emitter1[Block]()
	register.DoFn2x1[context.Context, []byte, error](&writeFn{})
}

// ReadFiles adds to s the reading of the feature files that pattern matches
// (a path or a glob, on any Beam filesystem: local, gs://, s3://… once its
// package is imported), in Blocks of rows rows (DefaultBlockRows if 0), each
// file read by one worker with features.Open and o. Files on remote
// filesystems are first copied to a local temporary file. The pattern is
// expanded when the pipeline is built.
func ReadFiles(s beam.Scope, pattern string, o features.Options, rows int) (beam.PCollection, error) {
	if rows == 0 {
		rows = DefaultBlockRows
	}
	if rows < 1 {
		return beam.PCollection{}, &accountant.ParamError{Param: "rows", Value: float64(rows), Reason: "must be positive (0 = default)"}
	}
	ctx := context.Background()
	fs, err := filesystem.New(ctx, pattern)
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("dpbeam: %w", err)
	}
	defer fs.Close()
	files, err := fs.List(ctx, pattern)
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("dpbeam: listing %q: %w", pattern, err)
	}
	if len(files) == 0 {
		return beam.PCollection{}, fmt.Errorf("dpbeam: no file matches %q: %w", pattern, os.ErrNotExist)
	}
	s = s.Scope("dpbeam.ReadFiles")
	names := beam.CreateList(s, files)
	return beam.ParDo(s, &readFn{Options: o, Rows: rows}, names), nil
}

// readFn reads one feature file into Blocks.
type readFn struct {
	Options features.Options
	Rows    int
}

func (f *readFn) ProcessElement(ctx context.Context, path string, emit func(Block)) error {
	local, cleanup, err := localCopy(ctx, path)
	if err != nil {
		return err
	}
	defer cleanup()
	st, err := features.Open(local, f.Options)
	if err != nil {
		return fmt.Errorf("dpbeam: %w", err)
	}
	defer st.Close()
	for i := 0; ; i++ {
		x, y, err := st.Next(f.Rows)
		if err == io.EOF {
			return st.Close()
		}
		if err != nil {
			return fmt.Errorf("dpbeam: %s: %w", path, err)
		}
		emit(Block{Key: fmt.Sprintf("%s#%d", path, i), X: x, Labels: y})
	}
}

// localCopy returns a local path holding the file at path: path itself if it
// is local, else a temporary copy with the same base name.
func localCopy(ctx context.Context, path string) (string, func(), error) {
	if !strings.Contains(path, "://") {
		return path, func() {}, nil
	}
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return "", nil, fmt.Errorf("dpbeam: %w", err)
	}
	defer fs.Close()
	r, err := fs.OpenRead(ctx, path)
	if err != nil {
		return "", nil, fmt.Errorf("dpbeam: %w", err)
	}
	defer r.Close()
	dir, err := os.MkdirTemp("", "dpbeam")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	name := filepath.Join(dir, filepath.Base(path))
	w, err := os.Create(name)
	if err == nil {
		_, err = io.Copy(w, r)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("dpbeam: copying %s: %w", path, err)
	}
	return name, cleanup, nil
}

// writeFn writes its single input to Path on a Beam filesystem.
type writeFn struct{ Path string }

func (f *writeFn) ProcessElement(ctx context.Context, b []byte) error {
	return writeFile(ctx, f.Path, b)
}

func writeFile(ctx context.Context, path string, b []byte) error {
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return err
	}
	defer fs.Close()
	w, err := fs.OpenWrite(ctx, path)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func readFile(ctx context.Context, path string) ([]byte, error) {
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	r, err := fs.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if rm, ok := fs.(filesystem.Remover); ok {
		rm.Remove(ctx, path) // best effort
	}
	return b, nil
}

// Pipeline says where the data is and how to run a Beam pipeline over it.
// The drivers (Stats, Gradient, SolveLS, SolveFC) build one pipeline per
// statistic, run it, and read its single result back on the driver, where
// the noise is added.
type Pipeline struct {
	// Source adds to a pipeline the PCollection of Blocks of the data,
	// typically with ReadFiles. It is called once per pipeline run. Required.
	Source func(s beam.Scope) (beam.PCollection, error)
	// Run executes a pipeline and returns when it is done: beamx.Run with the
	// --runner flag, or prism.Execute / direct.Execute in tests. Required.
	Run func(ctx context.Context, p *beam.Pipeline) error
	// TempDir is a directory on a Beam filesystem that the workers can write
	// and the driver can read (a local directory with the local runners,
	// gs://bucket/dir on Dataflow) where each run leaves its result (d² or
	// K·d float64s) for the driver. Required.
	TempDir string
}

// run builds a pipeline with build, runs it, and returns its single []byte
// result.
func (p *Pipeline) run(ctx context.Context, name string, build func(s beam.Scope, blocks beam.PCollection) beam.PCollection) ([]byte, error) {
	if p == nil || p.Source == nil || p.Run == nil || p.TempDir == "" {
		return nil, fmt.Errorf("dpbeam: Pipeline needs Source, Run and TempDir")
	}
	var id [8]byte
	rand.Read(id[:])
	path := strings.TrimSuffix(p.TempDir, "/") + "/dpbeam-" + name + "-" + hex.EncodeToString(id[:]) + ".bin"
	bp, s := beam.NewPipelineWithRoot()
	blocks, err := p.Source(s)
	if err != nil {
		return nil, err
	}
	out := build(s.Scope("dpbeam."+name), blocks)
	beam.ParDo0(s, &writeFn{Path: path}, out)
	if err := p.Run(ctx, bp); err != nil {
		return nil, fmt.Errorf("dpbeam: %s pipeline: %w", name, err)
	}
	b, err := readFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("dpbeam: reading the %s result: %w", name, err)
	}
	return b, nil
}

// StatsTransform adds the StatsFn combine to s: blocks (a PCollection of
// Block) become a single []byte, the encoded linalg.Stats of the rows
// prepared as r says.
func StatsTransform(s beam.Scope, blocks beam.PCollection, r Rows, classes int) beam.PCollection {
	return beam.Combine(s, &StatsFn{Rows: r, Classes: classes}, blocks)
}

// GradientTransform adds one clipped-gradient sum to s: for the weights w (a
// singleton PCollection of EncodeWeights bytes, used as a side input), the
// per-example gradients on the blocks' rows, prepared as r says, are clipped
// and summed (a ParDo, since Beam combines take no side inputs) and the
// block sums combined exactly by GradSumFn into a single []byte
// (EncodeGradientSum).
func GradientTransform(s beam.Scope, blocks, w beam.PCollection, r Rows, gradClip float64, loss Loss) beam.PCollection {
	parts := beam.ParDo(s, &gradFn{Rows: r, GradClipNorm: gradClip, Loss: loss}, blocks, beam.SideInput{Input: w})
	return beam.Combine(s, &GradSumFn{GradClipNorm: gradClip}, parts)
}

// Stats runs one pipeline computing the statistics of the rows prepared as
// r says (see StatsFn). Nothing is released: the result is exact and
// private.
func (p *Pipeline) Stats(ctx context.Context, r Rows, classes int) (*linalg.Stats, error) {
	if _, err := r.quantum(); err != nil {
		return nil, err
	}
	b, err := p.run(ctx, "stats", func(s beam.Scope, blocks beam.PCollection) beam.PCollection {
		return StatsTransform(s, blocks, r, classes)
	})
	if err != nil {
		return nil, err
	}
	st := new(linalg.Stats)
	if err := st.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("dpbeam: %w", err)
	}
	return st, nil
}

// Gradient runs one pipeline computing the clipped-gradient sum at w (see
// GradientTransform). Nothing is released: the result is private.
func (p *Pipeline) Gradient(ctx context.Context, w *mat.Dense, r Rows, gradClip float64, loss Loss) (*GradientSum, error) {
	if _, err := r.quantum(); err != nil {
		return nil, err
	}
	if err := positive("GradClipNorm", gradClip); err != nil {
		return nil, err
	}
	enc := EncodeWeights(w)
	b, err := p.run(ctx, "gradient", func(s beam.Scope, blocks beam.PCollection) beam.PCollection {
		return GradientTransform(s, blocks, beam.Create(s, enc), r, gradClip, loss)
	})
	if err != nil {
		return nil, err
	}
	return DecodeGradientSum(b)
}
