package linalg

// Tile and block sizes of the Gram kernel. A row block of gramKC rows of X is
// converted to float64 and packed into panels of gramP = 12 columns, each
// zero-padded and stored row by row (k-major), so the kernel streams it
// contiguously. A register tile of XᵀX is gramMR = 4 rows (four consecutive
// columns of one panel, broadcast) by gramNR = 12 columns (a whole panel,
// three AVX2 vectors): 12 accumulators, 7 loads per 12 fused multiply-adds.
// Only tiles that meet the upper triangle are computed.
//
// One panel of a block (256·12·8 = 24 KiB) fits in a 32 KiB L1 data cache; a
// work unit of gramMT×gramNT tiles (96×96 entries of XᵀX) reads 8 panels for
// its rows (192 KiB, kept in a 512 KiB L2) while its 8 column panels stream
// past them.
const (
	gramP  = 12  // columns of X per packed panel
	gramMR = 4   // rows of XᵀX per register tile
	gramNR = 12  // columns of XᵀX per register tile
	gramKC = 256 // rows of X per block: the partition that fixes summation order
	gramMT = 24  // register tiles per work unit, down (96 rows of XᵀX)
	gramNT = 8   // register tiles per work unit, across (96 columns)
)

// gramKernelGo computes one 4×12 tile of a block's contribution to XᵀX:
//
//	for i < 4, j < 12: s = 0; for r < k: s += a[12r+i]·b[12r+j]; c[i*ldc+j] += s
//
// a and b hold k rows of 12 float32 values converted to float64 (a at an
// offset of 0, 4 or 8 into its panel). The product of two float32 values is
// exact in float64 (24+24 significant bits ≤ 53, and no overflow or
// underflow), so s += a·b rounds exactly once whether or not the
// multiply-add is fused: this function, the assembly kernel and any compiler
// give the same bits.
func gramKernelGo(k int, a, b, c []float64, ldc int) {
	// It is the GEMM tile kernel with A read from the same kind of panel as B:
	// consecutive rows of the tile are adjacent (stride 1), steps are a panel
	// row apart (gramP), in the same order of operations.
	gemmKernelGo(k, a[:gramP*(k-1)+gramMR], 1, gramP, b, c, ldc)
}

// The Gram tile is the GEMM tile: gramKernelGo relies on it. (Each index is
// a compile-time constant that must be 0.)
var (
	_ = [1]struct{}{}[gramMR-gemmMR]
	_ = [1]struct{}{}[gramNR-gemmNR]
	_ = [1]struct{}{}[gramP-gemmNR]
)
