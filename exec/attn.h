/* attn.h — the attention ops of the GPU backend, per sequence (never over a packed buffer:
 * cost is sum len^2, DESIGN.md §2), as cuBLAS GEMMs around exec/kernels/softmax.cu.
 * Implements: forward of one sequence, all heads, GQA (head h reads KV group h / (nh/nkv)),
 *   optional causal mask; score scratch of n x n per head (fp32 scores + bf16 probabilities).
 *   Backward of one sequence: recomputes S and P per head (nothing n x n is kept between
 *   forward and backward: the memory budget.h counts), then dV = P^T dO, dP = dO V^T,
 *   dS = softmax backward, dQ = dS K, dK = dS^T Q; GQA heads of one group accumulate into
 *   the group's dK, dV (beta = 1, so dqkv must be zeroed by the caller).
 * Does not: skip masked blocks: the full square is executed, so executed FLOPs = 4 n^2 hd nh
 *   per forward and 8 n^2 hd nh (+ the recomputed 4 n^2 hd nh) per backward. One GEMM pair
 *   per head per sequence: launch-bound for short sequences. This is the slow, obvious twin
 *   of the fused kernels (exec/flash.cuh), which the executor runs by default; the self-test
 *   exec_st_flash_twin compares the two, and ORCHSIM_ATTN=cublas runs this path instead.
 * Only for the .cu files of exec/ (CUDA types). */
#ifndef OS_EXEC_ATTN_H
#define OS_EXEC_ATTN_H

#include <cublas_v2.h>

#include "exec/kernels/common.cuh"

/* att: [n, nh hd] row-major; qkv: [n, (nh + 2 nkv) hd] row-major (Q heads, K groups, V
 * groups); S: [n n] fp32 scratch; P: [n n] bf16 scratch; all device pointers. */
OsStatus exec_attn_forward(bf16 *att, const bf16 *qkv, int n, int nh, int nkv, int hd,
                           int causal, float *S, bf16 *P, cublasHandle_t h, cudaStream_t s);
/* dqkv [n, (nh + 2 nkv) hd] += the gradient from datt [n, nh hd]; scratch S, dP fp32 [n n],
 * P, dS bf16 [n n]. */
OsStatus exec_attn_backward(bf16 *dqkv, const bf16 *datt, const bf16 *qkv, int n, int nh, int nkv,
                            int hd, int causal, float *S, bf16 *P, float *dP, bf16 *dS,
                            cublasHandle_t h, cudaStream_t s);

#endif
