/* gpu_module.c — a stand-in GPU module for CI (no GPU, no CUDA): the real table of
 * exec/gpumod.h with fake devices, kernels, executor and timer, so that calibrate, validate,
 * selftest and doctor run end to end through the real loader and the real plain-C code.
 * Environment: FAKE_GPU_DEVICES (default 1), FAKE_GPU_FAIL_KERNEL=1 (one kernel self-test
 * fails), FAKE_GPU_NCCL_LOG=FILE (every NCCL entry appends a line: tests check that one rank
 * never touches NCCL). The fake executor's times are deterministic functions of the plan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/gpumod.h"

struct ExecMllm {
    uint32_t D, n_local;
    ExecMemCount mem;
};

static int env_int(const char *n, int d) {
    const char *s = getenv(n);
    return s && *s ? atoi(s) : d;
}

static void nccl_log(const char *what) {
    const char *f = getenv("FAKE_GPU_NCCL_LOG");
    if (!f || !*f) return;
    FILE *fp = fopen(f, "a");
    if (fp) fprintf(fp, "%s\n", what), fclose(fp);
}

static OsStatus f_count(int *n, char *why, size_t len) {
    *n = env_int("FAKE_GPU_DEVICES", 1);
    if (*n <= 0) {
        if (why && len) snprintf(why, len, "fake: no device");
        *n = 0;
        return os_fail(OS_ERR_NODEV, "fake", "count", NULL, "fake: no device");
    }
    if (why && len) why[0] = '\0';
    return OS_OK;
}

static OsStatus f_info(ExecDeviceInfo *i, int device) {
    memset(i, 0, sizeof *i);
    snprintf(i->name, sizeof i->name, "Fake H200 %d", device);
    i->cc_major = 9, i->cc_minor = 0, i->sms = 132, i->mem_bytes = 141e9;
    i->sm_clock_mhz = 1980, i->mem_clock_mhz = 3201;
    i->runtime_version = 13000, i->driver_version = 13000, i->cublas_version = 130100, i->nccl_version = 22809;
    return OS_OK;
}

static OsStatus f_libs(ExecGpuLibs *o) {
    memset(o, 0, sizeof *o);
    o->runtime_version = o->driver_version = 13000;
    o->cublas_version = 130100, o->cublas_cuda = 13000, o->nccl_version = 22809;
    snprintf(o->cublas, sizeof o->cublas, "/fake/libcublas.so.13");
    snprintf(o->cublaslt, sizeof o->cublaslt, "/fake/libcublasLt.so.13");
    snprintf(o->nccl, sizeof o->nccl, "/fake/libnccl.so.2");
    snprintf(o->libcuda, sizeof o->libcuda, "/fake/libcuda.so.1");
    return OS_OK;
}

static OsStatus st_pass(double *w) { return *w = 0.25, OS_OK; }
static OsStatus st_maybe(double *w) { return *w = env_int("FAKE_GPU_FAIL_KERNEL", 0) ? 7.0 : 0.5, OS_OK; }
static const ExecSelftest TESTS[] = {{"fake_pass", st_pass}, {"fake_maybe", st_maybe}};
static int f_st_count(void) { return 2; }
static const ExecSelftest *f_st_at(int i) { return i >= 0 && i < 2 ? &TESTS[i] : NULL; }

static OsStatus f_nccl_smoke(double *worst, char *why, size_t len) {
    nccl_log("smoke");
    *worst = 0;
    (void)why, (void)len;
    return OS_OK;
}

/* a timer whose rates saturate with size, with +-25% noise that sometimes makes a bigger GEMM
 * faster than a smaller one (what calib_validate must clamp, never refuse) */
static OsStatus f_cal_open(void **ctx, const ExecCalNeeds *need) {
    (void)need;
    *ctx = malloc(1);
    return *ctx ? OS_OK : os_fail(OS_ERR_NOMEM, "fake", "cal", NULL, "no memory");
}
static double noise(double a, double b, double c) {
    uint64_t x = (uint64_t)(a * 1315423911.0 + b * 2654435761.0 + c * 97.0);
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    return 0.75 + 0.5 * (double)(x % 1000) / 1000.0;
}
static OsStatus f_cal_time(void *ctx, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec) {
    (void)ctx, (void)repeats, (void)warmup;
    switch (w->kind) {
    case EXEC_CW_GEMM:
    case EXEC_CW_GEMM_BESIDE: {
        double f = 2.0 * w->m * w->n * w->k, size = cbrt((double)w->m * w->n * w->k);
        double rate = 700e12 * size / (size + 2000.0) * noise(w->m, w->n, w->k);
        *sec = f / rate + 4e-6;
        if (w->kind == EXEC_CW_GEMM_BESIDE) *sec *= 1.12;
        break;
    }
    case EXEC_CW_ATTN: {
        double f = 4.0 * w->len * (double)w->len * w->hd * w->nh * (w->causal ? 0.5 : 1) * (w->dir ? 2.5 : 1);
        *sec = f / (300e12 * w->len / (w->len + 512.0)) + 6e-6;
        break;
    }
    case EXEC_CW_COPY: *sec = 2 * w->bytes / 4.2e12; break;
    case EXEC_CW_LAUNCH: *sec = 2.5e-6; break;
    }
    return OS_OK;
}
static void f_cal_close(void *ctx) { free(ctx); }

static OsStatus f_create_local(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, int device) {
    (void)m, (void)seed, (void)device;
    *out = calloc(1, sizeof **out);
    if (!*out) return os_fail(OS_ERR_NOMEM, "fake", "mllm", NULL, "no memory");
    (*out)->D = D, (*out)->n_local = D;
    return OS_OK;
}
static OsStatus f_create_nccl(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, uint32_t rank,
                              int device, const void *id, size_t id_len) {
    (void)m, (void)seed, (void)device, (void)id, (void)id_len;
    nccl_log("create_nccl");
    *out = calloc(1, sizeof **out);
    if (!*out) return os_fail(OS_ERR_NOMEM, "fake", "mllm", NULL, "no memory");
    (*out)->D = D, (*out)->n_local = 1;
    (void)rank;
    return OS_OK;
}
static OsStatus f_nccl_id(void *blob, size_t cap, size_t *len) {
    nccl_log("nccl_id");
    if (cap < 128) return os_fail(OS_ERR_INTERNAL, "fake", "id", NULL, "room");
    memset(blob, 7, 128);
    *len = 128;
    return OS_OK;
}
static void f_destroy(ExecMllm *x) { free(x); }
static void f_mark_failed(ExecMllm *x) { (void)x; }
static uint32_t f_n_local(const ExecMllm *x) { return x->n_local; }
static OsStatus f_step(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id, uint64_t seed, double norm,
                       ExecRankTimes *t) {
    (void)ex_id, (void)seed;
    for (uint32_t k = 0; k < x->n_local; k++) {
        memset(&t[k], 0, sizeof t[k]);
        for (uint32_t p = 0; p <= sp->E; p++) t[k].fwd[p] = 1e-3 * (p + 1), t[k].bwd[p] = 2e-3 * (p + 1);
        t[k].step = 0.05;
        t[k].loss = 5.5 / (double)x->D;
    }
    (void)norm;
    return OS_OK;
}
static OsStatus f_sync(ExecMllm *x, int fsdp, double *secs) {
    (void)fsdp;
    *secs = x->n_local == x->D ? 0 : 1e-3;
    return OS_OK;
}
static OsStatus f_zero(ExecMllm *x) { return (void)x, OS_OK; }
static OsStatus f_grads(ExecMllm *x, uint32_t module, float *out, uint64_t n) {
    (void)x, (void)module;
    memset(out, 0, n * sizeof *out);
    return OS_OK;
}
static OsStatus f_set_attn(ExecMllm *x, ExecAttnImpl impl) { return (void)x, (void)impl, OS_OK; }
static void f_set_wait(ExecMllm *x, double s) { (void)x, (void)s; }
static void f_mem(const ExecMllm *x, ExecMemCount *o) { *o = x->mem; }

static const char *f_last(void) { return os_last_error(); }

static const ExecGpuApi API = {
    EXEC_GPU_ABI, (uint32_t)sizeof(ExecGpuApi), "fake GPU module (exec/fake/gpu_module.c)", f_last, f_count, f_info,
    f_libs, f_st_count, f_st_at, f_nccl_smoke, f_cal_open, f_cal_time, f_cal_close, f_create_local, f_create_nccl,
    f_nccl_id, f_destroy, f_mark_failed, f_n_local, f_step, f_sync, f_zero, f_grads, f_set_attn, f_set_wait, f_mem,
};

const void *orchsim_gpu_module(uint32_t abi) {
    (void)abi;
    return &API;
}
