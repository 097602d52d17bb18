/* gpu_host.c — the orchsim binary's side of the GPU module: load it on first use (gpumod.h)
 * and forward gpu.h, kernels.h and mllm.h to its table. Every forwarder turns "the module
 * cannot be loaded" into OS_ERR_NODEV with the loader's error, and copies the module's error
 * text when a call fails and the binary's own record is empty (a host that does not export
 * its symbols: module.h). */
#include <stdio.h>
#include <string.h>

#include "exec/gpumod.h"
#include "exec/module.h"

#ifndef ORCHSIM_GPU_MODULE_DIR
#define ORCHSIM_GPU_MODULE_DIR ""
#endif

static ExecModule g_mod;

#ifdef ORCHSIM_HAVE_CUDA
#define ABSENT NULL
#else
#define ABSENT "this build has no GPU module (configured without a CUDA toolkit, nvcc or nccl.h): rebuild where CUDA is"
#endif

static const ExecModuleSpec SPEC = {
    "GPU module", EXEC_GPU_FILE, "ORCHSIM_GPU_MODULE", EXEC_GPU_ENTRY, EXEC_GPU_ABI, (uint32_t)sizeof(ExecGpuApi),
    ORCHSIM_GPU_MODULE_DIR, EXEC_GPU_LIB_HINT, ABSENT,
};

OsStatus exec_gpu_api(const ExecGpuApi **out) {
    OsStatus st = exec_module_load(&g_mod, &SPEC);
    *out = st == OS_OK ? (const ExecGpuApi *)g_mod.api : NULL;
    return st;
}

const char *exec_gpu_module_path(void) { return g_mod.st == OS_OK && g_mod.tried ? g_mod.path : ""; }

int exec_gpu_module_error(void) { return g_mod.tried && g_mod.st != OS_OK; }

/* A failed call's error, recorded here when the module kept it in its own record. */
static OsStatus relay(const ExecGpuApi *g, OsStatus st) {
    if (st != OS_OK && st != OS_DONE && !os_has_error())
        return os_fail(st, "GPU module", NULL, NULL, "%s", g->last_error ? g->last_error() : "failed");
    return st;
}

/* ---- gpu.h ------------------------------------------------------------------------------- */

OsStatus exec_gpu_count(int *n, char *why, size_t why_len) {
    const ExecGpuApi *g = NULL;
    *n = 0;
    if (exec_gpu_api(&g) != OS_OK) {
        /* the loader's whole line: file, what failed, hint */
        if (why && why_len) snprintf(why, why_len, "%s", os_has_error() ? os_last_error() : g_mod.err);
        return OS_ERR_NODEV;
    }
    OsStatus st = g->count(n, why, why_len);
    if (st != OS_OK && why && why_len && !why[0]) snprintf(why, why_len, "%s", g->last_error());
    return relay(g, st);
}

OsStatus exec_gpu_info(ExecDeviceInfo *info, int device) {
    const ExecGpuApi *g = NULL;
    memset(info, 0, sizeof *info);
    if (exec_gpu_api(&g) != OS_OK) return OS_ERR_NODEV;
    return relay(g, g->info(info, device));
}

OsStatus exec_gpu_libs(ExecGpuLibs *out) {
    const ExecGpuApi *g = NULL;
    memset(out, 0, sizeof *out);
    if (exec_gpu_api(&g) != OS_OK) return OS_ERR_NODEV;
    OsStatus st = relay(g, g->libs(out));
    snprintf(out->module, sizeof out->module, "%.1000s", g_mod.path);
    snprintf(out->build, sizeof out->build, "%s", g->build ? g->build : "");
    return st;
}

/* ---- kernels.h --------------------------------------------------------------------------- */

int exec_selftest_count(void) {
    const ExecGpuApi *g = NULL;
    if (exec_gpu_api(&g) != OS_OK) {
        os_clear_error();
        return 0;
    }
    return g->selftest_count();
}

const ExecSelftest *exec_selftest_at(int i) {
    const ExecGpuApi *g = NULL;
    if (exec_gpu_api(&g) != OS_OK) {
        os_clear_error();
        return NULL;
    }
    return g->selftest_at(i);
}

/* ---- mllm.h ------------------------------------------------------------------------------ */

#define API_OR(fail_value)                           \
    const ExecGpuApi *g = NULL;                      \
    if (exec_gpu_api(&g) != OS_OK) return fail_value

OsStatus exec_mllm_create_local(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, int device) {
    *out = NULL;
    API_OR(OS_ERR_NODEV);
    return relay(g, g->mllm_create_local(out, m, seed, D, device));
}

OsStatus exec_mllm_create_nccl(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, uint32_t rank,
                               int device, const void *id, size_t id_len) {
    *out = NULL;
    API_OR(OS_ERR_NODEV);
    return relay(g, g->mllm_create_nccl(out, m, seed, D, rank, device, id, id_len));
}

OsStatus exec_nccl_id(void *blob, size_t cap, size_t *len) {
    *len = 0;
    API_OR(OS_ERR_NODEV);
    return relay(g, g->nccl_id(blob, cap, len));
}

/* An executor exists only where the module loaded: these need no error path. */
void exec_mllm_destroy(ExecMllm *x) {
    if (!x || !g_mod.api) return;
    ((const ExecGpuApi *)g_mod.api)->mllm_destroy(x);
}
void exec_mllm_mark_failed(ExecMllm *x) {
    if (x && g_mod.api) ((const ExecGpuApi *)g_mod.api)->mllm_mark_failed(x);
}
uint32_t exec_mllm_n_local(const ExecMllm *x) {
    return x && g_mod.api ? ((const ExecGpuApi *)g_mod.api)->mllm_n_local(x) : 0;
}
void exec_mllm_set_wait(ExecMllm *x, double seconds) {
    if (x && g_mod.api) ((const ExecGpuApi *)g_mod.api)->mllm_set_wait(x, seconds);
}
void exec_mllm_mem(const ExecMllm *x, ExecMemCount *out) {
    memset(out, 0, sizeof *out);
    if (x && g_mod.api) ((const ExecGpuApi *)g_mod.api)->mllm_mem(x, out);
}

OsStatus exec_mllm_step(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id, uint64_t data_seed,
                        double label_norm, ExecRankTimes *t) {
    API_OR(OS_ERR_NODEV);
    return relay(g, g->mllm_step(x, sp, ex_id, data_seed, label_norm, t));
}
OsStatus exec_mllm_grad_sync(ExecMllm *x, int fsdp, double *secs) {
    *secs = 0;
    API_OR(OS_ERR_NODEV);
    return relay(g, g->mllm_grad_sync(x, fsdp, secs));
}
OsStatus exec_mllm_zero_grads(ExecMllm *x) {
    API_OR(OS_ERR_NODEV);
    return relay(g, g->mllm_zero_grads(x));
}
OsStatus exec_mllm_grads(ExecMllm *x, uint32_t module, float *out, uint64_t n) {
    API_OR(OS_ERR_NODEV);
    return relay(g, g->mllm_grads(x, module, out, n));
}
OsStatus exec_mllm_set_attn(ExecMllm *x, ExecAttnImpl impl) {
    API_OR(OS_ERR_NODEV);
    return relay(g, g->mllm_set_attn(x, impl));
}
