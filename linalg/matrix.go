package linalg

import (
	"fmt"
	"math"
)

// Matrix32 is a dense, row-major float32 matrix: the layout of feature files
// (one example per row). Row i is Data[i*Cols : (i+1)*Cols].
type Matrix32 struct {
	Rows, Cols int
	Data       []float32 // len(Data) == Rows*Cols
}

// NewMatrix32 returns a zeroed rows×cols matrix.
func NewMatrix32(rows, cols int) *Matrix32 {
	if rows < 0 || cols < 0 {
		panic("linalg: internal: negative dimension")
	}
	return &Matrix32{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
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
	for i, v := range m.Data {
		if f := float64(v); math.IsNaN(f) || math.Abs(f) > MaxAbs {
			return fmt.Errorf("linalg: entry (%d, %d) = %v: %w", i/m.Cols, i%m.Cols, v, ErrNonFinite)
		}
	}
	return nil
}
