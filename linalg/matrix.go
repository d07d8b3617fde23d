package linalg

import (
	"fmt"
	"math"
	"runtime"
)

// Matrix32 is a dense, row-major float32 matrix: the layout of feature files
// (one example per row). Row i is Data[i*Cols : (i+1)*Cols].
type Matrix32 struct {
	Rows, Cols int
	Data       []float32 // len(Data) == Rows*Cols
}

// NewMatrix32 returns a zeroed rows×cols matrix, its data from MakeFloat32.
func NewMatrix32(rows, cols int) *Matrix32 {
	if rows < 0 || cols < 0 {
		panic("linalg: internal: negative dimension")
	}
	return &Matrix32{Rows: rows, Cols: cols, Data: MakeFloat32(rows * cols)}
}

// Row returns row i, aliasing the matrix data.
func (m *Matrix32) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// Slice returns rows [i, j) as a Matrix32 aliasing m's data.
func (m *Matrix32) Slice(i, j int) *Matrix32 {
	return &Matrix32{Rows: j - i, Cols: m.Cols, Data: m.Data[i*m.Cols : j*m.Cols]}
}

// Check returns an error wrapping ErrEmpty if m has no rows or columns,
// ErrShape if len(Data) != Rows*Cols, and ErrNonFinite if any entry is NaN,
// ±Inf or larger than MaxAbs in magnitude.
func (m *Matrix32) Check() error {
	if m == nil || m.Rows <= 0 || m.Cols <= 0 {
		return fmt.Errorf("linalg: matrix with no rows or columns: %w", ErrEmpty)
	}
	if len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("linalg: %d×%d matrix with %d values: %w", m.Rows, m.Cols, len(m.Data), ErrShape)
	}
	if i := firstBadParallel(m.Data); i >= 0 {
		return fmt.Errorf("linalg: entry (%d, %d) = %v: %w", i/m.Cols, i%m.Cols, m.Data[i], ErrNonFinite)
	}
	return nil
}

// checkChunk is the number of entries per task of firstBadParallel: 1 MiB of
// float32s, large enough that a task costs far more than handing it out.
const checkChunk = 1 << 18

// firstBadParallel is firstBad32 on up to GOMAXPROCS goroutines for long
// slices: the slice is cut into chunks of checkChunk entries, and the first
// bad entry of the lowest failing chunk is the answer, whatever the
// scheduling.
func firstBadParallel(v []float32) int {
	tasks := (len(v) + checkChunk - 1) / checkChunk
	if tasks <= 1 {
		return firstBad32(v)
	}
	first := make([]int, tasks)
	parallelFor(tasks, runtime.GOMAXPROCS(0), func(t int) {
		lo := t * checkChunk
		if i := firstBad32(v[lo:min(len(v), lo+checkChunk)]); i >= 0 {
			first[t] = lo + i
		} else {
			first[t] = -1
		}
	})
	for _, i := range first {
		if i >= 0 {
			return i
		}
	}
	return -1
}

// maxAbsBits32 is the bit pattern of the largest float32 not above MaxAbs.
// For a float32 v, |v| > MaxAbs or v is NaN or ±Inf exactly when the bits of
// |v| (sign cleared) exceed it: IEEE 754 orders non-negative floats as their
// bit patterns, and Inf and NaN come after every finite value.
const maxAbsBits32 = 0x7149f2c9

// firstBad32 returns the index of the first entry of v that is NaN, ±Inf or
// larger than MaxAbs in magnitude, or −1 if there is none. It compares bit
// patterns eight entries at a time (see maxAbsBits32) and looks at single
// entries only in a group that holds a bad one.
func firstBad32(v []float32) int {
	const abs = 0x7fffffff
	i := 0
	for ; i+8 <= len(v); i += 8 {
		b := v[i : i+8 : i+8]
		m := max(math.Float32bits(b[0])&abs, math.Float32bits(b[1])&abs,
			math.Float32bits(b[2])&abs, math.Float32bits(b[3])&abs,
			math.Float32bits(b[4])&abs, math.Float32bits(b[5])&abs,
			math.Float32bits(b[6])&abs, math.Float32bits(b[7])&abs)
		if m > maxAbsBits32 {
			break
		}
	}
	for ; i < len(v); i++ {
		if math.Float32bits(v[i])&abs > maxAbsBits32 {
			return i
		}
	}
	return -1
}
