/* calibrate_gpu.cu — the GPU module's timer for calibrate.h (the plan and the table are plain
 * C, exec/calibrate.c). One harness (STYLE.md habit 7): `warmup` untimed launches, then
 * `repeats` launches each between two CUDA events on one stream, median. Data: random
 * non-zero bf16 (zeros run faster on tensor cores). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/attn.h"
#include "exec/flash.cuh"
#include "exec/gemm.cuh"
#include "exec/kernels/kernels.cuh"

extern "C" {
#include "exec/calibrate.h"
#include "base/util.h"
}

OsStatus gm_cal_open(void **ctx, const ExecCalNeeds *need);
OsStatus gm_cal_time(void *ctx, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec);
void gm_cal_close(void *ctx);

namespace {

struct Cal {
    cudaStream_t s, s2;
    cublasHandle_t h;
    cudaEvent_t ev[2];
    double *times;
    uint32_t cap_times;
    bf16 *A, *B, *C;
    size_t na, nb, nc;                       /* elements */
    bf16 *qkv, *att, *datt, *dqkv;
    float *lse, *dq, *dvec;
    ExecFlashTile *tiles, *htiles;
    size_t rows, cols, out_cols, max_tiles;
    int4 *src, *dst;
    size_t copy_n;                           /* int4 elements */
    int *flag;
    int twin;                                /* ORCHSIM_ATTN=cublas: time the cuBLAS twin instead */
    float *S, *dP;                           /* twin: [n n] */
    bf16 *P, *dS;
};

int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

__global__ void fill_kernel(bf16 *x, size_t n, uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float u = exec_uniform(exec_hash3(seed, i, 0x63616c6962ull));
        x[i] = __float2bfloat16(u == 0.0f ? 0.5f : u);
    }
}

/* A streaming kernel: 16-byte loads and stores, grid-stride (what memory-bound kernels reach). */
__global__ void copy_kernel(int4 *dst, const int4 *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = src[i];
}

/* The overlap proxy: EXEC_CAL_PROXY_CTAS CTAs copying until *stop (or max_passes). */
__global__ void proxy_kernel(int4 *dst, const int4 *src, size_t n, const volatile int *stop, int max_passes) {
    for (int p = 0; p < max_passes; p++) {
        if (*stop) return;
        for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
            dst[i] = src[i];
    }
}
__global__ void set_flag_kernel(int *f, int v) {
    *f = v;
    __threadfence_system();
}
__global__ void tiny_kernel(bf16 *y, const bf16 *x) { y[threadIdx.x] = x[threadIdx.x]; }

OsStatus run_once(Cal *c, const ExecCalWork *w, uint32_t ntiles) {
    OsStatus st = OS_OK;
    switch (w->kind) {
    case EXEC_CW_GEMM:
    case EXEC_CW_GEMM_BESIDE: { /* row-major C[m, n] = A[m, k] B[k, n] */
        ExecGemm g = exec_gemm_ab(c->C, w->n, c->A, w->k, c->B, w->n, w->m, w->n, w->k);
        OS_CHECK(exec_gemm_run(c->h, &g, CUDA_R_16BF, 1.0f, 0.0f));
        break;
    }
    case EXEC_CW_ATTN:
        if (c->twin && w->dir == 0)
            OS_CHECK(exec_attn_forward(c->att, c->qkv, w->len, w->nh, w->nkv, w->hd, w->causal, c->S, c->P, c->h, c->s));
        else if (c->twin)
            OS_CHECK(exec_attn_backward(c->dqkv, c->datt, c->qkv, w->len, w->nh, w->nkv, w->hd, w->causal, c->S, c->P,
                                        c->dP, c->dS, c->h, c->s));
        else if (w->dir == 0)
            OS_CHECK(exec_flash_forward(c->att, c->lse, c->qkv, c->tiles, ntiles, w->len, w->nh, w->nkv, w->hd,
                                        w->causal, c->s));
        else
            OS_CHECK(exec_flash_backward(c->dqkv, c->dq, c->dvec, c->datt, c->qkv, c->att, c->lse,
                                         c->tiles + c->max_tiles, ntiles, w->len, w->nh, w->nkv, w->hd, w->causal,
                                         c->s));
        break;
    case EXEC_CW_COPY:
        copy_kernel<<<1024, 512, 0, c->s>>>(c->dst, c->src, (size_t)(w->bytes / 16));
        LAUNCH_CHECK();
        break;
    case EXEC_CW_LAUNCH:
        tiny_kernel<<<1, 256, 0, c->s>>>(c->C, c->A);
        LAUNCH_CHECK();
        break;
    }
fail:
    return st;
}

OsStatus median(Cal *c, const ExecCalWork *w, uint32_t ntiles, uint32_t repeats, uint32_t warmup, double *sec) {
    OsStatus st = OS_OK;
    for (uint32_t i = 0; i < warmup; i++) OS_CHECK(run_once(c, w, ntiles));
    for (uint32_t r = 0; r < repeats; r++) {
        float ms = 0;
        CUDA_CHECK(cudaEventRecord(c->ev[0], c->s));
        OS_CHECK(run_once(c, w, ntiles));
        CUDA_CHECK(cudaEventRecord(c->ev[1], c->s));
        CUDA_CHECK(cudaEventSynchronize(c->ev[1]));
        CUDA_CHECK(cudaEventElapsedTime(&ms, c->ev[0], c->ev[1]));
        c->times[r] = ms * 1e-3;
    }
    qsort(c->times, repeats, sizeof *c->times, dbl_cmp);
    *sec = c->times[repeats / 2];
fail:
    return st;
}

/* The GEMM beside the proxy: the proxy starts first on s2 and runs until the timed GEMMs on s
 * are done (a flag), bounded so that it ends even if the two streams never overlap. */
OsStatus beside(Cal *c, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec) {
    OsStatus st = OS_OK;
    double alone = 0, pass = 0;
    ExecCalWork g = *w;
    g.kind = EXEC_CW_GEMM;
    const size_t n = c->copy_n / 4; /* a quarter of the copy buffer per pass */
    OS_CHECK(median(c, &g, 0, 3, 1, &alone));
    {   /* one proxy pass alone, for the bound */
        float ms = 0;
        CUDA_CHECK(cudaMemsetAsync(c->flag, 0, sizeof(int), c->s));
        CUDA_CHECK(cudaEventRecord(c->ev[0], c->s));
        proxy_kernel<<<EXEC_CAL_PROXY_CTAS, 512, 0, c->s>>>(c->dst, c->src, n, c->flag, 2);
        LAUNCH_CHECK();
        CUDA_CHECK(cudaEventRecord(c->ev[1], c->s));
        CUDA_CHECK(cudaEventSynchronize(c->ev[1]));
        CUDA_CHECK(cudaEventElapsedTime(&ms, c->ev[0], c->ev[1]));
        pass = fmax(ms * 1e-3 / 2, 1e-6);
    }
    {
        double budget = (warmup + repeats) * alone * 3 + 0.02;
        int max_passes = (int)fmin(budget / pass + 2, 1e7);
        CUDA_CHECK(cudaMemsetAsync(c->flag, 0, sizeof(int), c->s));
        CUDA_CHECK(cudaStreamSynchronize(c->s));
        proxy_kernel<<<EXEC_CAL_PROXY_CTAS, 512, 0, c->s2>>>(c->dst, c->src, n, c->flag, max_passes);
        LAUNCH_CHECK();
        OS_CHECK(median(c, &g, 0, repeats, warmup, sec));
        set_flag_kernel<<<1, 1, 0, c->s>>>(c->flag, 1);
        LAUNCH_CHECK();
        CUDA_CHECK(cudaStreamSynchronize(c->s));
        CUDA_CHECK(cudaStreamSynchronize(c->s2));
    }
fail:
    return st;
}

} // namespace

OsStatus gm_cal_open(void **out, const ExecCalNeeds *need) {
    OsStatus st = OS_OK;
    Cal *c = NULL;
    size_t fre = 0, tot = 0;
    const double slack = 256.0 * 1048576; /* cuBLAS workspace, context */
    *out = NULL;
    ALLOC_CHECK(c = (Cal *)calloc(1, sizeof *c));
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaMemGetInfo(&fre, &tot));
    if (need->total_bytes + slack > (double)fre)
        OS_FAIL(OS_ERR_RANGE, "calibrate", "memory", "lower --max-tokens or --max-len",
                "the plan needs %.2f GiB of GPU memory, %.2f GiB are free", (need->total_bytes + slack) / 1073741824.0,
                fre / 1073741824.0);
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->s, cudaStreamNonBlocking));
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->s2, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&c->h));
    CUBLAS_CHECK(cublasSetStream(c->h, c->s));
    CUDA_CHECK(cudaEventCreate(&c->ev[0]));
    CUDA_CHECK(cudaEventCreate(&c->ev[1]));
    c->na = (size_t)fmax(need->gemm_a, 256), c->nb = (size_t)fmax(need->gemm_b, 256), c->nc = (size_t)fmax(need->gemm_c, 256);
    CUDA_CHECK(cudaMalloc(&c->A, c->na * 2));
    CUDA_CHECK(cudaMalloc(&c->B, c->nb * 2));
    CUDA_CHECK(cudaMalloc(&c->C, c->nc * 2));
    c->rows = (size_t)fmax(need->attn_rows, 1), c->cols = (size_t)fmax(need->attn_cols, 8);
    c->out_cols = (size_t)fmax(need->attn_out_cols, 8), c->max_tiles = exec_flash_max_tiles(c->rows);
    CUDA_CHECK(cudaMalloc(&c->qkv, c->rows * c->cols * 2));
    CUDA_CHECK(cudaMalloc(&c->dqkv, c->rows * c->cols * 2));
    CUDA_CHECK(cudaMalloc(&c->att, c->rows * c->out_cols * 2));
    CUDA_CHECK(cudaMalloc(&c->datt, c->rows * c->out_cols * 2));
    CUDA_CHECK(cudaMalloc(&c->dq, c->rows * c->out_cols * 4));
    CUDA_CHECK(cudaMalloc(&c->lse, c->rows * c->out_cols * 4)); /* >= nh x rows */
    CUDA_CHECK(cudaMalloc(&c->dvec, c->rows * c->out_cols * 4));
    CUDA_CHECK(cudaMalloc(&c->tiles, 2 * c->max_tiles * sizeof(ExecFlashTile)));
    ALLOC_CHECK(c->htiles = (ExecFlashTile *)malloc(2 * c->max_tiles * sizeof(ExecFlashTile)));
    c->copy_n = (size_t)fmax(need->copy_bytes / 16, 4096);
    CUDA_CHECK(cudaMalloc(&c->src, c->copy_n * 16));
    CUDA_CHECK(cudaMalloc(&c->dst, c->copy_n * 16));
    CUDA_CHECK(cudaMalloc(&c->flag, sizeof(int)));
    {
        const char *e = getenv("ORCHSIM_ATTN");
        c->twin = e && !strcmp(e, "cublas");
        if (c->twin) { /* the slow twin's n x n scratch of the longest sequence */
            const size_t nn = c->rows * c->rows;
            CUDA_CHECK(cudaMalloc(&c->S, nn * 4));
            CUDA_CHECK(cudaMalloc(&c->dP, nn * 4));
            CUDA_CHECK(cudaMalloc(&c->P, nn * 2));
            CUDA_CHECK(cudaMalloc(&c->dS, nn * 2));
        }
    }
    CUDA_CHECK(cudaMemset(c->dst, 0, c->copy_n * 16));
    CUDA_CHECK(cudaMemset(c->dqkv, 0, c->rows * c->cols * 2));
    fill_kernel<<<1024, 256, 0, c->s>>>(c->A, c->na, 1);
    LAUNCH_CHECK();
    fill_kernel<<<1024, 256, 0, c->s>>>(c->B, c->nb, 2);
    LAUNCH_CHECK();
    fill_kernel<<<1024, 256, 0, c->s>>>(c->qkv, c->rows * c->cols, 3);
    LAUNCH_CHECK();
    fill_kernel<<<1024, 256, 0, c->s>>>(c->datt, c->rows * c->out_cols, 4);
    LAUNCH_CHECK();
    fill_kernel<<<1024, 256, 0, c->s>>>((bf16 *)c->src, c->copy_n * 8, 5);
    LAUNCH_CHECK();
    CUDA_CHECK(cudaStreamSynchronize(c->s));
    *out = c;
    return OS_OK;
fail:
    gm_cal_close(c);
    return st;
}

OsStatus gm_cal_time(void *ctx, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec) {
    OsStatus st = OS_OK;
    Cal *c = (Cal *)ctx;
    uint32_t ntiles = 0;
    *sec = NAN;
    if (repeats < 1) OS_FAIL(OS_ERR_ARG, "calibrate", "--repeats", NULL, "at least 1");
    if (repeats > c->cap_times) {
        void *p = c->times;
        size_t cap = c->cap_times;
        OS_CHECK(os_grow(&p, &cap, repeats, sizeof(double)));
        c->times = (double *)p, c->cap_times = (uint32_t)cap;
    }
    switch (w->kind) {
    case EXEC_CW_GEMM:
    case EXEC_CW_GEMM_BESIDE:
        if ((size_t)w->m * w->k > c->na || (size_t)w->k * w->n > c->nb || (size_t)w->m * w->n > c->nc)
            OS_FAIL(OS_ERR_INTERNAL, "calibrate", "gemm", NULL, "%d x %d x %d exceeds the buffers", w->m, w->n, w->k);
        break;
    case EXEC_CW_ATTN: {
        const size_t cols = (size_t)(w->nh + 2 * w->nkv) * w->hd;
        const uint64_t len = (uint64_t)w->len;
        if ((size_t)w->len > c->rows || cols > c->cols || (size_t)w->nh * w->hd > c->out_cols)
            OS_FAIL(OS_ERR_INTERNAL, "calibrate", "attention", NULL, "length %d, %zu columns exceed the buffers", w->len, cols);
        ntiles = exec_flash_tiles(c->htiles, c->htiles + c->max_tiles, &len, 1, w->causal);
        CUDA_CHECK(cudaMemcpy(c->tiles, c->htiles, 2 * c->max_tiles * sizeof(ExecFlashTile), cudaMemcpyHostToDevice));
        if (w->dir == 1) { /* the backward reads the forward's output and LSE */
            ExecCalWork f = *w;
            f.dir = 0;
            OS_CHECK(run_once(c, &f, ntiles));
        }
        break;
    }
    case EXEC_CW_COPY:
        if (w->bytes / 16 > c->copy_n) OS_FAIL(OS_ERR_INTERNAL, "calibrate", "copy", NULL, "%.0f bytes", w->bytes);
        break;
    case EXEC_CW_LAUNCH:
        break;
    }
    if (w->kind == EXEC_CW_GEMM_BESIDE) OS_CHECK(beside(c, w, repeats, warmup, sec));
    else OS_CHECK(median(c, w, ntiles, repeats, warmup, sec));
fail:
    return st;
}

void gm_cal_close(void *ctx) {
    Cal *c = (Cal *)ctx;
    if (!c) return;
    if (c->s) (void)cudaStreamSynchronize(c->s);
    if (c->s2) (void)cudaStreamSynchronize(c->s2);
    cudaFree(c->A), cudaFree(c->B), cudaFree(c->C), cudaFree(c->qkv), cudaFree(c->dqkv), cudaFree(c->att);
    cudaFree(c->datt), cudaFree(c->dq), cudaFree(c->lse), cudaFree(c->dvec), cudaFree(c->tiles), cudaFree(c->src);
    cudaFree(c->dst), cudaFree(c->flag), cudaFree(c->S), cudaFree(c->dP), cudaFree(c->P), cudaFree(c->dS);
    for (int i = 0; i < 2; i++)
        if (c->ev[i]) cudaEventDestroy(c->ev[i]);
    if (c->h) cublasDestroy(c->h);
    if (c->s) cudaStreamDestroy(c->s);
    if (c->s2) cudaStreamDestroy(c->s2);
    free(c->times), free(c->htiles);
    free(c);
}
