/* gpu.c — see gpu.h. The CUDA calls live in device.cu; this file only adds the no-CUDA
 * answer so that every build links and says why there is no device. */
#include "exec/gpu.h"

#include <stdio.h>
#include <string.h>

#ifdef ORCHSIM_HAVE_CUDA
OsStatus exec_cuda_count(int *n, char *why, size_t why_len);   /* device.cu */
OsStatus exec_cuda_info(ExecDeviceInfo *info, int device);     /* device.cu */
#endif

OsStatus exec_gpu_count(int *n, char *why, size_t why_len) {
    *n = 0;
#ifdef ORCHSIM_HAVE_CUDA
    return exec_cuda_count(n, why, why_len);
#else
    if (why && why_len) snprintf(why, why_len, "built without CUDA");
    return os_fail(OS_ERR_NODEV, "orchsim", "GPU backend", "rebuild where CUDA and NCCL are found",
                   "built without CUDA");
#endif
}

OsStatus exec_gpu_info(ExecDeviceInfo *info, int device) {
    memset(info, 0, sizeof *info);
#ifdef ORCHSIM_HAVE_CUDA
    return exec_cuda_info(info, device);
#else
    (void)device;
    return os_fail(OS_ERR_NODEV, "orchsim", "GPU backend", "rebuild where CUDA and NCCL are found",
                   "built without CUDA");
#endif
}
