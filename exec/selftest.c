/* selftest.c — the registry of GPU kernel self-tests (kernels.h): one row per kernel file.
 * Empty without CUDA, so tests/test_exec_gpu.c still builds and skips. */
#include "exec/kernels.h"

#include <stddef.h>

#ifdef ORCHSIM_HAVE_CUDA
ExecSelftestFn exec_st_rmsnorm, exec_st_softmax, exec_st_act, exec_st_attention, exec_st_xent, exec_st_rows,
    exec_st_step, exec_st_attn_backward;
static const ExecSelftest SELFTESTS[] = {
    {"rmsnorm", exec_st_rmsnorm},     /* exec/kernels/rmsnorm.cu */
    {"softmax", exec_st_softmax},     /* exec/kernels/softmax.cu, causal and not */
    {"act", exec_st_act},             /* exec/kernels/act.cu: GELU, SwiGLU */
    {"attention", exec_st_attention}, /* exec/attn.cu: cuBLAS QK^T, softmax, PV with GQA */
    {"xent", exec_st_xent},           /* exec/kernels/xent.cu: fused loss + dlogits */
    {"rows", exec_st_rows},           /* exec/kernels/rows.cu: segment copies, embedding */
    {"step", exec_st_step},           /* exec/kernels/step.cu: inputs, ids, labels, text rows */
    {"attn_backward", exec_st_attn_backward}, /* exec/attn.cu: backward vs double reference */
};
int exec_selftest_count(void) { return (int)(sizeof SELFTESTS / sizeof SELFTESTS[0]); }
const ExecSelftest *exec_selftest_at(int i) {
    return i >= 0 && i < exec_selftest_count() ? &SELFTESTS[i] : NULL;
}
#else
int exec_selftest_count(void) { return 0; }
const ExecSelftest *exec_selftest_at(int i) {
    (void)i;
    return NULL;
}
#endif
