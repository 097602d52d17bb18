/* test_exec_mllm.c — the GPU step executor (exec/mllm.cu) against its slow twin (exec/ref.c),
 * through the same function `orchsim selftest` runs (exec/selftest.h): one step's loss and
 * every module's gradients on the `tiny` preset (one encoder padded with pad_to), within bf16
 * tolerance, with the fused attention and with its cuBLAS twin; the same global batch under
 * `none`, `post` and `post-node` (4 ranks, 2 per node, LOCAL mode) equal to each other and to
 * the reference; and the executor's own allocator count equal to validate's estimate
 * (exec/memplan.h). Skipped, visibly, without a CUDA device. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exec/gpu.h"
#include "exec/mllm.h"
#include "exec/selftest.h"
#include "sim/model.h"

static void need_gpu(void) {
    int n = 0;
    char why[256] = "";
    OsStatus st = exec_gpu_count(&n, why, sizeof why);
    os_clear_error();
    if (st != OS_OK || n <= 0) cr_skip_test("no CUDA device: %s", why);
}

Test(exec_mllm, one_rank_matches_reference_fused_and_twin, .timeout = 120) {
    need_gpu();
    const char *p[] = {"none"};
    for (int impl = 0; impl < 2; impl++) {
        ExecExecCheck r;
        cr_assert_eq(exec_selftest_executor(&r, 1, p, 1, (ExecAttnImpl)impl), OS_OK, "%s", os_last_error());
        cr_assert(r.loss_rel <= 2e-2, "impl %d: loss rel err %g", impl, r.loss_rel);
        cr_assert(r.grad_rel < 5e-2, "impl %d: gradient rel L2 %g", impl, r.grad_rel);
    }
}

Test(exec_mllm, policies_agree_and_memory_is_the_estimate, .timeout = 120) {
    need_gpu();
    const char *p[] = {"none", "post", "post-node"};
    ExecExecCheck r;
    cr_assert_eq(exec_selftest_executor(&r, 4, p, 3, EXEC_ATTN_FUSED), OS_OK, "%s", os_last_error());
    cr_assert(r.loss_rel <= 2e-2, "loss rel err %g", r.loss_rel);
    cr_assert(r.grad_rel < 5e-2, "gradient rel L2 %g", r.grad_rel);
    cr_assert(r.policy_rel < 3e-2, "policies differ by %g", r.policy_rel);
    cr_assert_float_eq(r.held.activations, r.estimate.activations, 0);
    cr_assert_float_eq(r.held.scratch, r.estimate.scratch, 0);
    cr_assert_float_eq(r.held.relay, r.estimate.relay, 0);
    cr_assert_float_eq(r.held.total, r.estimate.total, 0);
}

Test(exec_mllm, without_a_device_the_executor_says_so) {
    int n = 0;
    char why[64];
    if (exec_gpu_count(&n, why, sizeof why) == OS_OK) cr_skip_test("a CUDA device is present");
    os_clear_error();
    ExecMllm *x = (ExecMllm *)1;
    const ModelSpec *m = model_preset_find("tiny");
    cr_assert_not_null(m);
    OsStatus st = exec_mllm_create_local(&x, m, 1, 2, 0);
    cr_assert_neq(st, OS_OK);
    cr_assert_null(x);
    cr_assert(os_has_error(), "the failure is recorded");
    os_clear_error();
}
