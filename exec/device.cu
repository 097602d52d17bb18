/* device.cu — CUDA side of gpu.h: device count and facts. */
#include <stdio.h>
#include <string.h>

#include "exec/check.cuh"

extern "C" {
#include "exec/gpu.h"
OsStatus exec_cuda_count(int *n, char *why, size_t why_len);
OsStatus exec_cuda_info(ExecDeviceInfo *info, int device);
}

extern "C" OsStatus exec_cuda_count(int *n, char *why, size_t why_len) {
    int c = 0;
    cudaError_t e = cudaGetDeviceCount(&c);
    *n = 0;
    if (e != cudaSuccess || c <= 0) {
        /* no driver, no device, a broken install: all mean "no device" to orchsim */
        const char *msg = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device visible";
        if (why && why_len) snprintf(why, why_len, "%s", msg);
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return os_fail(OS_ERR_NODEV, "cuda", "cudaGetDeviceCount", "run on a machine with an NVIDIA GPU",
                       "%s", msg);
    }
    *n = c;
    if (why && why_len) why[0] = '\0';
    return OS_OK;
}

extern "C" OsStatus exec_cuda_info(ExecDeviceInfo *info, int device) {
    OsStatus st = OS_OK;
    cudaDeviceProp p;
    int clk = 0, mclk = 0;
    cublasHandle_t h = NULL;
    memset(info, 0, sizeof *info);
    CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    snprintf(info->name, sizeof info->name, "%.127s", p.name);
    info->cc_major = p.major, info->cc_minor = p.minor, info->sms = p.multiProcessorCount;
    info->mem_bytes = (double)p.totalGlobalMem;
    /* clockRate/memoryClockRate left cudaDeviceProp in CUDA 13: ask the attributes */
    CUDA_CHECK(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, device));
    info->sm_clock_mhz = clk / 1000.0, info->mem_clock_mhz = mclk / 1000.0;
    CUDA_CHECK(cudaRuntimeGetVersion(&info->runtime_version));
    CUDA_CHECK(cudaDriverGetVersion(&info->driver_version));
    CUDA_CHECK(cudaSetDevice(device));
    CUBLAS_CHECK(cublasCreate(&h));
    CUBLAS_CHECK(cublasGetVersion(h, &info->cublas_version));
    NCCL_CHECK(ncclGetVersion(&info->nccl_version));
fail:
    if (h) cublasDestroy(h);
    return st;
}
