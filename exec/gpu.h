/* gpu.h — is there a GPU, and what is it: the plain-C face of the CUDA backend.
 * Implements: device count with the reason when there is none, device/library facts for
 *   the calibration file and the resolved-configuration lines.
 * Does not: allocate on the device or pick one (callers run cudaSetDevice via exec_*.cu).
 * Without ORCHSIM_HAVE_CUDA every function returns OS_ERR_NODEV "built without CUDA". */
#ifndef OS_EXEC_GPU_H
#define OS_EXEC_GPU_H

#include <stddef.h>

#include "base/status.h"

/* *n = visible CUDA devices. Any CUDA error (no driver, no device, ...) is OS_ERR_NODEV with
 * the CUDA error string in why (and recorded with os_fail). */
OsStatus exec_gpu_count(int *n, char *why, size_t why_len);

typedef struct {
    char name[128];
    int cc_major, cc_minor, sms;
    double mem_bytes;                 /* total HBM */
    double sm_clock_mhz, mem_clock_mhz;
    int runtime_version, driver_version; /* CUDA, as 12040 = 12.4 */
    int cublas_version, nccl_version;
} ExecDeviceInfo;

OsStatus exec_gpu_info(ExecDeviceInfo *info, int device);

#endif
