/* gpumod.cu — the GPU module's one exported symbol: its table (gpumod.h), the registry of the
 * kernel self-tests (kernels.h) and the one-rank NCCL smoke test. Everything else in the
 * module is hidden (-fvisibility=hidden), so that its functions never bind to the orchsim
 * binary's same-named forwarders. */
#include <stdio.h>
#include <string.h>

#include "exec/check.cuh"
#include "exec/kernels/common.cuh"

extern "C" {
#include "exec/gpumod.h"
}

#ifndef ORCHSIM_CUDA_VERSION
#define ORCHSIM_CUDA_VERSION "?"
#endif

/* device.cu, calibrate_gpu.cu */
OsStatus gm_count(int *n, char *why, size_t why_len);
OsStatus gm_info(ExecDeviceInfo *info, int device);
OsStatus gm_libs(ExecGpuLibs *out);
OsStatus gm_cal_open(void **ctx, const ExecCalNeeds *need);
OsStatus gm_cal_time(void *ctx, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec);
void gm_cal_close(void *ctx);

extern "C" {
ExecSelftestFn exec_st_rmsnorm, exec_st_softmax, exec_st_act, exec_st_attention, exec_st_xent, exec_st_rows,
    exec_st_step, exec_st_attn_backward, exec_st_flash_forward, exec_st_flash_backward, exec_st_flash_twin;
}

/* one row per kernel file (STYLE.md habit 6: every fast path beside its slow twin) */
static const ExecSelftest SELFTESTS[] = {
    {"rmsnorm", exec_st_rmsnorm},             /* exec/kernels/rmsnorm.cu */
    {"softmax", exec_st_softmax},             /* exec/kernels/softmax.cu, causal and not */
    {"act", exec_st_act},                     /* exec/kernels/act.cu: GELU, SwiGLU */
    {"xent", exec_st_xent},                   /* exec/kernels/xent.cu: fused loss + dlogits */
    {"rows", exec_st_rows},                   /* exec/kernels/rows.cu: segment copies, embedding */
    {"step", exec_st_step},                   /* exec/kernels/step.cu: inputs, ids, labels, text rows */
    {"attn_cublas", exec_st_attention},       /* exec/attn.cu: the slow twin, cuBLAS QK^T, softmax, PV */
    {"attn_cublas_backward", exec_st_attn_backward},
    {"flash_forward", exec_st_flash_forward}, /* exec/flash.cu vs float64: odd lengths, length 1, GQA */
    {"flash_backward", exec_st_flash_backward},
    {"flash_vs_cublas", exec_st_flash_twin},  /* the fused kernels against the slow twin */
};
static int st_count(void) { return (int)(sizeof SELFTESTS / sizeof SELFTESTS[0]); }
static const ExecSelftest *st_at(int i) { return i >= 0 && i < st_count() ? &SELFTESTS[i] : NULL; }

/* One rank: a communicator of 1, an all-reduce of known values (the sum of one rank is the
 * input), the asynchronous error polled, destroyed. */
static OsStatus nccl_smoke(double *worst, char *why, size_t why_len) {
    OsStatus st = OS_OK;
    const ExecNccl *N = NULL;
    ncclUniqueId id;
    ncclComm_t comm = NULL;
    cudaStream_t s = NULL;
    float *d = NULL, h[1024];
    int n = 0, aborted = 0;
    ncclResult_t ar = ncclSuccess;
    *worst = INFINITY;
    if (gm_count(&n, why, why_len) != OS_OK) return OS_ERR_NODEV;
    if (exec_nccl(&N) != OS_OK) {
        if (why && why_len) snprintf(why, why_len, "%s", os_last_error());
        return OS_ERR_NODEV;
    }
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc(&d, sizeof h));
    for (int i = 0; i < 1024; i++) h[i] = exec_test_value(31, (uint64_t)i);
    CUDA_CHECK(cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice));
    NCCL_CHECK(N->GetUniqueId(&id));
    {
        ncclResult_t r = N->CommInitRank(&comm, 1, id, 0);
        if (r != ncclSuccess) {
            /* NCCL could not start here (no shm, no network plug-in...): a skip with its reason */
            if (why && why_len)
                snprintf(why, why_len, "ncclCommInitRank: %s%s%s", exec_nccl_strerror(r), N->GetLastError ? ": " : "",
                         N->GetLastError ? N->GetLastError(NULL) : "");
            comm = NULL;
            st = OS_ERR_NODEV;
            goto fail;
        }
    }
    NCCL_CHECK(N->AllReduce(d, d, 1024, ncclFloat, ncclSum, comm, s));
    for (;;) {
        cudaError_t e = cudaStreamQuery(s);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady) CUDA_CHECK(e);
        NCCL_CHECK(N->CommGetAsyncError(comm, &ar));
        if (ar != ncclSuccess && ar != ncclInProgress) {
            aborted = 1;
            OS_FAIL(OS_ERR_NCCL, "nccl", "ncclCommGetAsyncError", NULL, "%s", exec_nccl_strerror(ar));
        }
    }
    {
        float got[1024];
        double ref[1024];
        CUDA_CHECK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
        for (int i = 0; i < 1024; i++) ref[i] = h[i];
        *worst = exec_worst(got, ref, 1024, 0, 0);
    }
fail:
    if (comm) {
        if (aborted || st != OS_OK) (void)N->CommAbort(comm);
        else (void)N->CommDestroy(comm);
    }
    if (d) cudaFree(d);
    if (s) cudaStreamDestroy(s);
    return st;
}

static const char *module_last_error(void) { return os_last_error(); }

static const ExecGpuApi API = {
    EXEC_GPU_ABI,
    (uint32_t)sizeof(ExecGpuApi),
    "CUDA " ORCHSIM_CUDA_VERSION ", static cudart, sm_90, cuBLAS linked, NCCL opened on demand",
    module_last_error,
    gm_count,
    gm_info,
    gm_libs,
    st_count,
    st_at,
    nccl_smoke,
    gm_cal_open,
    gm_cal_time,
    gm_cal_close,
    exec_mllm_create_local,
    exec_mllm_create_nccl,
    exec_nccl_id,
    exec_mllm_destroy,
    exec_mllm_mark_failed,
    exec_mllm_n_local,
    exec_mllm_step,
    exec_mllm_grad_sync,
    exec_mllm_zero_grads,
    exec_mllm_grads,
    exec_mllm_set_attn,
    exec_mllm_set_wait,
    exec_mllm_mem,
};

extern "C" __attribute__((visibility("default"))) const void *orchsim_gpu_module(uint32_t abi) {
    return abi == EXEC_GPU_ABI ? (const void *)&API : (const void *)&API.abi; /* the loader names the mismatch */
}
