/* act.cu — GELU (tanh approximation, as GPT-2/llm.c and ref.c), SwiGLU (Llama), residual add.
 * Elementwise, fp32 math on bf16 storage. */
#include <stdlib.h>

#include "exec/kernels/kernels.cuh"

extern "C" OsStatus exec_st_act(double *worst);

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

// CPU reference ------------------------------------------------------------------------------

static double gelu_cpu(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_grad_cpu(double x) {
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x), th = tanh(u);
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
}
static double silu_cpu(double a) { return a / (1 + exp(-a)); }

// kernels ------------------------------------------------------------------------------------

__global__ void gelu_forward_kernel(bf16 *out, const bf16 *x, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x) {
        float v = __bfloat162float(x[i]);
        out[i] = __float2bfloat16(0.5f * v * (1.0f + tanhf(GELU_K * (v + 0.044715f * v * v * v))));
    }
}
__global__ void gelu_backward_kernel(bf16 *dx, const bf16 *x, const bf16 *dout, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x) {
        float v = __bfloat162float(x[i]);
        float th = tanhf(GELU_K * (v + 0.044715f * v * v * v));
        float g = 0.5f * (1 + th) + 0.5f * v * (1 - th * th) * GELU_K * (1 + 3 * 0.044715f * v * v);
        dx[i] = __float2bfloat16(g * __bfloat162float(dout[i]));
    }
}
__global__ void swiglu_forward_kernel(bf16 *h, const bf16 *u, int T, int F) {
    size_t N = (size_t)T * F;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / F, f = i % F;
        float a = __bfloat162float(u[t * 2 * F + f]), b = __bfloat162float(u[t * 2 * F + F + f]);
        h[i] = __float2bfloat16(a / (1.0f + __expf(-a)) * b);
    }
}
__global__ void swiglu_backward_kernel(bf16 *du, const bf16 *u, const bf16 *dh, int T, int F) {
    size_t N = (size_t)T * F;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / F, f = i % F;
        float a = __bfloat162float(u[t * 2 * F + f]), b = __bfloat162float(u[t * 2 * F + F + f]);
        float sg = 1.0f / (1.0f + __expf(-a)), g = __bfloat162float(dh[i]);
        du[t * 2 * F + f] = __float2bfloat16(g * b * sg * (1.0f + a * (1.0f - sg)));
        du[t * 2 * F + F + f] = __float2bfloat16(g * a * sg);
    }
}
__global__ void add_kernel(bf16 *y, const bf16 *a, const bf16 *b, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

// launchers ----------------------------------------------------------------------------------

#define LAUNCH_1D(kernel, N, ...)                                                          \
    do {                                                                                   \
        if ((N) > 0) kernel<<<exec_blocks((N), 256), 256, 0, s>>>(__VA_ARGS__);            \
        LAUNCH_CHECK();                                                                    \
    } while (0)

OsStatus k_gelu_forward(bf16 *out, const bf16 *x, size_t N, cudaStream_t s) {
    OsStatus st = OS_OK;
    LAUNCH_1D(gelu_forward_kernel, N, out, x, N);
fail:
    return st;
}
OsStatus k_gelu_backward(bf16 *dx, const bf16 *x, const bf16 *dout, size_t N, cudaStream_t s) {
    OsStatus st = OS_OK;
    LAUNCH_1D(gelu_backward_kernel, N, dx, x, dout, N);
fail:
    return st;
}
OsStatus k_swiglu_forward(bf16 *h, const bf16 *u, int T, int F, cudaStream_t s) {
    OsStatus st = OS_OK;
    LAUNCH_1D(swiglu_forward_kernel, (size_t)T * F, h, u, T, F);
fail:
    return st;
}
OsStatus k_swiglu_backward(bf16 *du, const bf16 *u, const bf16 *dh, int T, int F, cudaStream_t s) {
    OsStatus st = OS_OK;
    LAUNCH_1D(swiglu_backward_kernel, (size_t)T * F, du, u, dh, T, F);
fail:
    return st;
}
OsStatus k_add(bf16 *y, const bf16 *a, const bf16 *b, size_t N, cudaStream_t s) {
    OsStatus st = OS_OK;
    LAUNCH_1D(add_kernel, N, y, a, b, N);
fail:
    return st;
}

// self-test ----------------------------------------------------------------------------------

extern "C" OsStatus exec_st_act(double *worst) {
    OsStatus st = OS_OK;
    const int T = 19, F = 53;
    const size_t N = (size_t)T * F, N2 = 2 * N;
    float *hx = NULL, *hd = NULL, *got = NULL;
    double *ref = NULL;
    bf16 *hb = NULL, *d = NULL;
    *worst = INFINITY;
    hx = (float *)malloc(N2 * 4), hd = (float *)malloc(N2 * 4), got = (float *)malloc(N2 * 4);
    ref = (double *)malloc(N2 * 8), hb = (bf16 *)malloc(N2 * 2);
    ALLOC_CHECK(hx && hd && got && ref && hb);
    for (size_t i = 0; i < N2; i++) hx[i] = 3 * exec_test_value(6, i), hd[i] = exec_test_value(7, i);
    CUDA_CHECK(cudaMalloc(&d, 4 * N2 * sizeof(bf16)));
    {
        bf16 *x = d, *dy = d + N2, *o1 = d + 2 * N2, *o2 = d + 3 * N2;
        for (size_t i = 0; i < N2; i++) hb[i] = __float2bfloat16(hx[i]), hx[i] = __bfloat162float(hb[i]);
        CUDA_CHECK(cudaMemcpy(x, hb, N2 * 2, cudaMemcpyHostToDevice));
        for (size_t i = 0; i < N2; i++) hb[i] = __float2bfloat16(hd[i]), hd[i] = __bfloat162float(hb[i]);
        CUDA_CHECK(cudaMemcpy(dy, hb, N2 * 2, cudaMemcpyHostToDevice));
        double w = 0;
        /* GELU over all 2N values */
        OS_CHECK(k_gelu_forward(o1, x, N2, 0));
        OS_CHECK(k_gelu_backward(o2, x, dy, N2, 0));
        CUDA_CHECK(cudaMemcpy(hb, o1, N2 * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < N2; i++) got[i] = __bfloat162float(hb[i]), ref[i] = gelu_cpu(hx[i]);
        w = fmax(w, exec_worst(got, ref, N2, 1e-2, 1e-2));
        CUDA_CHECK(cudaMemcpy(hb, o2, N2 * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < N2; i++) got[i] = __bfloat162float(hb[i]), ref[i] = gelu_grad_cpu(hx[i]) * hd[i];
        w = fmax(w, exec_worst(got, ref, N2, 1e-2, 1e-2));
        /* SwiGLU: x as u [T, 2F], dy's first N as dh [T, F] */
        OS_CHECK(k_swiglu_forward(o1, x, T, F, 0));
        OS_CHECK(k_swiglu_backward(o2, x, dy, T, F, 0));
        CUDA_CHECK(cudaMemcpy(hb, o1, N * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < N; i++) {
            size_t t = i / F, f = i % F;
            got[i] = __bfloat162float(hb[i]);
            ref[i] = silu_cpu(hx[t * 2 * F + f]) * hx[t * 2 * F + F + f];
        }
        w = fmax(w, exec_worst(got, ref, N, 1e-2, 1e-2));
        CUDA_CHECK(cudaMemcpy(hb, o2, N2 * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < N; i++) {
            size_t t = i / F, f = i % F;
            double a = hx[t * 2 * F + f], b = hx[t * 2 * F + F + f], sg = 1 / (1 + exp(-a)), g = hd[i];
            ref[t * 2 * F + f] = g * b * sg * (1 + a * (1 - sg));
            ref[t * 2 * F + F + f] = g * a * sg;
        }
        for (size_t i = 0; i < N2; i++) got[i] = __bfloat162float(hb[i]);
        w = fmax(w, exec_worst(got, ref, N2, 1e-2, 1e-2));
        *worst = w;
    }
fail:
    cudaFree(d);
    free(hx), free(hd), free(got), free(ref), free(hb);
    return st;
}
