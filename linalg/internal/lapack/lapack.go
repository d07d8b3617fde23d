//go:build openblas && cgo

// Package lapack calls three LAPACK routines of the OpenBLAS library through
// cgo: Dsyevd (symmetric eigendecomposition by divide and conquer), Dpotrf
// (Cholesky factorisation) and Dpocon (its condition number estimate). It
// exists for linalg, which has Go assembly and so may not use cgo itself,
// and is installed there by linalg.UseOpenBLAS.
//
// The routines are the Fortran ones (LP64: 32-bit integers), declared here
// rather than taken from a LAPACKE header, so only the OpenBLAS library is
// needed. Matrices are column-major as in Fortran; a caller with a row-major
// symmetric matrix stored in its upper triangle passes it as the lower
// triangle of the same array (uplo 'L'). The functions check their
// arguments and panic on a bad one, as linalg calls them only with
// arguments it has checked: a panic here is a bug in linalg.
package lapack

/*
#cgo LDFLAGS: -lopenblas
#include <stddef.h>

// Fortran LAPACK with gfortran's calling convention: every argument by
// reference, and the length of each character argument as a hidden size_t
// argument at the end.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
	double *w, double *work, const int *lwork, int *iwork, const int *liwork, int *info,
	size_t jobz_len, size_t uplo_len);
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info,
	size_t uplo_len);
void dpocon_(const char *uplo, const int *n, const double *a, const int *lda,
	const double *anorm, double *rcond, double *work, int *iwork, int *info,
	size_t uplo_len);
*/
import "C"

import (
	"fmt"
	"math"
)

// MaxDim is the largest n the functions accept: Dsyevd's workspace of
// 1 + 6n + 2n² elements must be counted by a 32-bit Fortran integer.
const MaxDim = 32766

// checkMatrix panics unless a holds an n×n column-major matrix with leading
// dimension lda.
func checkMatrix(routine string, n int, a []float64, lda int) {
	if n < 1 || n > MaxDim || lda < n || len(a) < (n-1)*lda+n {
		panic(fmt.Sprintf("lapack: internal: %s with n = %d, lda = %d, len(a) = %d", routine, n, lda, len(a)))
	}
}

// Dsyevd computes all eigenvalues and eigenvectors of the n×n symmetric
// matrix whose lower triangle a holds (column-major, leading dimension lda;
// the strict upper triangle is not read). On return w holds the eigenvalues
// in ascending order and column j of a (a[j*lda : j*lda+n]) the orthonormal
// eigenvector of w[j]. It returns LAPACK's info: 0 on success, i > 0 if the
// divide-and-conquer iteration failed to converge.
func Dsyevd(n int, a []float64, lda int, w []float64) int {
	checkMatrix("Dsyevd", n, a, lda)
	if len(w) < n {
		panic(fmt.Sprintf("lapack: internal: Dsyevd with n = %d and len(w) = %d", n, len(w)))
	}
	jobz, uplo := C.char('V'), C.char('L')
	cn, clda := C.int(n), C.int(lda)
	var info C.int
	// Workspace query: the optimal sizes come back in work[0] and iwork[0].
	var qwork C.double
	var qiwork C.int
	query := C.int(-1)
	C.dsyevd_(&jobz, &uplo, &cn, (*C.double)(&a[0]), &clda, (*C.double)(&w[0]),
		&qwork, &query, &qiwork, &query, &info, 1, 1)
	if info != 0 {
		panic(fmt.Sprintf("lapack: internal: Dsyevd workspace query: info = %d", info))
	}
	// The documented minima for jobz = 'V', in case the query returns less.
	lwork := max(int(math.Ceil(float64(qwork))), 1+6*n+2*n*n)
	liwork := max(int(qiwork), 3+5*n)
	work := make([]float64, lwork)
	iwork := make([]C.int, liwork)
	clwork, climork := C.int(lwork), C.int(liwork)
	C.dsyevd_(&jobz, &uplo, &cn, (*C.double)(&a[0]), &clda, (*C.double)(&w[0]),
		(*C.double)(&work[0]), &clwork, &iwork[0], &climork, &info, 1, 1)
	if info < 0 {
		panic(fmt.Sprintf("lapack: internal: Dsyevd argument %d invalid", -info))
	}
	return int(info)
}

// Dpotrf overwrites the lower triangle of the n×n symmetric positive
// definite matrix a (column-major, leading dimension lda) with its Cholesky
// factor L, a = L·Lᵀ; the strict upper triangle is not touched. It returns
// LAPACK's info: 0 on success, i > 0 if the leading minor of order i is not
// positive, so that a is not positive definite.
func Dpotrf(n int, a []float64, lda int) int {
	checkMatrix("Dpotrf", n, a, lda)
	uplo := C.char('L')
	cn, clda := C.int(n), C.int(lda)
	var info C.int
	C.dpotrf_(&uplo, &cn, (*C.double)(&a[0]), &clda, &info, 1)
	if info < 0 {
		panic(fmt.Sprintf("lapack: internal: Dpotrf argument %d invalid", -info))
	}
	return int(info)
}

// Dpocon returns an estimate of the reciprocal of the 1-norm condition
// number of a symmetric positive definite matrix from its Cholesky factor L
// as Dpotrf leaves it in a, and anorm, the 1-norm of the original matrix.
func Dpocon(n int, a []float64, lda int, anorm float64) float64 {
	checkMatrix("Dpocon", n, a, lda)
	uplo := C.char('L')
	cn, clda := C.int(n), C.int(lda)
	canorm := C.double(anorm)
	var rcond C.double
	var info C.int
	work := make([]float64, 3*n)
	iwork := make([]C.int, n)
	C.dpocon_(&uplo, &cn, (*C.double)(&a[0]), &clda, &canorm, &rcond,
		(*C.double)(&work[0]), &iwork[0], &info, 1)
	if info != 0 {
		panic(fmt.Sprintf("lapack: internal: Dpocon argument %d invalid", -info))
	}
	return float64(rcond)
}
