/* rmsnorm.cu — RMSNorm forward/backward (Llama's norm; REFERENCE.md §D.1 counts its scale as
 * parameters). One warp per row; the backward sums dg per block in shared memory, then one
 * atomicAdd per column per block. */
#include <stdlib.h>

#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_rmsnorm(double *worst);

// CPU reference ------------------------------------------------------------------------------

static void rmsnorm_forward_cpu(double *out, double *rstd, const float *x, const float *g, int T,
                                int C) {
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[t * C + c] * x[t * C + c];
        rstd[t] = 1.0 / sqrt(ss / C + EXEC_NORM_EPS);
        for (int c = 0; c < C; c++) out[t * C + c] = x[t * C + c] * rstd[t] * g[c];
    }
}
static void rmsnorm_backward_cpu(double *dx, double *dg, const float *dy, const float *x,
                                 const float *g, const double *rstd, int T, int C) {
    for (int t = 0; t < T; t++) {
        double r = rstd[t], dot = 0;
        for (int c = 0; c < C; c++) dot += (double)g[c] * dy[t * C + c] * x[t * C + c];
        for (int c = 0; c < C; c++) {
            dx[t * C + c] = r * g[c] * dy[t * C + c] - x[t * C + c] * r * r * r * dot / C;
            dg[c] += (double)dy[t * C + c] * x[t * C + c] * r;
        }
    }
}

// kernels ------------------------------------------------------------------------------------

__global__ void rmsnorm_forward_kernel(bf16 *out, float *rstd, const bf16 *x, const bf16 *g, int T,
                                       int C) {
    int row = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32), lane = threadIdx.x % 32;
    if (row >= T) return;
    const bf16 *xr = x + (size_t)row * C;
    float ss = 0;
    for (int c = lane; c < C; c += 32) {
        float v = __bfloat162float(xr[c]);
        ss += v * v;
    }
    ss = warp_sum(ss);
    float r = rsqrtf(ss / C + (float)EXEC_NORM_EPS);
    for (int c = lane; c < C; c += 32)
        out[(size_t)row * C + c] = __float2bfloat16(__bfloat162float(xr[c]) * r * __bfloat162float(g[c]));
    if (lane == 0) rstd[row] = r;
}

__global__ void rmsnorm_backward_kernel(bf16 *dx, float *dg, const bf16 *dres, const bf16 *dout,
                                        const bf16 *x, const bf16 *g, const float *rstd, int T,
                                        int C) {
    extern __shared__ float sdg[]; /* [C] */
    for (int c = threadIdx.x; c < C; c += blockDim.x) sdg[c] = 0;
    __syncthreads();
    int warps = blockDim.x / 32, w = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int row = blockIdx.x * warps + w; row < T; row += gridDim.x * warps) {
        const bf16 *xr = x + (size_t)row * C, *dy = dout + (size_t)row * C;
        float r = rstd[row], dot = 0;
        for (int c = lane; c < C; c += 32)
            dot += __bfloat162float(g[c]) * __bfloat162float(dy[c]) * __bfloat162float(xr[c]);
        dot = warp_sum(dot);
        for (int c = lane; c < C; c += 32) {
            float xv = __bfloat162float(xr[c]), dv = __bfloat162float(dy[c]);
            float v = r * __bfloat162float(g[c]) * dv - xv * r * r * r * dot / C;
            if (dres) v += __bfloat162float(dres[(size_t)row * C + c]);
            dx[(size_t)row * C + c] = __float2bfloat16(v);
            atomicAdd(&sdg[c], dv * xv * r);
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(&dg[c], sdg[c]);
}

// launchers ----------------------------------------------------------------------------------

OsStatus k_rmsnorm_forward(bf16 *out, float *rstd, const bf16 *x, const bf16 *g, int T, int C,
                           cudaStream_t s) {
    OsStatus st = OS_OK;
    if (T > 0) rmsnorm_forward_kernel<<<exec_blocks((size_t)T * 32, 256), 256, 0, s>>>(out, rstd, x, g, T, C);
    LAUNCH_CHECK();
fail:
    return st;
}

OsStatus k_rmsnorm_backward(bf16 *dx, float *dg, const bf16 *dres, const bf16 *dout,
                            const bf16 *x, const bf16 *g, const float *rstd, int T, int C,
                            cudaStream_t s) {
    OsStatus st = OS_OK;
    if ((size_t)C * sizeof(float) > 48 * 1024)
        OS_FAIL(OS_ERR_RANGE, "rmsnorm", "hidden", NULL, "C = %d exceeds the 48 KiB shared-memory sum", C);
    if (T > 0) {
        unsigned blocks = (unsigned)((T + 7) / 8 < 264 ? (T + 7) / 8 : 264); /* 2 waves on 132 SMs */
        rmsnorm_backward_kernel<<<blocks, 256, C * sizeof(float), s>>>(dx, dg, dres, dout, x, g, rstd, T, C);
    }
    LAUNCH_CHECK();
fail:
    return st;
}

// self-test ----------------------------------------------------------------------------------

extern "C" OsStatus exec_st_rmsnorm(double *worst) {
    OsStatus st = OS_OK;
    const int T = 37, C = 96;
    size_t n = (size_t)T * C;
    bf16 *d = NULL;
    float *fd = NULL;
    float *hx = NULL, *hg = NULL, *hdy = NULL, *got = NULL;
    double *ref = NULL, *rstd = NULL, *rdx = NULL, *rdg = NULL;
    bf16 *hb = NULL;
    *worst = INFINITY;
    hx = (float *)malloc(n * 4), hg = (float *)malloc(C * 4), hdy = (float *)malloc(n * 4);
    got = (float *)malloc(n * 4), ref = (double *)malloc(n * 8), rstd = (double *)malloc(T * 8);
    rdx = (double *)malloc(n * 8), rdg = (double *)calloc(C, 8), hb = (bf16 *)malloc(n * 2);
    ALLOC_CHECK(hx && hg && hdy && got && ref && rstd && rdx && rdg && hb);
    for (size_t i = 0; i < n; i++) hx[i] = exec_test_value(1, i), hdy[i] = exec_test_value(2, i);
    for (int c = 0; c < C; c++) hg[c] = 1.0f + exec_test_value(3, c) / 8;
    CUDA_CHECK(cudaMalloc(&d, 4 * n * sizeof(bf16) + C * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&fd, (T + C) * sizeof(float)));
    {
        bf16 *x = d, *out = d + n, *dy = d + 2 * n, *dx = d + 3 * n, *g = d + 4 * n;
        float *r = fd, *dg = fd + T;
        for (size_t i = 0; i < n; i++) hb[i] = __float2bfloat16(hx[i]);
        CUDA_CHECK(cudaMemcpy(x, hb, n * 2, cudaMemcpyHostToDevice));
        for (size_t i = 0; i < n; i++) hb[i] = __float2bfloat16(hdy[i]);
        CUDA_CHECK(cudaMemcpy(dy, hb, n * 2, cudaMemcpyHostToDevice));
        for (int c = 0; c < C; c++) hb[c] = __float2bfloat16(hg[c]);
        CUDA_CHECK(cudaMemcpy(g, hb, C * 2, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemset(dg, 0, C * sizeof(float)));
        OS_CHECK(k_rmsnorm_forward(out, r, x, g, T, C, 0));
        OS_CHECK(k_rmsnorm_backward(dx, dg, NULL, dy, x, g, r, T, C, 0));
        rmsnorm_forward_cpu(ref, rstd, hx, hg, T, C);
        CUDA_CHECK(cudaMemcpy(hb, out, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) got[i] = __bfloat162float(hb[i]);
        double w = exec_worst(got, ref, n, 1e-2, 1e-2);
        rmsnorm_backward_cpu(rdx, rdg, hdy, hx, hg, rstd, T, C);
        CUDA_CHECK(cudaMemcpy(hb, dx, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) got[i] = __bfloat162float(hb[i]);
        w = fmax(w, exec_worst(got, rdx, n, 1e-2, 1e-2));
        CUDA_CHECK(cudaMemcpy(got, dg, C * sizeof(float), cudaMemcpyDeviceToHost));
        w = fmax(w, exec_worst(got, rdg, C, 1e-3, 1e-3));
        *worst = w;
    }
fail:
    cudaFree(d), cudaFree(fd);
    free(hx), free(hg), free(hdy), free(got), free(ref), free(rstd), free(rdx), free(rdg), free(hb);
    return st;
}
