/* softmax.cu — attention probabilities from fp32 scores (cuBLAS QK^T), with the 1/sqrt(hd)
 * scale and the causal mask, and their backward. One warp per row of an n x n matrix; rows
 * of consecutive heads are consecutive, so `rows` = heads x n. Masked entries are written 0
 * so the P V GEMM may run over the full square (the executed FLOPs calibrate counts). */
#include <stdlib.h>

#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_softmax(double *worst);

// CPU reference ------------------------------------------------------------------------------

static void softmax_forward_cpu(double *P, const float *S, int n, int rows, double scale,
                                int causal) {
    for (int r = 0; r < rows; r++) {
        int i = r % n, nj = causal ? i + 1 : n;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < nj; j++) mx = fmax(mx, S[(size_t)r * n + j] * scale);
        for (int j = 0; j < nj; j++) sum += exp(S[(size_t)r * n + j] * scale - mx);
        for (int j = 0; j < n; j++)
            P[(size_t)r * n + j] = j < nj ? exp(S[(size_t)r * n + j] * scale - mx) / sum : 0;
    }
}
static void softmax_backward_cpu(double *dS, const float *P, const float *dP, int n, int rows,
                                 double scale) {
    for (int r = 0; r < rows; r++) {
        double dot = 0;
        for (int j = 0; j < n; j++) dot += (double)P[(size_t)r * n + j] * dP[(size_t)r * n + j];
        for (int j = 0; j < n; j++)
            dS[(size_t)r * n + j] = P[(size_t)r * n + j] * (dP[(size_t)r * n + j] - dot) * scale;
    }
}

// kernels ------------------------------------------------------------------------------------

__global__ void softmax_forward_kernel(bf16 *P, const float *S, int n, int rows, float scale,
                                       int causal) {
    int64_t r = (int64_t)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32);
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int i = (int)(r % n), nj = causal ? i + 1 : n;
    const float *s = S + r * n;
    float mx = -INFINITY, sum = 0;
    for (int j = lane; j < nj; j += 32) mx = fmaxf(mx, s[j] * scale);
    mx = warp_max(mx);
    for (int j = lane; j < nj; j += 32) sum += __expf(s[j] * scale - mx);
    sum = warp_sum(sum);
    float inv = 1.0f / sum;
    for (int j = lane; j < n; j += 32)
        P[r * n + j] = __float2bfloat16(j < nj ? __expf(s[j] * scale - mx) * inv : 0.0f);
}

__global__ void softmax_backward_kernel(bf16 *dS, const bf16 *P, const float *dP, int n, int rows,
                                        float scale) {
    int64_t r = (int64_t)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32);
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    float dot = 0;
    for (int j = lane; j < n; j += 32) dot += __bfloat162float(P[r * n + j]) * dP[r * n + j];
    dot = warp_sum(dot);
    for (int j = lane; j < n; j += 32)
        dS[r * n + j] = __float2bfloat16(__bfloat162float(P[r * n + j]) * (dP[r * n + j] - dot) * scale);
}

// launchers ----------------------------------------------------------------------------------

OsStatus k_attn_softmax_forward(bf16 *P, const float *S, int n, int rows, float scale,
                                int causal, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (rows > 0) softmax_forward_kernel<<<exec_blocks((size_t)rows * 32, 256), 256, 0, s>>>(P, S, n, rows, scale, causal);
    LAUNCH_CHECK();
fail:
    return st;
}

OsStatus k_attn_softmax_backward(bf16 *dS, const bf16 *P, const float *dP, int n, int rows,
                                 float scale, cudaStream_t s) {
    OsStatus st = OS_OK;
    if (rows > 0) softmax_backward_kernel<<<exec_blocks((size_t)rows * 32, 256), 256, 0, s>>>(dS, P, dP, n, rows, scale);
    LAUNCH_CHECK();
fail:
    return st;
}

// self-test ----------------------------------------------------------------------------------

extern "C" OsStatus exec_st_softmax(double *worst) {
    OsStatus st = OS_OK;
    const int n = 45, heads = 3, rows = n * heads;
    const size_t N = (size_t)rows * n;
    const float scale = 0.125f;
    float *hS = NULL, *hdP = NULL, *hP = NULL, *got = NULL, *dSf = NULL;
    double *ref = NULL;
    bf16 *hb = NULL, *dP16 = NULL;
    float *dS32 = NULL;
    *worst = INFINITY;
    hS = (float *)malloc(N * 4), hdP = (float *)malloc(N * 4), hP = (float *)malloc(N * 4);
    got = (float *)malloc(N * 4), ref = (double *)malloc(N * 8), hb = (bf16 *)malloc(N * 2);
    ALLOC_CHECK(hS && hdP && hP && got && ref && hb);
    for (size_t i = 0; i < N; i++) hS[i] = 8 * exec_test_value(4, i), hdP[i] = exec_test_value(5, i);
    CUDA_CHECK(cudaMalloc(&dS32, 2 * N * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dP16, 2 * N * sizeof(bf16)));
    dSf = dS32 + N;
    for (int causal = 0; causal < 2; causal++) {
        CUDA_CHECK(cudaMemcpy(dS32, hS, N * 4, cudaMemcpyHostToDevice));
        OS_CHECK(k_attn_softmax_forward(dP16, dS32, n, rows, scale, causal, 0));
        CUDA_CHECK(cudaMemcpy(hb, dP16, N * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < N; i++) got[i] = hP[i] = __bfloat162float(hb[i]);
        softmax_forward_cpu(ref, hS, n, rows, scale, causal);
        *worst = causal ? fmax(*worst, exec_worst(got, ref, N, 1e-3, 1e-2)) : exec_worst(got, ref, N, 1e-3, 1e-2);
        /* backward from the GPU's own P, so only the backward's arithmetic is compared */
        CUDA_CHECK(cudaMemcpy(dSf, hdP, N * 4, cudaMemcpyHostToDevice));
        OS_CHECK(k_attn_softmax_backward(dP16 + N, dP16, dSf, n, rows, scale, 0));
        CUDA_CHECK(cudaMemcpy(hb, dP16 + N, N * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < N; i++) got[i] = __bfloat162float(hb[i]);
        softmax_backward_cpu(ref, hP, hdP, n, rows, scale);
        *worst = fmax(*worst, exec_worst(got, ref, N, 1e-3, 1e-2));
    }
fail:
    cudaFree(dS32), cudaFree(dP16);
    free(hS), free(hdP), free(hP), free(got), free(ref), free(hb);
    return st;
}
