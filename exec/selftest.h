/* selftest.h — `orchsim selftest`: every check of the backend, in plain C, with no test
 * framework (a bare GPU machine has no Criterion), one result per check.
 * Implements: a registry (STYLE.md habit 5) of checks, run in order:
 *   - cpu:*  the fused attention's algorithm (exec/flash.h emulation vs float64, the work
 *            per sequence): run everywhere;
 *   - module, device: the GPU module loads (its path), a device is there;
 *   - kernel:<name>: every GPU kernel against its CPU reference (kernels.h registry);
 *   - executor:*: the step executor against the float64 reference on the tiny model, forward
 *            and backward (fused attention, then its cuBLAS twin), the same batch under
 *            none / post / post-node on 4 local ranks, and the executor's allocator count
 *            against the memory estimate (exec/memplan.h);
 *   - nccl:one_rank: a one-rank NCCL communicator, an all-reduce, async error polled.
 *   A check that cannot run here (no module, no device, NCCL cannot start) is a SKIP with the
 *   reason, never a pass. The Criterion GPU tests call the same functions.
 * Does not: print (the caller's sink does) or exit.
 * Verdict: worst = max |got - ref| / (atol + rtol |ref|) over outputs, <= 1 passes (tol.h). */
#ifndef OS_EXEC_SELFTEST_H
#define OS_EXEC_SELFTEST_H

#include <stdint.h>

#include "base/status.h"
#include "exec/memplan.h"

typedef enum { EXEC_CHECK_PASS = 0, EXEC_CHECK_FAIL, EXEC_CHECK_SKIP } ExecCheckResult;

typedef struct {
    char name[64];
    ExecCheckResult res;
    char detail[512]; /* figures, or the reason for a FAIL / SKIP */
    double secs;
} ExecCheck;

typedef void ExecCheckSink(const ExecCheck *c, void *user);

typedef struct {
    int pass, fail, skip;
} ExecCheckCounts;

/* Run every check whose name contains `only` (NULL: all); sink gets each as it finishes.
 * self_exe: this program (orchsim), or NULL: the NCCL check then runs in this process; with it,
 * the check runs as `self_exe selftest --only nccl:one_rank` in a fresh process, killed after
 * EXEC_SELFTEST_NCCL_S seconds, so that an NCCL start that hangs (no network, a VM) is a FAIL
 * with its reason, not a hung self-test. */
#define EXEC_SELFTEST_NCCL_S 45.0
void exec_selftest_run(ExecCheckCounts *out, const char *only, const char *self_exe, ExecCheckSink *sink,
                       void *user);
/* Names of the checks this build knows (kernel checks only once the module is loaded). */
void exec_selftest_list(ExecCheckSink *sink, void *user);

/* The executor against the float64 reference: one step of a fixed 16-example batch of the
 * tiny model (its audio encoder padded to 12) on D LOCAL ranks under each policy. */
typedef struct {
    double loss_rel;   /* worst |loss - ref| / |ref| over the policies */
    double grad_rel;   /* worst ||g - ref|| / ||ref|| over policies and modules */
    double policy_rel; /* worst ||g_p - g_first|| / ||g_first|| (0 with one policy) */
    ExecMemCount held, estimate; /* the executor's allocator count; memplan's replay */
} ExecExecCheck;
OsStatus exec_selftest_executor(ExecExecCheck *out, uint32_t D, const char *const *policies, int n_policies,
                                ExecAttnImpl impl);

#endif
