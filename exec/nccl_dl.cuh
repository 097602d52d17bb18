/* nccl_dl.cuh — NCCL opened on demand (dlopen "libnccl.so.2") inside the GPU module, so that
 * the module loads, and one rank, calibrate and the kernel self-tests run, where NCCL is not
 * installed or cannot start (issue 10, defect 4).
 * Implements: the table of the NCCL calls exec/ makes, filled once from the library the loader
 *   finds (LD_LIBRARY_PATH first: the nvidia-nccl-cu13 wheel's nvidia/nccl/lib); its path and
 *   version; NCCL_CHECK's error text (ncclGetErrorString, plus ncclGetLastError when the
 *   library has it).
 * Does not: initialise a communicator (mllm.cu, gpumod.cu do). Only for .cu files of exec/. */
#ifndef OS_EXEC_NCCL_DL_CUH
#define OS_EXEC_NCCL_DL_CUH

#include <cuda_runtime.h>
#include <nccl.h>

extern "C" {
#include "base/status.h"
}

typedef struct {
    ncclResult_t (*GetVersion)(int *);
    ncclResult_t (*GetUniqueId)(ncclUniqueId *);
    ncclResult_t (*CommInitRank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*CommDestroy)(ncclComm_t);
    ncclResult_t (*CommAbort)(ncclComm_t);
    ncclResult_t (*CommGetAsyncError)(ncclComm_t, ncclResult_t *);
    const char *(*GetErrorString)(ncclResult_t);
    const char *(*GetLastError)(ncclComm_t); /* NULL before NCCL 2.13 */
    ncclResult_t (*GroupStart)(void);
    ncclResult_t (*GroupEnd)(void);
    ncclResult_t (*Send)(const void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*Recv)(void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*AllReduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*ReduceScatter)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                                  cudaStream_t);
    ncclResult_t (*AllGather)(const void *, void *, size_t, ncclDataType_t, ncclComm_t, cudaStream_t);
    int version;
    char path[1024];
} ExecNccl;

/* The table (loaded on the first call; later calls return the first result). Error: the
 * library's name, dlerror's words and how to point the loader at the wheel. */
OsStatus exec_nccl(const ExecNccl **out);
/* The text of an NCCL result for error lines ("unloaded" when NCCL never loaded). */
const char *exec_nccl_strerror(ncclResult_t r);

#endif
