/* check.cuh — the CUDA/cuBLAS/NCCL CHECK macros of exec/ (STYLE.md habit 3). Private to the
 * .cu files of exec/: each records os_fail(OS_ERR_<LIB>, ...) naming the call, the library's
 * own message and file:line, sets `st` and jumps to the function's one `fail:` label.
 * NCCL is loaded on demand (nccl_dl.cuh): its calls go through that table.
 * C++ note: a goto may not jump over an initialised declaration, so .cu functions declare
 * their locals before the first CHECK. */
#ifndef OS_EXEC_CHECK_CUH
#define OS_EXEC_CHECK_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include "exec/nccl_dl.cuh"

extern "C" {
#include "base/status.h"
}

#define CUDA_CHECK(call)                                                                    \
    do {                                                                                    \
        cudaError_t e_ = (call);                                                            \
        if (e_ != cudaSuccess) {                                                            \
            st = os_fail(OS_ERR_CUDA, "cuda", #call, "check the driver and the device",     \
                         "%s (%s:%d)", cudaGetErrorString(e_), __FILE__, __LINE__);         \
            goto fail;                                                                      \
        }                                                                                   \
    } while (0)

#define CUBLAS_CHECK(call)                                                                  \
    do {                                                                                    \
        cublasStatus_t b_ = (call);                                                         \
        if (b_ != CUBLAS_STATUS_SUCCESS) {                                                  \
            st = os_fail(OS_ERR_CUBLAS, "cublas", #call, NULL, "%s (%s:%d)",                \
                         cublasGetStatusString(b_), __FILE__, __LINE__);                    \
            goto fail;                                                                      \
        }                                                                                   \
    } while (0)

#define NCCL_CHECK(call)                                                                    \
    do {                                                                                    \
        ncclResult_t n_ = (call);                                                           \
        if (n_ != ncclSuccess) {                                                            \
            st = os_fail(OS_ERR_NCCL, "nccl", #call, "NCCL_DEBUG=WARN shows NCCL's reason", \
                         "%s (%s:%d)", exec_nccl_strerror(n_), __FILE__, __LINE__);         \
            goto fail;                                                                      \
        }                                                                                   \
    } while (0)

/* After every kernel launch (STYLE.md habit 3). */
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

#endif
