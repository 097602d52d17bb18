/* xent.cu — token-level cross-entropy of the LM head's logits, forward and backward fused,
 * normalised by the GLOBAL label count (ref.h's label_norm), so the ranks' gradients sum to
 * the global batch's and a rank's loss is its share of the global mean.
 * One block per row (token): max, sum of exp, the row's loss, then dlogits = (softmax -
 * onehot) / norm written in the same pass. Rows without a label (label < 0) get loss 0 and
 * zero gradient. fp32 logits in (cuBLAS writes them with fp32 accumulation), bf16 gradient
 * out (the backward GEMMs' input). */
#include <stdlib.h>

#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_xent(double *worst);

// CPU reference ------------------------------------------------------------------------------

static void xent_cpu(double *loss, double *dlogits, const float *logits, const int *label, int T,
                     int V, double norm) {
    for (int t = 0; t < T; t++) {
        const float *x = logits + (size_t)t * V;
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, (double)x[v]);
        for (int v = 0; v < V; v++) sum += exp(x[v] - mx);
        int y = label[t];
        loss[t] = y >= 0 ? (log(sum) + mx - x[y]) / norm : 0;
        for (int v = 0; v < V; v++)
            dlogits[(size_t)t * V + v] = y >= 0 ? (exp(x[v] - mx) / sum - (v == y)) / norm : 0;
    }
}

// kernels ------------------------------------------------------------------------------------

__device__ float block_reduce(float v, float *sh, int is_max) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = is_max ? warp_max(v) : warp_sum(v);
    __syncthreads(); /* sh may still be read from the previous reduction */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = threadIdx.x < nw ? sh[threadIdx.x] : (is_max ? -INFINITY : 0.0f);
    if (w == 0) v = is_max ? warp_max(v) : warp_sum(v);
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    return sh[0];
}

__global__ void xent_kernel(float *loss, bf16 *dlogits, const float *logits, const int *label, int V,
                            float inv_norm) {
    __shared__ float sh[32];
    int t = blockIdx.x, y = label[t];
    const float *x = logits + (size_t)t * V;
    bf16 *dx = dlogits + (size_t)t * V;
    if (y < 0) { /* block-uniform branch: no __syncthreads skipped by part of the block */
        for (int v = threadIdx.x; v < V; v += blockDim.x) dx[v] = __float2bfloat16(0.0f);
        if (threadIdx.x == 0) loss[t] = 0;
        return;
    }
    float mx = -INFINITY, sum = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, x[v]);
    mx = block_reduce(mx, sh, 1);
    for (int v = threadIdx.x; v < V; v += blockDim.x) sum += expf(x[v] - mx);
    sum = block_reduce(sum, sh, 0);
    float inv = 1.0f / sum;
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        dx[v] = __float2bfloat16((expf(x[v] - mx) * inv - (v == y ? 1.0f : 0.0f)) * inv_norm);
    if (threadIdx.x == 0) loss[t] = (logf(sum) + mx - x[y]) * inv_norm;
}

// launchers ----------------------------------------------------------------------------------

OsStatus k_xent(float *loss, bf16 *dlogits, const float *logits, const int *label, int T, int V,
                double label_norm, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (!(label_norm > 0))
        OS_FAIL(OS_ERR_ARG, "xent", "label_norm", NULL, "%g labels: the global batch has no label", label_norm);
    if (T > 0) xent_kernel<<<T, 256, 0, s>>>(loss, dlogits, logits, label, V, (float)(1.0 / label_norm));
    LAUNCH_CHECK();
fail:
    return st;
}

// self-test ----------------------------------------------------------------------------------

extern "C" OsStatus exec_st_xent(double *worst) {
    OsStatus st = OS_OK;
    const int T = 23, V = 1031; /* V not a multiple of the block: tail handling */
    const size_t N = (size_t)T * V;
    float *hx = NULL, *got = NULL, *dl = NULL, *dx = NULL;
    double *rl = NULL, *rd = NULL;
    int *hy = NULL, *dy = NULL;
    bf16 *hb = NULL, *dg = NULL;
    double w = 0, norm = 57; /* "global" labels: more than this rank's */
    *worst = INFINITY;
    hx = (float *)malloc(N * 4), got = (float *)malloc(N * 4), rl = (double *)malloc(T * 8);
    rd = (double *)malloc(N * 8), hy = (int *)malloc(T * sizeof(int)), hb = (bf16 *)malloc(N * 2);
    ALLOC_CHECK(hx && got && rl && rd && hy && hb);
    for (size_t i = 0; i < N; i++) hx[i] = 8 * exec_test_value(11, i);
    for (int t = 0; t < T; t++) hy[t] = t % 5 == 3 ? -1 : (int)((t * 7919u) % V);
    xent_cpu(rl, rd, hx, hy, T, V, norm);
    CUDA_CHECK(cudaMalloc(&dx, N * 4));
    CUDA_CHECK(cudaMalloc(&dl, T * 4));
    CUDA_CHECK(cudaMalloc(&dy, T * sizeof(int)));
    CUDA_CHECK(cudaMalloc(&dg, N * 2));
    CUDA_CHECK(cudaMemcpy(dx, hx, N * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dy, hy, T * sizeof(int), cudaMemcpyHostToDevice));
    OS_CHECK(k_xent(dl, dg, dx, dy, T, V, norm, 0));
    CUDA_CHECK(cudaMemcpy(got, dl, T * 4, cudaMemcpyDeviceToHost));
    w = fmax(w, exec_worst(got, rl, T, 1e-5, 1e-4));
    CUDA_CHECK(cudaMemcpy(hb, dg, N * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < N; i++) got[i] = __bfloat162float(hb[i]);
    w = fmax(w, exec_worst(got, rd, N, 1e-6, 1e-2)); /* bf16: 8 bits of mantissa */
    *worst = w;
fail:
    cudaFree(dx), cudaFree(dl), cudaFree(dy), cudaFree(dg);
    free(hx), free(got), free(rl), free(rd), free(hy), free(hb);
    return st;
}
