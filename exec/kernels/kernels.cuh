/* kernels.cuh — launchers of the exec/kernels files, for the other .cu files of exec/. Device
 * pointers; every launcher checks its launch and returns a status. Shapes in comments:
 * T rows (tokens), C columns, V vocabulary, n sequence length. */
#ifndef OS_EXEC_KERNELS_CUH
#define OS_EXEC_KERNELS_CUH

#include "exec/kernels/common.cuh"
#include "exec/params.h"

/* rmsnorm.cu: out[T,C] = x / rms(x) * g, rstd[T]; backward: dx[T,C] = (dres ? dres : 0) +
 * d/dx (dres may alias dx), dg[C] += (fp32). */
OsStatus k_rmsnorm_forward(bf16 *out, float *rstd, const bf16 *x, const bf16 *g, int T, int C,
                           cudaStream_t s);
OsStatus k_rmsnorm_backward(bf16 *dx, float *dg, const bf16 *dres, const bf16 *dout,
                            const bf16 *x, const bf16 *g, const float *rstd, int T, int C,
                            cudaStream_t s);
/* softmax.cu: attention probabilities of `rows` rows of n scores (fp32, row-major, rows of
 * consecutive heads' n x n matrices), scale, causal mask j > i; backward dS = P (dP - <P,dP>)
 * scale. */
OsStatus k_attn_softmax_forward(bf16 *P, const float *S, int n, int rows, float scale,
                                int causal, cudaStream_t s);
OsStatus k_attn_softmax_backward(bf16 *dS, const bf16 *P, const float *dP, int n, int rows,
                                 float scale, cudaStream_t s);
/* act.cu: GELU (tanh) on [N]; SwiGLU h[T,F] = silu(u[:, :F]) * u[:, F:], u[T, 2F]. */
OsStatus k_gelu_forward(bf16 *out, const bf16 *x, size_t N, cudaStream_t s);
OsStatus k_gelu_backward(bf16 *dx, const bf16 *x, const bf16 *dout, size_t N, cudaStream_t s);
OsStatus k_swiglu_forward(bf16 *h, const bf16 *u, int T, int F, cudaStream_t s);
OsStatus k_swiglu_backward(bf16 *du, const bf16 *u, const bf16 *dh, int T, int F, cudaStream_t s);
OsStatus k_add(bf16 *y, const bf16 *a, const bf16 *b, size_t N, cudaStream_t s); /* y = a + b */
/* xent.cu: per-row loss[T] and dlogits[T,V] = (softmax - onehot) / label_norm from fp32
 * logits[T,V]; label[t] < 0: no label (loss 0, gradient 0). label_norm: the GLOBAL count. */
OsStatus k_xent(float *loss, bf16 *dlogits, const float *logits, const int *label, int T, int V,
                double label_norm, cudaStream_t s);
/* rows.cu: seg device [nseg*3] (from, to, n) rows of C values; reverse copies to -> from.
 * Embedding out[T,C] = emb[tok[t]]; backward demb[tok[t]] += dout[t] (fp32 atomics). */
OsStatus k_rows_copy(bf16 *dst, const bf16 *src, const uint64_t *seg, int nseg, int C, int reverse,
                     cudaStream_t s);
OsStatus k_embed_forward(bf16 *out, const bf16 *emb, const int *tok, int T, int C, cudaStream_t s);
OsStatus k_embed_backward(float *demb, const bf16 *dout, const int *tok, int T, int C, cudaStream_t s);
/* step.cu: what a home rank holds and how the LLM rows get their text (params.h values).
 * item seg [nseg*4] (row, positions, example id, item k of the example) -> buf[row.., He];
 * text seg [nseg*3] (row, text tokens, example id) -> int ids; scatter seg (from, to, n) of
 * ids; label[r] = next_same[r] && ids[r+1] >= 0 ? ids[r+1] : -1; embedding over rows whose
 * id >= 0 (others untouched), backward demb[id] += dout (fp32 atomics). */
OsStatus k_item_inputs(bf16 *buf, const uint64_t *seg, int nseg, int He, uint64_t seed, cudaStream_t s);
OsStatus k_text_ids(int *buf, const uint64_t *seg, int nseg, int V, uint64_t seed, cudaStream_t s);
OsStatus k_ids_scatter(int *ids, const int *src, const uint64_t *seg, int nseg, cudaStream_t s);
OsStatus k_labels(int *label, const int *ids, const int *next_same, int T, cudaStream_t s);
OsStatus k_embed_rows_forward(bf16 *out, const bf16 *emb, const int *ids, int T, int C, cudaStream_t s);
OsStatus k_embed_rows_backward(float *demb, const bf16 *dout, const int *ids, int T, int C, cudaStream_t s);

#endif
