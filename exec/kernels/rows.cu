/* rows.cu — row movement inside a rank: the segment copies that pack projector outputs into
 * an all-to-all send buffer and reassemble each example's LLM sequence (exec/plan.h ExecSeg
 * lists: n rows from row `from` of one buffer to row `to` of another), in either direction
 * (the backward routes gradients back along the same lists); the token-embedding lookup and
 * its backward (fp32 scatter-add: a token id may repeat inside a batch).
 * One block per segment (grid-stride over its n x C values), so a list of thousands of
 * items is one launch, not thousands. */
#include <stdlib.h>
#include <string.h>

#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_rows(double *worst);

// CPU reference ------------------------------------------------------------------------------

static void rows_copy_cpu(float *dst, const float *src, const uint64_t *seg, int nseg, int C, int reverse) {
    for (int k = 0; k < nseg; k++) {
        uint64_t from = seg[3 * k], to = seg[3 * k + 1], n = seg[3 * k + 2];
        uint64_t si = reverse ? to : from, di = reverse ? from : to;
        memcpy(dst + di * C, src + si * C, n * C * sizeof(float));
    }
}

// kernels ------------------------------------------------------------------------------------

__global__ void rows_copy_kernel(bf16 *dst, const bf16 *src, const uint64_t *seg, int C, int reverse) {
    uint64_t from = seg[3 * blockIdx.x], to = seg[3 * blockIdx.x + 1], n = seg[3 * blockIdx.x + 2];
    uint64_t si = reverse ? to : from, di = reverse ? from : to;
    size_t total = (size_t)n * C;
    for (size_t i = threadIdx.x; i < total; i += blockDim.x) dst[di * C + i] = src[si * C + i];
}

__global__ void embed_forward_kernel(bf16 *out, const bf16 *emb, const int *tok, int C) {
    int t = blockIdx.x;
    const bf16 *row = emb + (size_t)tok[t] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[(size_t)t * C + c] = row[c];
}

__global__ void embed_backward_kernel(float *demb, const bf16 *dout, const int *tok, int C) {
    int t = blockIdx.x;
    float *row = demb + (size_t)tok[t] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(&row[c], __bfloat162float(dout[(size_t)t * C + c]));
}

// launchers ----------------------------------------------------------------------------------

/* seg: device [nseg * 3] (from, to, n); reverse: copy src rows `to` into dst rows `from`. */
OsStatus k_rows_copy(bf16 *dst, const bf16 *src, const uint64_t *seg, int nseg, int C, int reverse,
                     cudaStream_t s) {
    OsStatus st = OS_OK;
    if (nseg > 0) rows_copy_kernel<<<nseg, 256, 0, s>>>(dst, src, seg, C, reverse);
    LAUNCH_CHECK();
fail:
    return st;
}
/* out[T, C] = emb[tok[t], :] */
OsStatus k_embed_forward(bf16 *out, const bf16 *emb, const int *tok, int T, int C, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (T > 0) embed_forward_kernel<<<T, 256, 0, s>>>(out, emb, tok, C);
    LAUNCH_CHECK();
fail:
    return st;
}
/* demb[tok[t], :] += dout[t, :] (fp32, atomics) */
OsStatus k_embed_backward(float *demb, const bf16 *dout, const int *tok, int T, int C, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (T > 0) embed_backward_kernel<<<T, 256, 0, s>>>(demb, dout, tok, C);
    LAUNCH_CHECK();
fail:
    return st;
}

// self-test ----------------------------------------------------------------------------------

extern "C" OsStatus exec_st_rows(double *worst) {
    OsStatus st = OS_OK;
    const int C = 37, R = 64, T = 29, V = 11;
    /* segments inside R rows, disjoint destinations; the last is empty */
    const uint64_t seg[] = {0, 10, 5, 7, 0, 3, 20, 40, 12, 50, 3, 2, 60, 60, 0};
    const int nseg = 5;
    float *hs = NULL, *got = NULL;
    double *ref = NULL;
    float *rc = NULL;
    int *htok = NULL, *dtok = NULL;
    bf16 *hb = NULL, *dsrc = NULL, *ddst = NULL;
    float *dembg = NULL;
    uint64_t *dseg = NULL;
    double w = 0;
    size_t N = (size_t)R * C;
    *worst = INFINITY;
    hs = (float *)malloc(N * 4), got = (float *)malloc(N * 4), ref = (double *)malloc(N * 8);
    rc = (float *)calloc(N, 4), hb = (bf16 *)malloc(N * 2), htok = (int *)malloc(T * sizeof(int));
    ALLOC_CHECK(hs && got && ref && rc && hb && htok);
    for (size_t i = 0; i < N; i++) hb[i] = __float2bfloat16(exec_test_value(21, i)), hs[i] = __bfloat162float(hb[i]);
    CUDA_CHECK(cudaMalloc(&dsrc, N * 2));
    CUDA_CHECK(cudaMalloc(&ddst, N * 2));
    CUDA_CHECK(cudaMalloc(&dseg, sizeof seg));
    CUDA_CHECK(cudaMalloc(&dtok, T * sizeof(int)));
    CUDA_CHECK(cudaMalloc(&dembg, (size_t)V * C * 4));
    CUDA_CHECK(cudaMemcpy(dsrc, hb, N * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dseg, seg, sizeof seg, cudaMemcpyHostToDevice));
    for (int reverse = 0; reverse < 2; reverse++) {
        CUDA_CHECK(cudaMemset(ddst, 0, N * 2));
        memset(rc, 0, N * 4);
        OS_CHECK(k_rows_copy(ddst, dsrc, dseg, nseg, C, reverse, 0));
        rows_copy_cpu(rc, hs, seg, nseg, C, reverse);
        CUDA_CHECK(cudaMemcpy(hb, ddst, N * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < N; i++) got[i] = __bfloat162float(hb[i]), ref[i] = rc[i];
        w = fmax(w, exec_worst(got, ref, N, 0, 1e-12)); /* copies are exact */
    }
    /* embedding: the first V rows of src as the table, repeated ids */
    for (int t = 0; t < T; t++) htok[t] = (t * 5) % V;
    CUDA_CHECK(cudaMemcpy(dtok, htok, T * sizeof(int), cudaMemcpyHostToDevice));
    OS_CHECK(k_embed_forward(ddst, dsrc, dtok, T, C, 0));
    CUDA_CHECK(cudaMemcpy(hb, ddst, (size_t)T * C * 2, cudaMemcpyDeviceToHost));
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) got[t * C + c] = __bfloat162float(hb[t * C + c]), ref[t * C + c] = hs[htok[t] * C + c];
    w = fmax(w, exec_worst(got, ref, (size_t)T * C, 0, 1e-12));
    /* backward with dout = src rows 0..T-1 */
    CUDA_CHECK(cudaMemset(dembg, 0, (size_t)V * C * 4));
    OS_CHECK(k_embed_backward(dembg, dsrc, dtok, T, C, 0));
    CUDA_CHECK(cudaMemcpy(got, dembg, (size_t)V * C * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < (size_t)V * C; i++) ref[i] = 0;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) ref[htok[t] * C + c] += hs[t * C + c];
    w = fmax(w, exec_worst(got, ref, (size_t)V * C, 1e-6, 1e-6)); /* fp32 sums, any order */
    CUDA_CHECK(cudaDeviceSynchronize());
    *worst = w;
fail:
    cudaFree(dsrc), cudaFree(ddst), cudaFree(dseg), cudaFree(dtok), cudaFree(dembg);
    free(hs), free(got), free(ref), free(rc), free(hb), free(htok);
    return st;
}
