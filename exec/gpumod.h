/* gpumod.h — the interface of the GPU module liborchsim_gpu.so: one table of C function
 * pointers, so that the orchsim binary links no CUDA, cuBLAS or NCCL library and loads them
 * only for calibrate, validate, selftest and doctor (DESIGN.md §6).
 * Implements: the table (ABI EXEC_GPU_ABI) and exec_gpu_api, which loads the module once
 *   (exec/module.h: the binary's folder, <bin>/../lib/orchsim, the build tree, or
 *   $ORCHSIM_GPU_MODULE) and hands out the table; the module's own libraries are cuBLAS
 *   (libcublas.so.13 + libcublasLt.so.13, needed to load it) and the CUDA driver (libcuda.so.1,
 *   through the static cudart); NCCL (libnccl.so.2) is opened by the module only when a
 *   communicator is made, so one rank and every self-test but the NCCL one run without it.
 * Does not: wrap the calls (gpu.h, mllm.h, kernels.h and calibrate.h do: their plain-C
 *   functions forward here and turn "no module" into their own errors).
 * Adding a call: append a field (never reorder), bump EXEC_GPU_ABI, rebuild both. */
#ifndef OS_EXEC_GPUMOD_H
#define OS_EXEC_GPUMOD_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "exec/calibrate.h"
#include "exec/gpu.h"
#include "exec/kernels.h"
#include "exec/memplan.h"
#include "exec/mllm.h"

#define EXEC_GPU_ABI 1
#define EXEC_GPU_ENTRY "orchsim_gpu_module"
#define EXEC_GPU_FILE "liborchsim_gpu.so"
/* How to make the module's libraries findable when they come as pip wheels. */
#define EXEC_GPU_LIB_HINT                                                                          \
    "point the loader at the pip wheels: export LD_LIBRARY_PATH=$SITE/nvidia/cu13/lib:"            \
    "$SITE/nvidia/nccl/lib:$LD_LIBRARY_PATH, SITE from python3 -c 'import site; "                  \
    "print(site.getsitepackages()[0])' (CUDA 12 wheels: nvidia/cublas/lib); gpu-bundle/run.sh "    \
    "finds them itself"

typedef struct {
    uint32_t abi, size; /* ExecModuleHead */
    const char *build;  /* "CUDA 13.0.88, static cudart, sm_90" */
    const char *(*last_error)(void); /* the module's view of the error record */
    /* devices and libraries */
    OsStatus (*count)(int *n, char *why, size_t why_len);
    OsStatus (*info)(ExecDeviceInfo *info, int device);
    OsStatus (*libs)(ExecGpuLibs *out);
    /* kernel self-tests (kernels.h) */
    int (*selftest_count)(void);
    const ExecSelftest *(*selftest_at)(int i);
    /* one-rank NCCL communicator: init, an all-reduce checked, async error polled, destroy.
     * OS_ERR_NODEV with why filled when NCCL cannot be loaded or started (a skip). */
    OsStatus (*nccl_smoke)(double *worst, char *why, size_t why_len);
    /* calibrate's timer (calibrate.h) on GPU 0 */
    OsStatus (*cal_open)(void **ctx, const ExecCalNeeds *need);
    OsStatus (*cal_time)(void *ctx, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec);
    void (*cal_close)(void *ctx);
    /* the step executor (mllm.h, same arguments) */
    OsStatus (*mllm_create_local)(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, int device);
    OsStatus (*mllm_create_nccl)(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, uint32_t rank,
                                 int device, const void *id, size_t id_len);
    OsStatus (*nccl_id)(void *blob, size_t cap, size_t *len);
    void (*mllm_destroy)(ExecMllm *x);
    void (*mllm_mark_failed)(ExecMllm *x);
    uint32_t (*mllm_n_local)(const ExecMllm *x);
    OsStatus (*mllm_step)(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id, uint64_t data_seed,
                          double label_norm, ExecRankTimes *t);
    OsStatus (*mllm_grad_sync)(ExecMllm *x, int fsdp, double *secs);
    OsStatus (*mllm_zero_grads)(ExecMllm *x);
    OsStatus (*mllm_grads)(ExecMllm *x, uint32_t module, float *out, uint64_t n);
    OsStatus (*mllm_set_attn)(ExecMllm *x, ExecAttnImpl impl);
    void (*mllm_set_wait)(ExecMllm *x, double seconds);
    void (*mllm_mem)(const ExecMllm *x, ExecMemCount *out);
} ExecGpuApi;

/* The loaded module's table. Errors (recorded): the module file not found, dlopen's own words
 * for a missing library (with how to point the loader at the pip wheels), a wrong ABI. */
OsStatus exec_gpu_api(const ExecGpuApi **out);
/* The module's path ("" until loaded). */
const char *exec_gpu_module_path(void);

#endif
