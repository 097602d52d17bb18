/* calibrate_gpu.cu — the measurements of calibrate.h on GPU 0. One harness (STYLE.md habit 7):
 * warm-up launches, then `repeats` launches each between two CUDA events, median. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/attn.h"
#include "exec/gemm.cuh"
#include "exec/kernels/kernels.cuh"

extern "C" {
#include "exec/calibrate.h"
#include "exec/gpu.h"
#include "base/util.h"
OsStatus exec_cuda_calibrate(Calib *c, const ModelSpec *m, const ExecCalibOptions *o);
OsStatus exec_cuda_info(ExecDeviceInfo *info, int device);
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The workloads the harness times. */
typedef enum { W_GEMM, W_ATTN, W_ATTN_BWD, W_COPY, W_TINY } WorkKind;
typedef struct {
    WorkKind kind;
    int M, K, N;          /* GEMM: [M,K] x [N,K]^T; attention: M = n, K = heads, N = kv groups */
    int hd, causal;
    bf16 *a, *b, *c;      /* borrowed device buffers */
    float *S, *dP;
    bf16 *P, *dS;
    size_t bytes;         /* W_COPY: bytes copied a -> c */
    cublasHandle_t h;
    cudaStream_t s;
} Work;

static OsStatus work_run(const Work *w) {
    OsStatus st = OS_OK;
    switch (w->kind) {
    case W_GEMM: { /* row-major C[M,N] = A[M,K] W[N,K]^T: a linear layer (exec/gemm.h) */
        ExecGemm g = exec_gemm_linear_fwd(w->c, w->a, w->b, w->M, w->K, w->N);
        OS_CHECK(exec_gemm_run(w->h, &g, CUDA_R_16BF, 1.0f, 0.0f));
        break;
    }
    case W_ATTN:
        OS_CHECK(exec_attn_forward(w->c, w->a, w->M, w->K, w->N, w->hd, w->causal, w->S, w->P, w->h, w->s));
        break;
    case W_ATTN_BWD:
        OS_CHECK(exec_attn_backward(w->b, w->c, w->a, w->M, w->K, w->N, w->hd, w->causal, w->S, w->P, w->dP,
                                    w->dS, w->h, w->s));
        break;
    case W_COPY: /* a streaming kernel's bandwidth: device-to-device copy (read + write) */
        CUDA_CHECK(cudaMemcpyAsync(w->c, w->a, w->bytes, cudaMemcpyDeviceToDevice, w->s));
        break;
    case W_TINY: /* the fixed cost of one short memory-bound kernel: an add over one row */
        OS_CHECK(k_add(w->c, w->a, w->c, w->K, w->s));
        break;
    }
fail:
    return st;
}

/* Median seconds of one run of w over `repeats`, after `warmup` untimed runs. */
static OsStatus time_median(double *sec, const Work *w, cudaEvent_t *ev, uint32_t repeats,
                            uint32_t warmup, double *scratch) {
    OsStatus st = OS_OK;
    for (uint32_t i = 0; i < warmup; i++) OS_CHECK(work_run(w));
    CUDA_CHECK(cudaEventRecord(ev[0], w->s));
    for (uint32_t r = 0; r < repeats; r++) {
        OS_CHECK(work_run(w));
        CUDA_CHECK(cudaEventRecord(ev[r + 1], w->s));
    }
    CUDA_CHECK(cudaEventSynchronize(ev[repeats]));
    for (uint32_t r = 0; r < repeats; r++) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, ev[r], ev[r + 1]));
        scratch[r] = ms * 1e-3;
    }
    qsort(scratch, repeats, sizeof *scratch, dbl_cmp);
    *sec = scratch[repeats / 2];
fail:
    return st;
}

__global__ void fill_kernel(bf16 *x, size_t n, uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t h = exec_hash3(seed, i, 0x63616c6962ull);
        float u = exec_uniform(h);
        x[i] = __float2bfloat16(u == 0.0f ? 0.5f : u); /* non-zero: zeros can run faster */
    }
}

/* The (K, N) pairs of a stack's weight matrices (DESIGN.md §2) and of the projectors. */
static uint32_t gemm_shapes(int (*kn)[2], uint32_t cap, const ModelSpec *m) {
    uint32_t n = 0;
#define ADD(k_, n_)                                                                  \
    do {                                                                             \
        int k0 = (int)(k_), n0 = (int)(n_), dup = 0;                                 \
        for (uint32_t q = 0; q < n; q++) dup |= kn[q][0] == k0 && kn[q][1] == n0;    \
        if (!dup && n < cap && k0 > 0 && n0 > 0) kn[n][0] = k0, kn[n][1] = n0, n++;  \
    } while (0)
    for (uint32_t e = 0; e <= m->n_enc; e++) {
        const StackSpec *s = e < m->n_enc ? &m->enc[e].stack : &m->llm;
        ExecStackLayout L;
        exec_stack_layout(&L, s);
        ADD(L.H, L.qkv_rows);
        ADD(L.nh * L.hd, L.H);
        ADD(L.H, L.up_rows);
        ADD(L.F, L.H);
        if (L.V) ADD(L.H, L.V);
        if (e < m->n_enc) {
            ADD(m->enc[e].ratio * L.H, m->llm.hidden);
            ADD(m->llm.hidden, m->llm.hidden);
        }
    }
#undef ADD
    return n;
}

extern "C" OsStatus exec_cuda_calibrate(Calib *c, const ModelSpec *m, const ExecCalibOptions *o) {
    OsStatus st = OS_OK;
    ExecDeviceInfo info;
    int kn[64][2];
    uint32_t nkn = 0, ng = 0, na = 0;
    double *scratch = NULL;
    cudaEvent_t *ev = NULL;
    uint32_t nev = 0;
    cublasHandle_t h = NULL;
    cudaStream_t s = NULL;
    bf16 *A = NULL, *B = NULL, *C = NULL, *P = NULL;
    float *S = NULL;
    size_t maxK = 0, maxN = 0, need = 0, fre = 0, tot = 0, maxlen = o->max_len, a_bytes = 0, c_bytes = 0;
    Work w;
    char buf[128];
    memset(c, 0, sizeof *c);
    memset(&w, 0, sizeof w);
    if (o->repeats < 1 || o->min_tokens < 1 || o->min_len < 1)
        OS_FAIL(OS_ERR_ARG, "calibrate", "--repeats", NULL, "repeats, token and length ranges must be >= 1");
    OS_CHECK(exec_cuda_info(&info, 0));
    CUDA_CHECK(cudaSetDevice(0));
    nkn = gemm_shapes(kn, 64, m);
    for (uint32_t i = 0; i < nkn; i++) maxK = OS_MAX(maxK, (size_t)kn[i][0]), maxN = OS_MAX(maxN, (size_t)kn[i][1]);
    {
        /* bytes before allocating: A [Mmax, K], B [N, K], C [Mmax, N]; attention scratch */
        ExecStackLayout L;
        exec_stack_layout(&L, &m->llm);
        a_bytes = OS_MAX(2 * ((size_t)o->max_tokens * maxK + maxN * maxK), 2 * maxlen * (size_t)(L.qkv_rows + L.H));
        c_bytes = OS_MAX(2 * (size_t)o->max_tokens * maxN, 12 * maxlen * maxlen);
        a_bytes = OS_MAX(a_bytes, (size_t)64 * L.H * 2), c_bytes = OS_MAX(c_bytes, (size_t)64 * L.H * 2);
        need = a_bytes + c_bytes + (64u << 20); /* + cuBLAS workspace and context slack */
        CUDA_CHECK(cudaMemGetInfo(&fre, &tot));
        if (need > fre)
            OS_FAIL(OS_ERR_RANGE, "calibrate", "memory", "lower the largest token count or sequence length",
                    "needs %.2f GiB of GPU memory, %.2f GiB free on %s", need / 1073741824.0, fre / 1073741824.0,
                    info.name);
        CUDA_CHECK(cudaMalloc(&A, a_bytes));
        CUDA_CHECK(cudaMalloc(&C, c_bytes));
    }
    ALLOC_CHECK(scratch = (double *)calloc(o->repeats + 1, sizeof *scratch));
    ALLOC_CHECK(ev = (cudaEvent_t *)calloc(o->repeats + 1, sizeof *ev));
    for (nev = 0; nev <= o->repeats; nev++) CUDA_CHECK(cudaEventCreate(&ev[nev]));
    CUDA_CHECK(cudaStreamCreate(&s));
    CUBLAS_CHECK(cublasCreate(&h));
    CUBLAS_CHECK(cublasSetStream(h, s));
    fill_kernel<<<1024, 256, 0, s>>>(A, a_bytes / 2, 1);
    LAUNCH_CHECK();
    fill_kernel<<<1024, 256, 0, s>>>(C, c_bytes / 2, 2);
    LAUNCH_CHECK();
    /* GEMMs: a complete grid (sim/calib.c) over M = min_tokens.. doubling and the model's
     * distinct K and N sizes on both the n and k axes (dgrad and wgrad swap them) */
    {
        double dims[CALIB_MAX_AXIS];
        uint32_t nd = 0, nm = 0;
        double ms[CALIB_MAX_AXIS];
        for (uint32_t i = 0; i < nkn; i++)
            for (int q = 0; q < 2; q++) {
                double v = kn[i][q];
                int dup = 0;
                for (uint32_t j = 0; j < nd; j++) dup |= dims[j] == v;
                if (!dup && nd < CALIB_MAX_AXIS) dims[nd++] = v;
            }
        for (uint32_t M = o->min_tokens; M <= o->max_tokens && nm < CALIB_MAX_AXIS; M *= 2) ms[nm++] = M;
        while ((size_t)nm * nd * nd > CALIB_MAX_GEMM && nd > 1) nd--; /* keep the grid within the table */
        B = A + (size_t)o->max_tokens * maxK;
        w.h = h, w.s = s, w.kind = W_GEMM, w.a = A, w.b = B, w.c = C;
        for (uint32_t i = 0; i < nm; i++)
            for (uint32_t j = 0; j < nd; j++)
                for (uint32_t l = 0; l < nd; l++) {
                    double sec;
                    w.M = (int)ms[i], w.N = (int)dims[j], w.K = (int)dims[l];
                    OS_CHECK(time_median(&sec, &w, ev, o->repeats, o->warmup, scratch));
                    double rate = 2.0 * w.M * w.N * w.K / sec;
                    OS_CHECK(calib_add_gemm(c, w.M, w.N, w.K, rate));
                    if (o->verbose)
                        fprintf(stderr, "# gemm m=%d n=%d k=%d  %.3f us  %.1f TFLOP/s (measured)\n", w.M, w.N, w.K,
                                sec * 1e6, rate / 1e12);
                    ng++;
                }
    }
    /* attention forward and backward, both masks, at the LLM's head dim; rates in
     * FlashAttention's convention (cost.h): the backend runs the whole square either way */
    {
        ExecStackLayout L;
        exec_stack_layout(&L, &m->llm);
        S = (float *)C;
        P = (bf16 *)(S + maxlen * maxlen);
        w.dP = (float *)(P + maxlen * maxlen);
        w.dS = (bf16 *)(w.dP + maxlen * maxlen);
        w.K = (int)L.nh, w.N = (int)L.nkv, w.hd = (int)L.hd;
        w.S = S, w.P = P, w.a = A, w.c = A + maxlen * L.qkv_rows, w.b = B;
        for (int dir = 0; dir < 2; dir++)
            for (int causal = 0; causal < 2; causal++)
                for (uint32_t n = o->min_len; n <= o->max_len && na < CALIB_MAX_ATTN; n *= 2) {
                    double sec;
                    w.kind = dir ? W_ATTN_BWD : W_ATTN, w.M = (int)n, w.causal = causal;
                    OS_CHECK(time_median(&sec, &w, ev, o->repeats, o->warmup, scratch));
                    double fl = 4.0 * n * n * L.hd * L.nh * (causal ? 0.5 : 1.0) * (dir ? 2.5 : 1.0);
                    OS_CHECK(calib_add_attn(c, (AttnDir)dir, causal, (uint32_t)L.hd, n, fl / sec));
                    if (o->verbose)
                        fprintf(stderr, "# attn %s %s n=%u  %.3f us  %.1f TFLOP/s (measured)\n", dir ? "bwd" : "fwd",
                                causal ? "causal" : "full", n, sec * 1e6, fl / sec / 1e12);
                    na++;
                }
        /* HBM: a device-to-device copy of half the big buffer, counted read + write */
        w.kind = W_COPY, w.a = A, w.c = C, w.bytes = OS_MIN(a_bytes, c_bytes) / 2;
        {
            double sec;
            OS_CHECK(time_median(&sec, &w, ev, o->repeats, o->warmup, scratch));
            c->hbm_bw = 2.0 * (double)w.bytes / sec;
        }
        /* one short kernel's fixed time */
        w.kind = W_TINY, w.K = (int)L.H, w.a = A, w.c = C;
        OS_CHECK(time_median(&c->kernel_launch_s, &w, ev, o->repeats, o->warmup, scratch));
    }
    /* the overlap slowdown needs NCCL peers beside the compute: not measured on one GPU, the
     * built-in table's cited figure is kept and labelled as such */
    {
        Calib d;
        calib_default_h100(&d);
        c->overlap_slowdown = d.overlap_slowdown;
        OS_CHECK(calib_set_meta(c, "overlap_slowdown_source", "built-in table (needs NCCL peers to measure)"));
    }
    /* peak: Hopper tensor cores do 4096 dense bf16 FLOP per SM per clock (989.4e12 /
     * (132 SMs x 1830 MHz), REFERENCE.md §D.4); other devices: the best GEMM measured */
    if (info.cc_major == 9 && info.cc_minor == 0) {
        c->peak_flops = 4096.0 * info.sms * info.sm_clock_mhz * 1e6;
        OS_CHECK(calib_set_meta(c, "peak_source", "4096 FLOP/clk/SM x SMs x max SM clock (sm_90)"));
    } else {
        for (uint32_t i = 0; i < c->n_gemm; i++) c->peak_flops = fmax(c->peak_flops, c->gemm[i].rate);
        OS_CHECK(calib_set_meta(c, "peak_source", "best measured GEMM (not an sm_90 device)"));
    }
    snprintf(c->device, sizeof c->device, "%s", info.name);
    snprintf(buf, sizeof buf, "%.0f", info.sm_clock_mhz);
    OS_CHECK(calib_set_meta(c, "sm_clock_mhz", buf));
    snprintf(buf, sizeof buf, "%.0f", info.mem_clock_mhz);
    OS_CHECK(calib_set_meta(c, "mem_clock_mhz", buf));
    snprintf(buf, sizeof buf, "%d", info.sms);
    OS_CHECK(calib_set_meta(c, "sms", buf));
    snprintf(buf, sizeof buf, "%d", info.runtime_version);
    OS_CHECK(calib_set_meta(c, "cuda_runtime", buf));
    snprintf(buf, sizeof buf, "%d", info.driver_version);
    OS_CHECK(calib_set_meta(c, "cuda_driver", buf));
    snprintf(buf, sizeof buf, "%d", info.cublas_version);
    OS_CHECK(calib_set_meta(c, "cublas", buf));
    snprintf(buf, sizeof buf, "%d", info.nccl_version);
    OS_CHECK(calib_set_meta(c, "nccl", buf));
    snprintf(buf, sizeof buf, "%s repeats=%u warmup=%u", m->name, o->repeats, o->warmup);
    OS_CHECK(calib_set_meta(c, "measured_for", buf));
fail:
    for (uint32_t i = 0; i < nev; i++) cudaEventDestroy(ev[i]);
    if (h) cublasDestroy(h);
    if (s) cudaStreamDestroy(s);
    cudaFree(A), cudaFree(C);
    free(scratch), free(ev);
    return st;
}
