/* gpu.h — is there a GPU, and what is it: the plain-C face of the GPU module.
 * Implements: device count with the reason when there is none, device facts for the
 *   calibration file and the resolved-configuration lines, and the libraries the module
 *   found (versions and paths, for `orchsim doctor`).
 * Does not: allocate on the device or pick one. Every call loads the GPU module on demand
 *   (gpumod.h); when it cannot be loaded the call fails with the module's error (the file
 *   and the missing library named), which callers tell apart from "no device" by
 *   exec_gpu_module_error. */
#ifndef OS_EXEC_GPU_H
#define OS_EXEC_GPU_H

#include <stddef.h>

#include "base/status.h"

/* *n = visible CUDA devices. No module, no driver, no device, a driver older than the
 * runtime: OS_ERR_NODEV with the reason in why (and recorded with os_fail). */
OsStatus exec_gpu_count(int *n, char *why, size_t why_len);

typedef struct {
    char name[128];
    int cc_major, cc_minor, sms;
    double mem_bytes;                 /* total HBM */
    double sm_clock_mhz, mem_clock_mhz;
    int runtime_version, driver_version; /* CUDA, as 13000 = 13.0 */
    int cublas_version, nccl_version;    /* nccl_version 0: NCCL not loadable */
} ExecDeviceInfo;

OsStatus exec_gpu_info(ExecDeviceInfo *info, int device);

/* What the module found, without touching a device (doctor). Paths are "" when not loaded. */
typedef struct {
    char module[1024];        /* the module file */
    char build[256];          /* how it was built (CUDA version, cudart static, arch) */
    int runtime_version;      /* the static cudart's CUDA version */
    int driver_version;       /* 0: no driver (driver_err says why) */
    char driver_err[256];
    char libcuda[1024];
    int cublas_version;       /* major*10000 + minor*100 + patch */
    int cublas_cuda;          /* the CUDA version cuBLAS was built for (cublasGetCudartVersion) */
    char cublas[1024], cublaslt[1024];
    int nccl_version;         /* 0: not loadable (nccl_err says why) */
    char nccl[1024];
    char nccl_err[512];
} ExecGpuLibs;

OsStatus exec_gpu_libs(ExecGpuLibs *out);

/* 1 when the last failure of the module's loader is recorded (the module or one of its
 * libraries could not be loaded), as opposed to "loaded, but no device". */
int exec_gpu_module_error(void);

#endif
