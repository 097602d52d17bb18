/* gemm.h — the row-major matrix products of the GPU backend as column-major BLAS calls.
 * Implements: three builders that turn a row-major product into the arguments of one
 *   cublasGemmEx call (operand order, transposes, m/n/k, leading dimensions), the GQA column
 *   offsets of a head inside a packed QKV row, the BLAS rules a call must satisfy, and a CPU
 *   emulation of the column-major call in double, so that stack.cu, attn.cu and
 *   calibrate_gpu.cu take their arguments from code that tests/test_exec_gemm.c checks
 *   against plain row-major loops on a machine without a device.
 * Does not: call cuBLAS (exec/gemm.cuh does) or know element types (pointers are void *).
 * The one identity everything rests on: a row-major [r, c] matrix with leading dimension ld
 *   (elements from one row to the next) is the column-major [c, r] matrix with the same ld,
 *   so row-major C = A B is column-major C^T = B^T A^T: the operands swap places.
 * Source: cuBLAS documentation, cublasGemmEx (column-major; lda >= k when op(A) = A^T, else
 *   lda >= m; ldb >= n when op(B) = B^T, else ldb >= k; ldc >= m). Header-only (static inline),
 *   as params.h, for C and CUDA alike. */
#ifndef OS_EXEC_GEMM_H
#define OS_EXEC_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* C (m x n, column-major) = alpha op(A) op(B) + beta C, op(X) = X^T when tX. */
typedef struct {
    int ta, tb;
    int m, n, k;
    const void *A, *B; /* borrowed; element types are the caller's */
    void *C;
    int lda, ldb, ldc;
} ExecGemm;

/* Row-major C[M,N] (ldc) = A[M,K] (lda) B[N,K]^T (ldb): y = x W^T, S = Q K^T, dP = dO V^T. */
static inline ExecGemm exec_gemm_abt(void *C, int ldc, const void *A, int lda, const void *B, int ldb, int M, int N,
                                     int K) {
    ExecGemm g = {1, 0, N, M, K, B, A, C, ldb, lda, ldc};
    return g;
}
/* Row-major C[M,N] (ldc) = A[M,K] (lda) B[K,N] (ldb): dx = dy W, O = P V, dQ = dS K. */
static inline ExecGemm exec_gemm_ab(void *C, int ldc, const void *A, int lda, const void *B, int ldb, int M, int N,
                                    int K) {
    ExecGemm g = {0, 0, N, M, K, B, A, C, ldb, lda, ldc};
    return g;
}
/* Row-major C[M,N] (ldc) = A[K,M]^T (lda) B[K,N] (ldb): dW = dy^T x, dV = P^T dO, dK = dS^T Q. */
static inline ExecGemm exec_gemm_atb(void *C, int ldc, const void *A, int lda, const void *B, int ldb, int M, int N,
                                     int K) {
    ExecGemm g = {0, 1, N, M, K, B, A, C, ldb, lda, ldc};
    return g;
}

/* The linear layers (params.h: W is [out, in] row-major, y = x W^T), T rows. */
static inline ExecGemm exec_gemm_linear_fwd(void *y, const void *x, const void *W, int T, int in, int out) {
    return exec_gemm_abt(y, out, x, in, W, in, T, out, in); /* y[T,out] = x[T,in] W[out,in]^T */
}
static inline ExecGemm exec_gemm_linear_dx(void *dx, const void *dy, const void *W, int T, int in, int out) {
    return exec_gemm_ab(dx, in, dy, out, W, in, T, in, out); /* dx[T,in] = dy[T,out] W[out,in] */
}
static inline ExecGemm exec_gemm_linear_dw(void *dW, const void *dy, const void *x, int T, int in, int out) {
    return exec_gemm_atb(dW, in, dy, out, x, in, out, in, T); /* dW[out,in] = dy[T,out]^T x[T,in] */
}

/* GQA: head h of nh reads KV group h / (nh / nkv). Columns (elements) of a packed QKV row
 * [(nh + 2 nkv) hd]: Q heads, then K groups, then V groups. */
static inline void exec_attn_head_cols(size_t *qo, size_t *ko, size_t *vo, int nh, int nkv, int hd, int head) {
    int grp = nh / nkv;
    *qo = (size_t)head * hd;
    *ko = (size_t)(nh + head / grp) * hd;
    *vo = (size_t)(nh + nkv + head / grp) * hd;
}

/* 1 when the call satisfies cuBLAS's argument rules (positive sizes, leading dimensions). */
static inline int exec_gemm_valid(const ExecGemm *g) {
    int ra = g->ta ? g->k : g->m, rb = g->tb ? g->n : g->k;
    return g->m > 0 && g->n > 0 && g->k > 0 && g->lda >= (ra > 1 ? ra : 1) && g->ldb >= (rb > 1 ? rb : 1) &&
           g->ldc >= (g->m > 1 ? g->m : 1);
}

/* CPU emulation of the column-major call on double arrays (A, B, C point at doubles). */
static inline void exec_gemm_cpu(const ExecGemm *g, double alpha, double beta) {
    const double *A = (const double *)g->A, *B = (const double *)g->B;
    double *C = (double *)g->C;
    for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->m; i++) {
            double s = 0;
            for (int l = 0; l < g->k; l++) {
                double a = g->ta ? A[(size_t)l + (size_t)i * g->lda] : A[(size_t)i + (size_t)l * g->lda];
                double b = g->tb ? B[(size_t)j + (size_t)l * g->ldb] : B[(size_t)l + (size_t)j * g->ldb];
                s += a * b;
            }
            double *c = &C[(size_t)i + (size_t)j * g->ldc];
            *c = alpha * s + (beta != 0 ? beta * *c : 0); /* beta = 0: C is not read (BLAS) */
        }
}

#endif
