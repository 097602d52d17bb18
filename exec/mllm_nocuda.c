/* mllm_nocuda.c — the answer of mllm.h in a build without CUDA: every call is OS_ERR_NODEV,
 * so the no-GPU path of validate and the tests link and say why. */
#include "exec/mllm.h"

#ifndef ORCHSIM_HAVE_CUDA
static OsStatus nodev(void) {
    return os_fail(OS_ERR_NODEV, "orchsim", "GPU backend", "rebuild where CUDA and NCCL are found",
                   "built without CUDA");
}
OsStatus exec_mllm_create_local(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, int device) {
    (void)m, (void)seed, (void)D, (void)device;
    *out = NULL;
    return nodev();
}
OsStatus exec_mllm_create_nccl(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, uint32_t rank,
                               int device, const void *id, size_t id_len) {
    (void)m, (void)seed, (void)D, (void)rank, (void)device, (void)id, (void)id_len;
    *out = NULL;
    return nodev();
}
OsStatus exec_nccl_id(void *blob, size_t cap, size_t *len) {
    (void)blob, (void)cap;
    *len = 0;
    return nodev();
}
void exec_mllm_destroy(ExecMllm *x) { (void)x; }
void exec_mllm_mark_failed(ExecMllm *x) { (void)x; }
uint32_t exec_mllm_n_local(const ExecMllm *x) { return (void)x, 0; }
OsStatus exec_mllm_step(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id, uint64_t data_seed,
                        double label_norm, ExecRankTimes *t) {
    (void)x, (void)sp, (void)ex_id, (void)data_seed, (void)label_norm, (void)t;
    return nodev();
}
OsStatus exec_mllm_grad_sync(ExecMllm *x, int fsdp, double *secs) {
    (void)x, (void)fsdp, (void)secs;
    return nodev();
}
OsStatus exec_mllm_zero_grads(ExecMllm *x) { return (void)x, nodev(); }
OsStatus exec_mllm_grads(ExecMllm *x, uint32_t module, float *out, uint64_t n) {
    (void)x, (void)module, (void)out, (void)n;
    return nodev();
}
#else
typedef int exec_mllm_nocuda_unused; /* ISO C: a translation unit must declare something */
#endif
