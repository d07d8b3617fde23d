package linalg

// Tile and block sizes of the Gram kernel. A row block of gramKC rows of X is
// converted to float64 and packed twice: into gramMR-wide panels (the rows of
// a tile of XᵀX) and gramNR-wide panels (its columns), each panel zero-padded
// and stored k-major, so the kernel streams both contiguously. Only tiles that
// meet the upper triangle are computed.
//
// On a CPU with 32 KiB of L1 data cache per core (Zen 3, Skylake) one A panel
// (256·6·8 = 12 KiB) and one B panel (256·8·8 = 16 KiB) fit in L1 together; a
// work unit of gramMC×gramNC output entries touches 16 A panels (192 KiB),
// which stay in a 512 KiB L2 while 12 B panels stream past them.
const (
	gramMR = 6   // rows of XᵀX per register tile
	gramNR = 8   // columns of XᵀX per register tile (two AVX2 float64 vectors)
	gramKC = 256 // rows of X per block: the partition that fixes summation order
	gramMT = 16  // register tiles per work unit, down (gramMC = 96 rows of XᵀX)
	gramNT = 12  // register tiles per work unit, across (gramNC = 96 columns)
)

// gramKernelGo computes one 6×8 tile of a block's contribution to XᵀX:
//
//	for i < 6, j < 8: s = 0; for r < k: s += a[6r+i]·b[8r+j]; c[i*ldc+j] += s
//
// a holds k rows of 6 values, b k rows of 8 values, both float32 values
// converted to float64. The product of two float32 values is exact in
// float64 (24+24 significant bits ≤ 53, and no overflow or underflow), so
// s += a·b rounds exactly once whether or not the multiply-add is fused: this
// function, the assembly kernel and any compiler give the same bits.
func gramKernelGo(k int, a, b, c []float64, ldc int) {
	a = a[:6*k]
	b = b[:8*k]
	_ = c[5*ldc+7]
	for i := 0; i < gramMR; i += 2 {
		for j := 0; j < gramNR; j += 4 {
			var s00, s01, s02, s03, s10, s11, s12, s13 float64
			for r := range k {
				a0, a1 := a[6*r+i], a[6*r+i+1]
				br := b[8*r+j : 8*r+j+4 : 8*r+j+4]
				s00 += a0 * br[0]
				s01 += a0 * br[1]
				s02 += a0 * br[2]
				s03 += a0 * br[3]
				s10 += a1 * br[0]
				s11 += a1 * br[1]
				s12 += a1 * br[2]
				s13 += a1 * br[3]
			}
			c0 := c[i*ldc+j : i*ldc+j+4 : i*ldc+j+4]
			c0[0] += s00
			c0[1] += s01
			c0[2] += s02
			c0[3] += s03
			c1 := c[(i+1)*ldc+j : (i+1)*ldc+j+4 : (i+1)*ldc+j+4]
			c1[0] += s10
			c1[1] += s11
			c1[2] += s12
			c1[3] += s13
		}
	}
}
