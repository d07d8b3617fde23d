package dpbeam

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// Exponents of the least significant bits of the exact sums. A product of
// two float32 values is a multiple of 2⁻²⁹⁸ (float32's smallest step is
// 2⁻¹⁴⁹) and exact in float64, and float64 sums of such multiples stay
// multiples of 2⁻²⁹⁸; sums of float32 values stay multiples of 2⁻¹⁴⁹. So the
// per-block Grams and class sums of the core library are added without any
// rounding.
const (
	gramLSB = -298
	sumsLSB = -149
)

// statsAcc is the accumulator of StatsFn: exact sums of the per-block
// statistics. The zero value (D = 0) is empty.
type statsAcc struct {
	D, K   int
	N      int64
	Counts []int64
	Gram   *fixed // upper triangle, row by row: d(d+1)/2 entries
	Sums   *fixed // K×d, row l is the sum of class l's rows
}

func newStatsAcc(d, k int, clip float64) *statsAcc {
	gl, gw := fixedLayout(gramLSB, clip*clip)
	sl, sw := fixedLayout(sumsLSB, clip)
	return &statsAcc{
		D: d, K: k,
		Counts: make([]int64, k),
		Gram:   newFixed(d*(d+1)/2, gl, gw),
		Sums:   newFixed(k*d, sl, sw),
	}
}

// addBlock clips a copy of b's rows to clip and adds their statistics.
func (a *statsAcc) addBlock(b Block, clip float64, k int) (*statsAcc, error) {
	if b.X == nil || b.X.Rows == 0 {
		return a, nil
	}
	if (k == 0) != (b.Labels == nil) {
		return nil, fmt.Errorf("dpbeam: block %s: labels and Classes = %d disagree", b.Key, k)
	}
	x := &linalg.Matrix32{Rows: b.X.Rows, Cols: b.X.Cols, Data: append([]float32(nil), b.X.Data...)}
	if _, err := dp.ClipRows(x, clip); err != nil {
		return nil, fmt.Errorf("dpbeam: block %s: %w", b.Key, err)
	}
	t, err := linalg.NewStats(x.Cols, k)
	if err != nil {
		return nil, err
	}
	t.Workers = 1 // results do not depend on it; Beam runs one bundle per core
	if err := t.Add(x, b.Labels); err != nil {
		return nil, fmt.Errorf("dpbeam: block %s: %w", b.Key, err)
	}
	if a.D == 0 {
		a = newStatsAcc(x.Cols, k, clip)
	}
	if a.D != x.Cols || a.K != k {
		return nil, fmt.Errorf("dpbeam: block %s has %d features, earlier blocks %d: %w", b.Key, x.Cols, a.D, linalg.ErrShape)
	}
	return a, a.addStats(t)
}

// addStats adds the values of a core Stats exactly.
func (a *statsAcc) addStats(t *linalg.Stats) error {
	d := a.D
	raw := t.Gram().RawSymmetric()
	e := 0
	for i := range d {
		for _, v := range raw.Data[i*raw.Stride+i : i*raw.Stride+d] {
			if err := a.Gram.add(e, v); err != nil {
				return err
			}
			e++
		}
	}
	if a.K > 0 {
		for i, v := range t.ClassSums().RawMatrix().Data {
			if err := a.Sums.add(i, v); err != nil {
				return err
			}
		}
		for l, c := range t.ClassCounts() {
			a.Counts[l] += c
		}
	}
	a.N += t.Count()
	return nil
}

// merge adds o into a and returns the result (either may be empty).
func (a *statsAcc) merge(o *statsAcc) (*statsAcc, error) {
	switch {
	case o == nil || o.D == 0:
		return a, nil
	case a == nil || a.D == 0:
		return o, nil
	case a.D != o.D || a.K != o.K:
		return nil, fmt.Errorf("dpbeam: merging statistics of %d features and %d classes into %d and %d: %w",
			o.D, o.K, a.D, a.K, linalg.ErrShape)
	}
	if err := a.Gram.merge(o.Gram); err != nil {
		return nil, err
	}
	if err := a.Sums.merge(o.Sums); err != nil {
		return nil, err
	}
	for l, c := range o.Counts {
		a.Counts[l] += c
	}
	a.N += o.N
	return a, nil
}

// stats rounds the exact sums to float64 and returns them as a core Stats,
// through its documented binary encoding (version 1).
func (a *statsAcc) stats() (*linalg.Stats, error) {
	if a == nil || a.D == 0 {
		return nil, fmt.Errorf("dpbeam: statistics of no rows: %w", linalg.ErrEmpty)
	}
	d, k := a.D, a.K
	b := make([]byte, 0, 8+4+24+8*k+8*(d*(d+1)/2)+8*k*d+4)
	b = append(b, "dpoptSTS"...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, uint64(d))
	b = binary.LittleEndian.AppendUint64(b, uint64(k))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.N))
	for _, c := range a.Counts {
		b = binary.LittleEndian.AppendUint64(b, uint64(c))
	}
	for i := range a.Gram.len() {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Gram.float(i)))
	}
	for i := range a.Sums.len() {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Sums.float(i)))
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	s := new(linalg.Stats)
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("dpbeam: internal: %w", err)
	}
	return s, nil
}

// encodeStatsAcc and decodeStatsAcc are the Beam coder of the accumulator.
func encodeStatsAcc(a *statsAcc) ([]byte, error) {
	if a == nil || a.D == 0 {
		return []byte{0}, nil
	}
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(a.D))
	b = binary.AppendUvarint(b, uint64(a.K))
	b = binary.AppendUvarint(b, uint64(a.N))
	for _, c := range a.Counts {
		b = binary.AppendUvarint(b, uint64(c))
	}
	b = a.Gram.appendBinary(b)
	return a.Sums.appendBinary(b), nil
}

func decodeStatsAcc(p []byte) (*statsAcc, error) {
	if len(p) == 1 && p[0] == 0 {
		return &statsAcc{}, nil
	}
	if len(p) == 0 || p[0] != 1 {
		return nil, errCorrupt
	}
	p = p[1:]
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return nil, errCorrupt
		}
		vals[i], p = v, p[n:]
	}
	if vals[0] == 0 || vals[0] > 1<<24 || vals[1] > uint64(len(p)) {
		return nil, errCorrupt
	}
	a := &statsAcc{D: int(vals[0]), K: int(vals[1]), N: int64(vals[2]), Counts: make([]int64, vals[1])}
	for i := range a.Counts {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return nil, errCorrupt
		}
		a.Counts[i], p = int64(v), p[n:]
	}
	var err error
	if a.Gram, p, err = readFixed(p); err != nil {
		return nil, err
	}
	if a.Sums, p, err = readFixed(p); err != nil {
		return nil, err
	}
	if len(p) != 0 || a.Gram.len() != a.D*(a.D+1)/2 || a.Sums.len() != a.K*a.D {
		return nil, errCorrupt
	}
	return a, nil
}

// StatsFn is a Beam CombineFn from Blocks to the sufficient statistics of
// DP-LS and DP-FC: each block's rows are clipped to L2 norm ClipNorm
// (dp.ClipRows), its Gram, class sums and counts computed by linalg.Stats,
// and the blocks' values summed exactly. ExtractOutput returns the statistics
// as linalg.Stats.MarshalBinary bytes (decode with UnmarshalBinary): each
// entry the correctly rounded value of the exact sum over blocks, so the
// result does not depend on the runner, the bundling, the number of workers
// or the order of the merges. No noise is added here.
//
// Memory: an accumulator holds w·d(d+1)/2 + w'·K·d words, with w = 6 and
// w' = 4 for ClipNorm about 1 (one more word per factor 2⁶⁴ of ClipNorm²);
// each AddInput also needs a d×d scratch Gram and a copy of the block.
type StatsFn struct {
	// ClipNorm is the L2 norm C rows are clipped to. Required.
	ClipNorm float64
	// Classes is the number of classes K; 0 for unlabelled rows.
	Classes int
}

// CreateAccumulator returns an empty accumulator.
func (f *StatsFn) CreateAccumulator() *statsAcc { return &statsAcc{} }

// AddInput adds the statistics of one block.
func (f *StatsFn) AddInput(a *statsAcc, b Block) (*statsAcc, error) {
	if err := positive("ClipNorm", f.ClipNorm); err != nil {
		return nil, err
	}
	return a.addBlock(b, f.ClipNorm, f.Classes)
}

// MergeAccumulators adds b into a, exactly.
func (f *StatsFn) MergeAccumulators(a, b *statsAcc) (*statsAcc, error) { return a.merge(b) }

// ExtractOutput returns the encoded linalg.Stats.
func (f *StatsFn) ExtractOutput(a *statsAcc) ([]byte, error) {
	s, err := a.stats()
	if err != nil {
		return nil, err
	}
	return s.MarshalBinary()
}

// StatsOf computes in memory what StatsFn computes on a pipeline over the
// same blocks, bit for bit, in any order: the reference for tests and a
// single-machine equivalent.
func StatsOf(blocks []Block, clip float64, classes int) (*linalg.Stats, error) {
	if err := positive("ClipNorm", clip); err != nil {
		return nil, err
	}
	a := &statsAcc{}
	for _, b := range blocks {
		var err error
		if a, err = a.addBlock(b, clip, classes); err != nil {
			return nil, err
		}
	}
	return a.stats()
}
