/* test_exec_gpu.c — the GPU backend on a device: every kernel self-test against its CPU
 * reference (exec/kernels.h: the same registry `orchsim selftest` runs) and the one-rank NCCL
 * smoke test, skipped visibly without a device; and the no-device path of `orchsim validate` /
 * `orchsim calibrate` / `orchsim selftest` (one line, non-zero exit, no output file; selftest:
 * SKIP lines and exit 0). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/gpu.h"
#include "exec/gpumod.h"
#include "exec/kernels.h"
#include "helpers.h"

static int have_gpu(char *why, size_t n) {
    int count = 0;
    OsStatus st = exec_gpu_count(&count, why, n);
    os_clear_error();
    return st == OS_OK && count > 0;
}

Test(exec_gpu, count_reports_a_reason_when_absent) {
    int n = -1;
    char why[256] = "";
    OsStatus st = exec_gpu_count(&n, why, sizeof why);
    if (st == OS_OK) {
        cr_assert(n > 0);
    } else {
        cr_assert_eq(st, OS_ERR_NODEV);
        cr_assert_eq(n, 0);
        cr_assert(why[0] != '\0', "no reason given");
    }
    os_clear_error();
}

Test(exec_gpu, kernels_match_cpu_reference) {
    char why[256];
    if (!have_gpu(why, sizeof why)) cr_skip_test("no CUDA device: %s", why);
    cr_assert(exec_selftest_count() > 0);
    for (int i = 0; i < exec_selftest_count(); i++) {
        const ExecSelftest *t = exec_selftest_at(i);
        double worst = -1;
        OsStatus st = t->fn(&worst);
        cr_assert_eq(st, OS_OK, "%s: %s", t->name, os_last_error());
        cr_assert(worst >= 0 && worst <= 1.0, "%s: worst |gpu-ref|/(atol+rtol|ref|) = %g", t->name, worst);
    }
}

Test(exec_gpu, one_rank_nccl_smoke) {
    char why[512] = "";
    if (!have_gpu(why, sizeof why)) cr_skip_test("no CUDA device: %s", why);
    const ExecGpuApi *g = NULL;
    cr_assert_eq(exec_gpu_api(&g), OS_OK);
    double worst = -1;
    OsStatus st = g->nccl_smoke(&worst, why, sizeof why);
    if (st == OS_ERR_NODEV) cr_skip_test("NCCL cannot start here: %s", why);
    cr_assert_eq(st, OS_OK, "%s", os_last_error());
    cr_assert_eq(worst, 0, "a one-rank all-reduce must return its input");
}

Test(exec_gpu, selftest_without_device_skips_with_the_reason) {
    char why[256];
    if (have_gpu(why, sizeof why)) cr_skip_test("a CUDA device is present");
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built: %s", ORCHSIM_BIN);
    char *out = NULL;
    int rc = th_run(&out, "selftest");
    cr_assert_eq(rc, 0, "nothing FAILs without a device: %s", out);
    cr_assert(strstr(out, "PASS  cpu:flash_forward"), "%s", out);
    cr_assert(strstr(out, "SKIP  executor:tiny_fused"), "%s", out);
    cr_assert(strstr(out, "0 FAIL"), "%s", out);
    free(out);
}

/* One line on stderr naming the reason, a non-zero exit, no output file. */
static void no_device_cli(const char *args, const char *cmd, const char *outfile) {
    char why[256];
    if (have_gpu(why, sizeof why)) cr_skip_test("a CUDA device is present: the no-device path is not reachable");
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built: %s", ORCHSIM_BIN);
    char *out = NULL;
    int rc = th_run(&out, args);
    cr_assert(rc > 0, "exit status %d", rc);
    cr_assert_not_null(out);
    size_t lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    cr_assert_eq(lines, 1, "expected one line, got: %s", out);
    char want[64];
    snprintf(want, sizeof want, "orchsim: error: %s", cmd);
    cr_assert(strstr(out, want) == out || strstr(out, "orchsim: error: ") == out, "got: %s", out);
    /* no device, or (a build without CUDA) no GPU module: each its own one line */
    cr_assert(strstr(out, "no CUDA device") || strstr(out, "GPU module"), "got: %s", out);
    if (outfile) cr_assert(!th_exists(outfile), "%s was created", outfile);
    free(out);
}

Test(exec_gpu, validate_without_device_fails_in_one_line) {
    char args[512];
    snprintf(args, sizeof args, "validate %s --gpus 2 --policy post --steps 1 --csv %s",
             th_tmp("none.h5"), th_tmp("v.csv"));
    no_device_cli(args, "validate", th_tmp("v.csv"));
}

Test(exec_gpu, calibrate_without_device_fails_in_one_line) {
    char args[512];
    snprintf(args, sizeof args, "calibrate -o %s", th_tmp("calib.txt"));
    no_device_cli(args, "calibrate", th_tmp("calib.txt"));
}

Test(exec_gpu, validate_rejects_unknown_policy_first) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built: %s", ORCHSIM_BIN);
    char *out = NULL;
    int rc = th_run(&out, "validate x.h5 --policy postt");
    cr_assert_eq(rc, 2, "got %d: %s", rc, out);
    cr_assert(strstr(out, "unknown policy"), "got: %s", out);
    free(out);
}
