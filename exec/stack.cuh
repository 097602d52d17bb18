/* stack.cuh — one transformer stack on the GPU, forward and backward over T rows cut into
 * sequences (attention per sequence): the fast twin of ref.c's stack_fwd / stack_bwd, same
 * weight layout (params.h), same math (pre-norm RMSNorm, GQA attention, SwiGLU or GELU MLP,
 * residuals, final RMSNorm).
 * Implements: the activation block of a stack (what the backward needs, bf16, plus fp32 rstd)
 *   and its size; forward; backward accumulating fp32 weight gradients (cuBLAS bf16 GEMMs
 *   with CUBLAS_COMPUTE_32F; weight-gradient GEMMs write fp32 with beta = 1).
 * Attention per layer: the fused variable-length kernels (exec/flash.cuh, one launch for every
 *   sequence; log-sum-exp kept in the activations) when the block says so (a->fused), else
 *   the per-sequence cuBLAS twin (attn.h, n x n scratch, probabilities recomputed).
 * Block sizes and offsets: exec/memplan.h (the same numbers validate's estimate uses).
 * Does not: embed, project or apply the LM head (mllm.cu), or keep n x n attention
 *   probabilities.
 * Only for the .cu files of exec/. Shapes: T rows, H hidden, F ffn; row-major. */
#ifndef OS_EXEC_STACK_CUH
#define OS_EXEC_STACK_CUH

#include <cublas_v2.h>

#include "exec/kernels/common.cuh"
#include "exec/params.h"

extern "C" {
#include "exec/flash.h"
#include "exec/memplan.h"
}

typedef struct {
    int T, fused;
    bf16 *x;          /* [(layers + 1), T, H]: x[0] is the input (the caller writes it) */
    bf16 *n1, *qkv, *att, *xm, *n2, *u, *h; /* per layer: [T,H] [T,qkv] [T,nh hd] [T,H] [T,H] [T,up] [T,F] */
    float *r1, *r2;   /* [layers, T] */
    bf16 *out;        /* [T, H] after the final norm */
    float *rf;        /* [T] */
    float *lse;       /* fused: [layers, nh, T] */
} StackActs;

/* Backward and attention scratch, shared by every stack run on one stream (sized for the
 * largest T and the longest sequence: exec_stack_scratch_bytes). */
typedef struct {
    bf16 *dx, *dxm, *dn, *dh, *du, *datt, *dqkv;
    float *S, *dP;  /* cuBLAS twin: [n n] */
    bf16 *P, *dS;   /* [n n] */
    float *dq, *dvec;         /* fused: [T, nh hd], [nh, T] */
    ExecFlashTile *tiles;     /* fused: device, forward list then backward list, max_tiles each */
    uint64_t max_tiles;
    ExecFlashTile *host_tiles;/* [2 max_tiles] host buffer (borrowed from the executor) */
} StackScratch;

/* Carve an activation block laid out as lay (exec_acts_layout; 256-byte aligned base). */
void exec_stack_acts_carve(StackActs *a, const ExecActsLayout *lay, int T, int fused, void *base);
/* Carve the scratch laid out as lay (exec_scratch_layout); host_tiles: >= 2 lay->max_tiles. */
void exec_stack_scratch_carve(StackScratch *s, const ExecScratchLayout *lay, void *base, ExecFlashTile *host_tiles);

/* Forward over a->T rows (input in a->x[0]); len[nseq]: host, rows per sequence. */
OsStatus exec_stack_forward(StackActs *a, const bf16 *W, const ExecStackLayout *L, const uint64_t *len,
                            int nseq, StackScratch *sc, cublasHandle_t h, cudaStream_t s);
/* Backward from dout [T, H] (gradient of a->out): dW (fp32, same layout as W) accumulates;
 * the input gradient is left in sc->dx [T, H]. */
OsStatus exec_stack_backward(float *dW, const bf16 *W, const ExecStackLayout *L, const StackActs *a,
                             const bf16 *dout, const uint64_t *len, int nseq, StackScratch *sc,
                             cublasHandle_t h, cudaStream_t s);

/* Row-major GEMM helpers (also used by mllm.cu for the projector and the LM head).
 * y[T, out] = x[T, in] W[out, in]^T + beta y (y bf16 or fp32 per ytype). */
OsStatus exec_mm_forward(void *y, cudaDataType ytype, const bf16 *x, const bf16 *W, int T, int in, int out,
                         float beta, cublasHandle_t h);
/* dx[T, in] = dy[T, out] W[out, in] + beta dx. */
OsStatus exec_mm_backward_x(bf16 *dx, const bf16 *dy, const bf16 *W, int T, int in, int out, float beta,
                            cublasHandle_t h);
/* dW[out, in] += dy^T x (fp32). */
OsStatus exec_mm_backward_w(float *dW, const bf16 *dy, const bf16 *x, int T, int in, int out, cublasHandle_t h);

#endif
