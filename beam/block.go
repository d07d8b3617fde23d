package dpbeam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
)

// DefaultBlockRows is the number of rows per Block the sources make by
// default: the block size the core solvers accumulate statistics with.
const DefaultBlockRows = 8192

// A Block is a run of consecutive rows of one input file, the unit of work
// and of reproducibility: the statistics and gradients of the pipelines are
// exact sums over blocks of per-block values the core library computes (see
// the package documentation, Reproducibility).
type Block struct {
	// Key names the block for diagnostics, "file#index".
	Key string
	// X holds the rows, float32, one per row.
	X *linalg.Matrix32
	// Labels holds the class of each row, or nil for unlabelled data.
	Labels []int
}

// encodeBlock is the Beam coder of Block: key, shape, features (IEEE 754 bits),
// labels (−1 count for none).
func encodeBlock(b Block) ([]byte, error) {
	if b.X == nil {
		return nil, errors.New("dpbeam: block without rows")
	}
	out := make([]byte, 0, 32+len(b.Key)+4*len(b.X.Data)+8*len(b.Labels))
	out = binary.AppendUvarint(out, uint64(len(b.Key)))
	out = append(out, b.Key...)
	out = binary.AppendUvarint(out, uint64(b.X.Rows))
	out = binary.AppendUvarint(out, uint64(b.X.Cols))
	for _, v := range b.X.Data {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	if b.Labels == nil {
		return binary.AppendVarint(out, -1), nil
	}
	out = binary.AppendVarint(out, int64(len(b.Labels)))
	for _, l := range b.Labels {
		out = binary.AppendVarint(out, int64(l))
	}
	return out, nil
}

func decodeBlock(p []byte) (Block, error) {
	bad := fmt.Errorf("dpbeam: corrupt block encoding")
	uv := func() uint64 {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			p = nil
			return 0
		}
		p = p[n:]
		return v
	}
	kl := uv()
	if kl > uint64(len(p)) {
		return Block{}, bad
	}
	key := string(p[:kl])
	p = p[kl:]
	rows, cols := uv(), uv()
	if p == nil || cols == 0 || rows > uint64(len(p))/4/cols {
		return Block{}, bad
	}
	x := linalg.NewMatrix32(int(rows), int(cols))
	for i := range x.Data {
		x.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	p = p[4*len(x.Data):]
	nl, n := binary.Varint(p)
	if n <= 0 {
		return Block{}, bad
	}
	p = p[n:]
	b := Block{Key: key, X: x}
	if nl >= 0 {
		if nl != int64(rows) {
			return Block{}, bad
		}
		b.Labels = make([]int, nl)
		for i := range b.Labels {
			v, n := binary.Varint(p)
			if n <= 0 {
				return Block{}, bad
			}
			b.Labels[i], p = int(v), p[n:]
		}
	}
	if len(p) != 0 {
		return Block{}, bad
	}
	return b, nil
}

// ReadBlocks reads a feature stream into blocks of rows rows (the last one
// may be shorter), as the pipeline sources do for each file: the in-memory
// counterpart of ReadFiles, for reference results. key prefixes the blocks'
// keys. It does not close s.
func ReadBlocks(s features.Stream, key string, rows int) ([]Block, error) {
	var out []Block
	for {
		x, y, err := s.Next(rows)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Block{Key: fmt.Sprintf("%s#%d", key, len(out)), X: x, Labels: y})
	}
}
