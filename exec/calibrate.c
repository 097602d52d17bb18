/* calibrate.c — see calibrate.h. The measuring lives in calibrate_gpu.cu; this file gives the
 * defaults and the no-CUDA answer. */
#include "exec/calibrate.h"

#include <string.h>

#ifdef ORCHSIM_HAVE_CUDA
OsStatus exec_cuda_calibrate(Calib *c, const ModelSpec *m, const ExecCalibOptions *o);
#endif

void exec_calib_options_init(ExecCalibOptions *o) {
    memset(o, 0, sizeof *o);
    o->repeats = 20;
    o->warmup = 5;
    o->min_tokens = 256;
    o->max_tokens = 32768;
    o->min_len = 64;
    o->max_len = 16384;
}

OsStatus exec_calibrate(Calib *c, const ModelSpec *m, const ExecCalibOptions *o) {
    memset(c, 0, sizeof *c);
#ifdef ORCHSIM_HAVE_CUDA
    return exec_cuda_calibrate(c, m, o);
#else
    (void)m, (void)o;
    return os_fail(OS_ERR_NODEV, "calibrate", NULL, "rebuild where CUDA and NCCL are found",
                   "no CUDA device (built without CUDA)");
#endif
}
