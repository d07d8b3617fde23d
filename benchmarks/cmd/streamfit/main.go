// Command streamfit measures DP-LS and DP-FC streamed from a feature file on
// disk at the ImageNet shape: wall time, peak resident memory and its ratio
// to the size of the features.
//
// Write a seeded synthetic file (float32 features, Gaussian classes), then fit:
//
//	go run ./benchmarks/cmd/streamfit -gen -n 200000 -d 1280 -k 1000 -out /tmp/imnet.npz
//	go run ./benchmarks/cmd/streamfit -method ls -in /tmp/imnet.npz -k 1000
//	go run ./benchmarks/cmd/streamfit -method fc -steps 10 -in /tmp/imnet.npz -k 1000
//
// -method read only streams the file (the I/O floor). Each fit prints one JSON
// line; peak_rss_bytes is the process's maximum resident set (getrusage), so
// run one method per process.
package main

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
)

func main() {
	var (
		gen     = flag.Bool("gen", false, "write a synthetic feature file to -out and exit")
		n       = flag.Int("n", 200000, "rows (with -gen)")
		d       = flag.Int("d", 1280, "features per row (with -gen)")
		k       = flag.Int("k", 1000, "classes")
		seed    = flag.Uint64("seed", 1, "seed of the data (with -gen) and of the noise")
		out     = flag.String("out", "", "file to write (.npz or .tfrecord) with -gen")
		in      = flag.String("in", "", "feature file to stream")
		method  = flag.String("method", "ls", "ls, fc or read")
		steps   = flag.Int("steps", 10, "DP-FC steps")
		block   = flag.Int("block", 0, "rows per block (0 = optim.DefaultBlockRows)")
		eps     = flag.Float64("eps", 1, "ε")
		delta   = flag.Float64("delta", 8e-7, "δ")
		workers = flag.Int("workers", 0, "goroutines (0 = GOMAXPROCS)")
		fast    = flag.Bool("fast", false, "with -gen: write the .npz with a streaming writer, byte for byte what features.WriteNPZ writes (which converts through reflection and is slow at 10⁸ entries)")
	)
	flag.Parse()
	var err error
	if *gen {
		err = generate(*out, *n, *d, *k, *seed, *fast)
	} else {
		err = fit(*in, *method, *k, *steps, *block, *workers, *eps, *delta, *seed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamfit:", err)
		os.Exit(1)
	}
}

// generate writes n rows of dimension d in k Gaussian classes: row i has
// label i mod k (shuffled) and is its class mean plus unit noise, scaled so
// that the typical row norm is 1.
func generate(path string, n, d, k int, seed uint64, fast bool) error {
	if path == "" {
		return errors.New("-gen needs -out")
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	means := make([]float32, k*d)
	for i := range means {
		means[i] = float32(rng.NormFloat64())
	}
	x := linalg.NewMatrix32(n, d)
	labels := make([]int, n)
	scale := 1 / math.Sqrt(2*float64(d))
	for i := range n {
		l := rng.IntN(k)
		labels[i] = l
		row, m := x.Row(i), means[l*d:(l+1)*d]
		for j := range row {
			row[j] = float32((float64(m[j]) + rng.NormFloat64()) * scale)
		}
	}
	t0 := time.Now()
	if fast {
		err := writeNPZStreaming(path, x, labels)
		fmt.Fprintf(os.Stderr, "wrote %s in %.1fs\n", path, time.Since(t0).Seconds())
		return err
	}
	if strings.Contains(path, ".tfr") {
		err := features.WriteTFRecord(path, x, labels)
		fmt.Fprintf(os.Stderr, "wrote %s in %.1fs\n", path, time.Since(t0).Seconds())
		return err
	}
	err := features.WriteNPZ(path, x, labels)
	fmt.Fprintf(os.Stderr, "wrote %s in %.1fs\n", path, time.Since(t0).Seconds())
	return err
}

// result is one measurement.
type result struct {
	Method       string  `json:"method"`
	File         string  `json:"file"`
	N            int     `json:"n"`
	Dim          int     `json:"d"`
	Classes      int     `json:"k"`
	Steps        int     `json:"steps,omitempty"`
	BlockRows    int     `json:"block_rows"`
	Seconds      float64 `json:"seconds"`
	FeatureBytes int64   `json:"feature_bytes"`
	PeakRSS      int64   `json:"peak_rss_bytes"`
	PeakRatio    float64 `json:"peak_over_features"`
	HeapPeak     uint64  `json:"heap_total_bytes"`
	Epsilon      float64 `json:"epsilon"`
	Spent        float64 `json:"epsilon_spent,omitempty"`
	Accuracy     float64 `json:"train_accuracy_first_block,omitempty"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
}

func fit(path, method string, k, steps, block, workers int, eps, delta float64, seed uint64) error {
	if path == "" {
		return errors.New("need -in")
	}
	o := features.Options{Classes: k}
	sd := optim.FileData(path, o)
	sd.BlockRows = block
	src := dp.NewSeededSource(seed)
	ctx := context.Background()
	priv := optim.Privacy{Epsilon: eps, Delta: delta}
	res := result{Method: method, File: path, Classes: k, BlockRows: block, Epsilon: eps, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if block == 0 {
		res.BlockRows = optim.DefaultBlockRows
	}
	t0 := time.Now()
	var r *optim.Result
	var err error
	switch method {
	case "read":
		res.N, res.Dim, err = readAll(sd, res.BlockRows)
	case "ls":
		r, err = (&optim.LS{Privacy: priv, ClipNorm: 1, Workers: workers}).SolveStream(ctx, sd, nil, src)
	case "fc":
		res.Steps = steps
		r, err = (&optim.FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1, Steps: steps, Workers: workers}).SolveStream(ctx, sd, nil, src)
	default:
		return fmt.Errorf("unknown -method %q", method)
	}
	if err != nil {
		return err
	}
	res.Seconds = time.Since(t0).Seconds()
	if r != nil {
		res.N, res.Dim, res.Spent = r.Report.N, r.Report.Dim, r.Report.Spent
		if acc, err := firstBlockAccuracy(sd, r.Model); err == nil {
			res.Accuracy = acc
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	res.PeakRSS = ru.Maxrss * 1024 // kilobytes on Linux
	res.FeatureBytes = int64(res.N) * int64(res.Dim) * 4
	res.PeakRatio = float64(res.PeakRSS) / float64(res.FeatureBytes)
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	res.HeapPeak = sample[0].Value.Uint64()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// readAll streams the file once without computing: the I/O and decoding floor.
func readAll(sd *optim.StreamData, block int) (n, d int, err error) {
	st, err := sd.Open()
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	for {
		x, _, err := st.Next(block)
		if errors.Is(err, io.EOF) {
			return n, st.Dim(), nil
		}
		if err != nil {
			return 0, 0, err
		}
		n += x.Rows
	}
}

// firstBlockAccuracy is the model's accuracy on the first block of the
// file: a sanity check that the fit learned something.
func firstBlockAccuracy(sd *optim.StreamData, m *optim.Model) (float64, error) {
	st, err := sd.Open()
	if err != nil {
		return 0, err
	}
	defer st.Close()
	x, y, err := st.Next(4096)
	if err != nil {
		return 0, err
	}
	return m.Accuracy(&optim.Data{X: x, Labels: y, Classes: m.Classes()}, 0)
}

// writeNPZStreaming writes what features.WriteNPZ writes — a stored
// (uncompressed) zip with features.npy (float32, shape (n, d)) and
// labels.npy (int64), with npyio's version-2 headers — byte for byte, but
// straight from x's memory.
func writeNPZStreaming(path string, x *linalg.Matrix32, labels []int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	z := zip.NewWriter(bw)
	entry := func(name, descr, shape string, data func(w io.Writer) error) error {
		w, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			return err
		}
		hdr := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
		hdr += strings.Repeat(" ", (12+len(hdr)+1)%16) + "\n" // npyio's padding rule
		var pre [12]byte
		copy(pre[:], "\x93NUMPY\x02\x00")
		binary.LittleEndian.PutUint32(pre[8:], uint32(len(hdr)))
		if _, err := w.Write(pre[:]); err != nil {
			return err
		}
		if _, err := io.WriteString(w, hdr); err != nil {
			return err
		}
		return data(w)
	}
	err = entry("features.npy", "<f4", fmt.Sprintf("(%d, %d)", x.Rows, x.Cols), func(w io.Writer) error {
		buf := make([]byte, 0, 1<<20)
		for _, v := range x.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	err = entry("labels.npy", "<i8", fmt.Sprintf("(%d,)", len(labels)), func(w io.Writer) error {
		buf := make([]byte, 0, 8*len(labels))
		for _, l := range labels {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(l))
		}
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	if err := z.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}
