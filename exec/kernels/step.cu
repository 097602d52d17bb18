/* step.cu — the data kernels of one backend step: generate what a home rank holds (item
 * features and text token ids, params.h's pure functions of (seed, example id, index), so the
 * GPU's values equal ref.c's bit for bit), scatter the received token ids into the LLM rows,
 * derive next-token labels from them, and the token embedding over rows that hold text (item
 * rows carry id -1 and are left to the splice).
 * One block per segment for the generators (grid-stride over its rows x columns), one block
 * per row for the embedding. */
#include <stdlib.h>
#include <string.h>

#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_step(double *worst);

// CPU reference ------------------------------------------------------------------------------

static void item_inputs_cpu(float *buf, const uint64_t *seg, int nseg, int He, uint64_t seed) {
    for (int k = 0; k < nseg; k++) {
        const uint64_t *g = seg + 4 * (size_t)k;
        for (uint64_t p = 0; p < g[1]; p++)
            for (int c = 0; c < He; c++)
                buf[(g[0] + p) * He + c] = exec_item_input(seed, g[2], (uint32_t)g[3], p, (uint32_t)c, (uint32_t)He);
    }
}
static void text_ids_cpu(int *buf, const uint64_t *seg, int nseg, int V, uint64_t seed) {
    for (int k = 0; k < nseg; k++)
        for (uint64_t t = 0; t < seg[3 * k + 1]; t++)
            buf[seg[3 * k] + t] = (int)exec_token(seed, seg[3 * k + 2], (uint32_t)t, (uint32_t)V);
}
static void labels_cpu(int *label, const int *ids, const int *next_same, int T) {
    for (int r = 0; r < T; r++) label[r] = (next_same[r] && ids[r + 1] >= 0) ? ids[r + 1] : -1;
}

// kernels ------------------------------------------------------------------------------------

__global__ void item_inputs_kernel(bf16 *buf, const uint64_t *seg, int He, uint64_t seed) {
    const uint64_t *g = seg + 4 * (size_t)blockIdx.x;
    uint64_t row = g[0], n = g[1], id = g[2];
    uint32_t k = (uint32_t)g[3];
    size_t total = (size_t)n * He;
    for (size_t i = threadIdx.x; i < total; i += blockDim.x)
        buf[row * He + i] = __float2bfloat16(exec_item_input(seed, id, k, i / He, (uint32_t)(i % He), (uint32_t)He));
}
__global__ void text_ids_kernel(int *buf, const uint64_t *seg, int V, uint64_t seed) {
    const uint64_t *g = seg + 3 * (size_t)blockIdx.x;
    for (uint64_t t = threadIdx.x; t < g[1]; t += blockDim.x)
        buf[g[0] + t] = (int)exec_token(seed, g[2], (uint32_t)t, (uint32_t)V);
}
__global__ void ids_scatter_kernel(int *ids, const int *src, const uint64_t *seg) {
    const uint64_t *g = seg + 3 * (size_t)blockIdx.x;
    for (uint64_t t = threadIdx.x; t < g[2]; t += blockDim.x) ids[g[1] + t] = src[g[0] + t];
}
__global__ void labels_kernel(int *label, const int *ids, const int *next_same, int T) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < T; r += gridDim.x * blockDim.x)
        label[r] = (next_same[r] && ids[r + 1] >= 0) ? ids[r + 1] : -1;
}
__global__ void embed_rows_forward_kernel(bf16 *out, const bf16 *emb, const int *ids, int C) {
    int id = ids[blockIdx.x];
    if (id < 0) return;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        out[(size_t)blockIdx.x * C + c] = emb[(size_t)id * C + c];
}
__global__ void embed_rows_backward_kernel(float *demb, const bf16 *dout, const int *ids, int C) {
    int id = ids[blockIdx.x];
    if (id < 0) return;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        atomicAdd(&demb[(size_t)id * C + c], __bfloat162float(dout[(size_t)blockIdx.x * C + c]));
}

// launchers ----------------------------------------------------------------------------------

OsStatus k_item_inputs(bf16 *buf, const uint64_t *seg, int nseg, int He, uint64_t seed, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (nseg > 0) item_inputs_kernel<<<nseg, 256, 0, s>>>(buf, seg, He, seed);
    LAUNCH_CHECK();
fail:
    return st;
}
OsStatus k_text_ids(int *buf, const uint64_t *seg, int nseg, int V, uint64_t seed, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (nseg > 0) text_ids_kernel<<<nseg, 128, 0, s>>>(buf, seg, V, seed);
    LAUNCH_CHECK();
fail:
    return st;
}
OsStatus k_ids_scatter(int *ids, const int *src, const uint64_t *seg, int nseg, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (nseg > 0) ids_scatter_kernel<<<nseg, 128, 0, s>>>(ids, src, seg);
    LAUNCH_CHECK();
fail:
    return st;
}
OsStatus k_labels(int *label, const int *ids, const int *next_same, int T, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (T > 0) labels_kernel<<<exec_blocks((size_t)T, 256), 256, 0, s>>>(label, ids, next_same, T);
    LAUNCH_CHECK();
fail:
    return st;
}
OsStatus k_embed_rows_forward(bf16 *out, const bf16 *emb, const int *ids, int T, int C, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (T > 0) embed_rows_forward_kernel<<<T, 128, 0, s>>>(out, emb, ids, C);
    LAUNCH_CHECK();
fail:
    return st;
}
OsStatus k_embed_rows_backward(float *demb, const bf16 *dout, const int *ids, int T, int C, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (T > 0) embed_rows_backward_kernel<<<T, 128, 0, s>>>(demb, dout, ids, C);
    LAUNCH_CHECK();
fail:
    return st;
}

// self-test ----------------------------------------------------------------------------------

extern "C" OsStatus exec_st_step(double *worst) {
    OsStatus st = OS_OK;
    const int He = 12, R = 40, V = 97, T = 24;
    const uint64_t iseg[] = {0, 7, 1001, 0, 9, 20, 1002, 3, 30, 0, 5, 1};  /* row, n, id, k */
    const uint64_t tseg[] = {0, 5, 77, 8, 11, 78, 20, 0, 79};              /* row, n, id */
    const uint64_t sseg[] = {0, 2, 5, 8, 9, 11};                           /* from, to, n */
    int hids[T], hsame[T], hlab[T], glab[T], htext[R], gtext[R];
    float *href = NULL, *got = NULL;
    double *ref = NULL;
    bf16 *hb = NULL, *dbuf = NULL;
    uint64_t *dseg = NULL;
    int *dint = NULL;
    double w = 0;
    size_t N = (size_t)R * He;
    *worst = INFINITY;
    href = (float *)calloc(N, 4), got = (float *)malloc(N * 4), ref = (double *)malloc(N * 8);
    hb = (bf16 *)malloc(N * 2);
    ALLOC_CHECK(href && got && ref && hb);
    CUDA_CHECK(cudaMalloc(&dbuf, N * 2));
    CUDA_CHECK(cudaMalloc(&dseg, 64 * sizeof(uint64_t)));
    CUDA_CHECK(cudaMalloc(&dint, 4 * (size_t)(R + T + T + T) * sizeof(int)));
    /* item features: exact (same hash, bf16-rounded on both sides) */
    CUDA_CHECK(cudaMemset(dbuf, 0, N * 2));
    CUDA_CHECK(cudaMemcpy(dseg, iseg, sizeof iseg, cudaMemcpyHostToDevice));
    OS_CHECK(k_item_inputs(dbuf, dseg, 3, He, 5, 0));
    item_inputs_cpu(href, iseg, 3, He, 5);
    CUDA_CHECK(cudaMemcpy(hb, dbuf, N * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < N; i++) got[i] = __bfloat162float(hb[i]), ref[i] = href[i];
    w = fmax(w, exec_worst(got, ref, N, 0, 1e-12));
    /* text ids, scatter into LLM rows, labels */
    memset(htext, 0, sizeof htext);
    CUDA_CHECK(cudaMemset(dint, 0, R * sizeof(int)));
    CUDA_CHECK(cudaMemcpy(dseg, tseg, sizeof tseg, cudaMemcpyHostToDevice));
    OS_CHECK(k_text_ids(dint, dseg, 3, V, 9, 0));
    text_ids_cpu(htext, tseg, 3, V, 9);
    CUDA_CHECK(cudaMemcpy(gtext, dint, R * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < R; i++) w = fmax(w, gtext[i] == htext[i] ? 0 : 2);
    for (int r = 0; r < T; r++) hids[r] = -1, hsame[r] = (r % 7) != 6 && r + 1 < T;
    for (int k = 0; k < 2; k++)
        for (uint64_t t = 0; t < sseg[3 * k + 2]; t++) hids[sseg[3 * k + 1] + t] = htext[sseg[3 * k] + t];
    labels_cpu(hlab, hids, hsame, T);
    CUDA_CHECK(cudaMemset(dint + R, 0xFF, T * sizeof(int))); /* -1 */
    CUDA_CHECK(cudaMemcpy(dseg, sseg, sizeof sseg, cudaMemcpyHostToDevice));
    OS_CHECK(k_ids_scatter(dint + R, dint, dseg, 2, 0));
    CUDA_CHECK(cudaMemcpy(dint + R + T, hsame, T * sizeof(int), cudaMemcpyHostToDevice));
    OS_CHECK(k_labels(dint + R + 2 * T, dint + R, dint + R + T, T, 0));
    CUDA_CHECK(cudaMemcpy(glab, dint + R + 2 * T, T * sizeof(int), cudaMemcpyDeviceToHost));
    for (int r = 0; r < T; r++) w = fmax(w, glab[r] == hlab[r] ? 0 : 2);
    /* embedding over text rows only: rows with id -1 keep their value */
    {
        const int C = He, Vs = 3;
        int ids[T];
        for (int r = 0; r < T; r++) ids[r] = (r % 3 == 0) ? -1 : r % Vs;
        CUDA_CHECK(cudaMemcpy(dint, ids, T * sizeof(int), cudaMemcpyHostToDevice));
        /* table = rows 0..Vs-1 of the item buffer; output rows start at row Vs */
        OS_CHECK(k_embed_rows_forward(dbuf + (size_t)Vs * C, dbuf, dint, T, C, 0));
        CUDA_CHECK(cudaMemcpy(hb, dbuf, N * 2, cudaMemcpyDeviceToHost));
        for (int r = 0; r < T; r++)
            for (int c = 0; c < C; c++) {
                size_t o = (size_t)(Vs + r) * C + c;
                got[o] = __bfloat162float(hb[o]);
                ref[o] = ids[r] < 0 ? href[o] : href[(size_t)ids[r] * C + c];
            }
        w = fmax(w, exec_worst(got + (size_t)Vs * C, ref + (size_t)Vs * C, (size_t)T * C, 0, 1e-12));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    *worst = w;
fail:
    cudaFree(dbuf), cudaFree(dseg), cudaFree(dint);
    free(href), free(got), free(ref), free(hb);
    return st;
}
