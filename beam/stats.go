package dpbeam

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

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
// statistics. The zero value (D = 0) is empty. For quantised rows it is a
// quantised linalg.Stats (Q), whose float64 sums are exact already; else
// the per-block values are added in wide fixed point (Gram, Sums).
type statsAcc struct {
	D, K   int
	N      int64
	Counts []int64
	Gram   *fixed        // upper triangle, row by row: d(d+1)/2 entries
	Sums   *fixed        // K×d, row l is the sum of class l's rows
	Q      *linalg.Stats // quantised rows: the statistics themselves
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

// addBlock prepares a copy of b's rows as r says and adds their statistics.
func (a *statsAcc) addBlock(b Block, r Rows, k int) (*statsAcc, error) {
	if b.X == nil || b.X.Rows == 0 {
		return a, nil
	}
	if (k == 0) != (b.Labels == nil) {
		return nil, fmt.Errorf("dpbeam: block %s: labels and Classes = %d disagree", b.Key, k)
	}
	q, err := r.quantum()
	if err != nil {
		return nil, err
	}
	x, err := r.prepare(b.X)
	if err != nil {
		return nil, fmt.Errorf("dpbeam: block %s: %w", b.Key, err)
	}
	if q > 0 {
		return a.addQuantized(b.Key, x, b.Labels, k, q)
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
		a = newStatsAcc(x.Cols, k, r.ClipNorm)
	}
	if a.Q != nil {
		return nil, fmt.Errorf("dpbeam: internal: unquantised block added to quantised statistics")
	}
	if a.D != x.Cols || a.K != k {
		return nil, fmt.Errorf("dpbeam: block %s has %d features, earlier blocks %d: %w", b.Key, x.Cols, a.D, linalg.ErrShape)
	}
	return a, a.addStats(t)
}

// addQuantized adds the rows x (clipped and quantised to q) to quantised
// statistics, whose float64 sums are exact (linalg.NewQuantizedStats).
func (a *statsAcc) addQuantized(key string, x *linalg.Matrix32, labels []int, k int, q float64) (*statsAcc, error) {
	if a.D == 0 {
		st, err := linalg.NewQuantizedStats(x.Cols, k, q)
		if err != nil {
			return nil, err
		}
		a = &statsAcc{D: x.Cols, K: k, Q: st}
	}
	if a.Q == nil || a.D != x.Cols || a.K != k {
		return nil, fmt.Errorf("dpbeam: block %s has %d features, earlier blocks %d: %w", key, x.Cols, a.D, linalg.ErrShape)
	}
	a.Q.Workers = 1 // results do not depend on it; Beam runs one bundle per core
	if err := a.Q.Add(x, labels); err != nil {
		return nil, fmt.Errorf("dpbeam: block %s: %w", key, err)
	}
	return a, nil
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
	case (a.Q == nil) != (o.Q == nil):
		return nil, fmt.Errorf("dpbeam: merging quantised and unquantised statistics: %w", linalg.ErrShape)
	case a.Q != nil:
		if err := a.Q.Merge(o.Q); err != nil {
			return nil, fmt.Errorf("dpbeam: %w", err)
		}
		return a, nil
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
	if a.Q != nil {
		return a.Q, nil
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
	if a.Q != nil {
		b, err := a.Q.MarshalBinary()
		return append([]byte{2}, b...), err
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
	if len(p) > 0 && p[0] == 2 {
		st := new(linalg.Stats)
		if err := st.UnmarshalBinary(p[1:]); err != nil || st.Quantum() == 0 {
			return nil, errCorrupt
		}
		return &statsAcc{D: st.Dim(), K: st.Classes(), Q: st}, nil
	}
	if len(p) == 0 || p[0] != 1 {
		return nil, errCorrupt
	}
	p = p[1:]
	vals, p, ok := readUvarints3(p)
	if !ok {
		return nil, errCorrupt
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
// DP-LS and DP-FC: each block's rows are prepared as Rows says (clipped to
// L2 norm ClipNorm, quantised if Quantize is set), their Gram, class sums
// and counts computed by linalg.Stats, and the blocks' values summed
// exactly. ExtractOutput returns the statistics as
// linalg.Stats.MarshalBinary bytes (decode with UnmarshalBinary). No noise
// is added here.
//
// With Quantize set (16 is a good default, see optim.LS.Quantize), the
// statistics are exact sums of the quantised rows, held in a quantised
// linalg.Stats: the result is the same to the bit for the same rows however
// they are split into files and blocks, ordered, bundled and merged, and
// equals the core's (linalg.NewQuantizedStats, optim.LS with the same
// Quantize) — or the pipeline fails with an error wrapping
// linalg.ErrInexact if a Gram diagonal entry reaches 2⁵³·q². Without it,
// each block's float64 statistics are added in wide fixed point: each entry
// is the correctly rounded exact sum over blocks, independent of the runner,
// bundling and merge order, but dependent on which rows form a block.
//
// Memory: an accumulator holds d(d+1)/2 + K·d float64s (d² + K·d in
// memory) with Quantize set; without, w·d(d+1)/2 + w'·K·d words, with w = 6
// and w' = 4 for ClipNorm about 1 (one more word per factor 2⁶⁴ of
// ClipNorm²). Each AddInput also needs a d×d scratch Gram and a copy of the
// block.
type StatsFn struct {
	Rows
	// Classes is the number of classes K; 0 for unlabelled rows.
	Classes int
}

// CreateAccumulator returns an empty accumulator.
func (f *StatsFn) CreateAccumulator() *statsAcc { return &statsAcc{} }

// AddInput adds the statistics of one block.
func (f *StatsFn) AddInput(a *statsAcc, b Block) (*statsAcc, error) {
	return a.addBlock(b, f.Rows, f.Classes)
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
func StatsOf(blocks []Block, r Rows, classes int) (*linalg.Stats, error) {
	if _, err := r.quantum(); err != nil {
		return nil, err
	}
	a := &statsAcc{}
	for _, b := range blocks {
		var err error
		if a, err = a.addBlock(b, r, classes); err != nil {
			return nil, err
		}
	}
	return a.stats()
}

// readUvarints3 reads the three uvarints that open an encoded accumulator
// and returns them with the rest of p; ok is false if p ends early.
func readUvarints3(p []byte) (vals [3]uint64, rest []byte, ok bool) {
	for i := range vals {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return vals, nil, false
		}
		vals[i], p = v, p[n:]
	}
	return vals, p, true
}
