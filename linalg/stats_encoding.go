package linalg

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
)

// statsMagic opens the binary encoding of a Stats; statsVersion is the
// version MarshalBinary and MarshalJSON write for statistics that do not
// quantise, statsVersionQuantized the one for quantised statistics (it adds
// the quantum).
const (
	statsMagic            = "dpoptSTS"
	statsVersion          = 1
	statsVersionQuantized = 2
	statsFormat           = "dpopt.linalg.Stats" // the "format" field of the JSON encoding
)

// statsCRC is the CRC-32C table that checksums the binary encoding.
var statsCRC = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary implements encoding.BinaryMarshaler. The encoding, version 1
// (version 2 for quantised statistics), is little-endian:
//
//	"dpoptSTS"  8 bytes
//	version     uint32 (1 or 2)
//	d, K, n     uint64 each
//	quantum     float64 bits, version 2 only (see NewQuantizedStats)
//	counts      K × int64
//	gram        d(d+1)/2 × float64 bits, the upper triangle row by row
//	sums        K·d × float64 bits, ClassSums row by row
//	checksum    uint32, CRC-32C (Castagnoli) of all the bytes before it
//
// Values are stored as their IEEE 754 bits, so a round trip is exact.
// Workers is not stored.
func (s *Stats) MarshalBinary() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	d, k := s.d, s.k
	b := make([]byte, 0, statsBinarySize(d, k, s.version()))
	b = append(b, statsMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(s.version()))
	b = binary.LittleEndian.AppendUint64(b, uint64(d))
	b = binary.LittleEndian.AppendUint64(b, uint64(k))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.n))
	if s.quantum > 0 {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.quantum))
	}
	for _, c := range s.counts {
		b = binary.LittleEndian.AppendUint64(b, uint64(c))
	}
	for i := range d {
		for _, v := range s.gram[i*d+i : (i+1)*d] {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	for _, v := range s.sums {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, statsCRC)), nil
}

// version is the encoding version of s.
func (s *Stats) version() int {
	if s.quantum > 0 {
		return statsVersionQuantized
	}
	return statsVersion
}

// statsBinarySize is the length of the binary encoding of a given version
// (d, k already bounded by NewStats or by the decoder's checks).
func statsBinarySize(d, k, version int) int {
	size := len(statsMagic) + 4 + 3*8 + 8*k + 8*(d*(d+1)/2) + 8*k*d + 4
	if version == statsVersionQuantized {
		size += 8
	}
	return size
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler: it decodes the
// output of MarshalBinary into s, replacing its contents (Workers is kept).
// It returns an error wrapping ErrFormat, and leaves s unchanged, if data is
// truncated, has trailing bytes, an unknown magic or version, a bad checksum,
// counts that do not add up to n, or a non-finite value.
func (s *Stats) UnmarshalBinary(data []byte) error {
	const header = len(statsMagic) + 4 + 3*8
	if len(data) < header+4 || string(data[:len(statsMagic)]) != statsMagic {
		return fmt.Errorf("linalg: not encoded statistics: %w", ErrFormat)
	}
	p := data[len(statsMagic):]
	version := int(binary.LittleEndian.Uint32(p))
	if version != statsVersion && version != statsVersionQuantized {
		return fmt.Errorf("linalg: statistics encoding version %d, want %d or %d: %w",
			version, statsVersion, statsVersionQuantized, ErrFormat)
	}
	d64, k64, n64 := binary.LittleEndian.Uint64(p[4:]), binary.LittleEndian.Uint64(p[12:]), binary.LittleEndian.Uint64(p[20:])
	if d64 < 1 || d64 > 1<<24 || k64 > 1<<40/d64 {
		return fmt.Errorf("linalg: statistics of %d features and %d classes: %w", d64, k64, ErrFormat)
	}
	d, k := int(d64), int(k64)
	if want := statsBinarySize(d, k, version); len(data) != want {
		return fmt.Errorf("linalg: encoded statistics of %d bytes, want %d: %w", len(data), want, ErrFormat)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, statsCRC) != sum {
		return fmt.Errorf("linalg: statistics checksum mismatch: %w", ErrFormat)
	}
	t, err := NewStats(d, k)
	if err != nil {
		return fmt.Errorf("linalg: %w: %w", ErrFormat, err)
	}
	t.n = int64(n64)
	p = data[header:]
	next := func() uint64 { v := binary.LittleEndian.Uint64(p); p = p[8:]; return v }
	if version == statsVersionQuantized {
		if t.quantum = math.Float64frombits(next()); t.quantum == 0 {
			return fmt.Errorf("linalg: version %d statistics with quantum 0: %w", version, ErrFormat)
		}
	}
	for l := range k {
		t.counts[l] = int64(next())
	}
	for i := range d {
		for j := i; j < d; j++ {
			t.gram[i*d+j] = math.Float64frombits(next())
		}
	}
	for i := range t.sums {
		t.sums[i] = math.Float64frombits(next())
	}
	if err := t.validate(); err != nil {
		return err
	}
	s.d, s.k, s.n, s.quantum, s.gram, s.sums, s.counts = t.d, t.k, t.n, t.quantum, t.gram, t.sums, t.counts
	return nil
}

// validate checks decoded statistics: n ≥ 0, counts ≥ 0 adding up to n (when
// K > 0), finite Gram and sums, non-negative Gram diagonal, and for
// quantised statistics a valid quantum, values on its grid and a Gram
// diagonal within the exactness limit.
func (s *Stats) validate() error {
	if s.n < 0 {
		return fmt.Errorf("linalg: statistics of %d rows: %w", s.n, ErrFormat)
	}
	if s.k > 0 {
		var total int64
		for l, c := range s.counts {
			if c < 0 || c > s.n-total {
				return fmt.Errorf("linalg: class %d count %d inconsistent with %d rows: %w", l, c, s.n, ErrFormat)
			}
			total += c
		}
		if total != s.n {
			return fmt.Errorf("linalg: class counts add up to %d, want %d rows: %w", total, s.n, ErrFormat)
		}
	}
	for i := range s.d {
		if s.gram[i*s.d+i] < 0 {
			return fmt.Errorf("linalg: negative Gram diagonal entry %d: %w", i, ErrFormat)
		}
		for j := i; j < s.d; j++ {
			if v := s.gram[i*s.d+j]; math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("linalg: Gram entry (%d, %d) = %v: %w", i, j, v, ErrFormat)
			}
		}
	}
	for i, v := range s.sums {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("linalg: class sum (%d, %d) = %v: %w", i/s.d, i%s.d, v, ErrFormat)
		}
	}
	return s.validateQuantized()
}

// statsJSON is the JSON form of a Stats.
type statsJSON struct {
	Format      string      `json:"format"`
	Version     int         `json:"version"`
	Dim         int         `json:"dim"`
	Classes     int         `json:"classes"`
	Count       int64       `json:"count"`
	Quantum     float64     `json:"quantum,omitempty"`
	ClassCounts []int64     `json:"classCounts"`
	GramUpper   []float64   `json:"gramUpper"`
	ClassSums   [][]float64 `json:"classSums"`
}

// MarshalJSON implements json.Marshaler: an object with "format"
// ("dpopt.linalg.Stats"), "version" (1, or 2 for quantised statistics),
// "dim", "classes", "count", "quantum" (version 2 only, see
// NewQuantizedStats), "classCounts", "gramUpper" (the upper triangle row by
// row, d(d+1)/2 numbers) and "classSums" (K rows of d numbers). Numbers are written in the
// shortest form that parses back to the same float64, so a round trip is
// exact. Workers is not stored.
func (s *Stats) MarshalJSON() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	j := statsJSON{
		Format: statsFormat, Version: s.version(), Dim: s.d, Classes: s.k, Count: s.n, Quantum: s.quantum,
		ClassCounts: s.ClassCounts(),
		GramUpper:   make([]float64, 0, s.d*(s.d+1)/2),
		ClassSums:   make([][]float64, s.k),
	}
	for i := range s.d {
		j.GramUpper = append(j.GramUpper, s.gram[i*s.d+i:(i+1)*s.d]...)
	}
	for l := range s.k {
		j.ClassSums[l] = s.sums[l*s.d : (l+1)*s.d]
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler for the output of MarshalJSON,
// replacing the contents of s (Workers is kept). It returns an error
// wrapping ErrFormat, and leaves s unchanged, for a wrong format or version,
// lengths that do not match dim and classes, counts that do not add up, or
// non-finite values.
func (s *Stats) UnmarshalJSON(data []byte) error {
	var j statsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("linalg: statistics JSON: %w: %w", ErrFormat, err)
	}
	if j.Format != statsFormat || j.Version != statsVersion && j.Version != statsVersionQuantized ||
		(j.Version == statsVersionQuantized) != (j.Quantum != 0) {
		return fmt.Errorf("linalg: statistics JSON format %q version %d with quantum %g, want %q version %d, or %d with a quantum: %w",
			j.Format, j.Version, j.Quantum, statsFormat, statsVersion, statsVersionQuantized, ErrFormat)
	}
	if j.Dim < 1 || j.Dim > 1<<24 || j.Classes < 0 || j.Classes > 1<<40/j.Dim {
		return fmt.Errorf("linalg: statistics JSON of %d features and %d classes: %w", j.Dim, j.Classes, ErrFormat)
	}
	d, k := j.Dim, j.Classes
	if len(j.ClassCounts) != k || len(j.ClassSums) != k || len(j.GramUpper) != d*(d+1)/2 {
		return fmt.Errorf("linalg: statistics JSON lengths do not match %d features and %d classes: %w", d, k, ErrFormat)
	}
	t, err := NewStats(d, k)
	if err != nil {
		return fmt.Errorf("linalg: %w: %w", ErrFormat, err)
	}
	t.n, t.quantum = j.Count, j.Quantum
	copy(t.counts, j.ClassCounts)
	p := j.GramUpper
	for i := range d {
		copy(t.gram[i*d+i:(i+1)*d], p[:d-i])
		p = p[d-i:]
	}
	for l, row := range j.ClassSums {
		if len(row) != d {
			return fmt.Errorf("linalg: statistics JSON class %d sum of length %d, want %d: %w", l, len(row), d, ErrFormat)
		}
		copy(t.sums[l*d:], row)
	}
	if err := t.validate(); err != nil {
		return err
	}
	s.d, s.k, s.n, s.quantum, s.gram, s.sums, s.counts = t.d, t.k, t.n, t.quantum, t.gram, t.sums, t.counts
	return nil
}
