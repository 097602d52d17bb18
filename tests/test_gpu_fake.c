/* test_gpu_fake.c — calibrate, validate, selftest and doctor end to end through the real
 * loader and plain-C code, with a stand-in GPU module (exec/fake/gpu_module.c; no GPU, no
 * CUDA): one rank never touches NCCL (issue 10, defect 4) while two ranks do; --emulate runs
 * without NCCL; calibrate writes a table that replay loads (every measurement kept); a failing
 * kernel self-test fails selftest with one line and exit 1; doctor prints what it found. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"

#ifndef ORCHSIM_FAKE_GPU_MODULE
#define ORCHSIM_FAKE_GPU_MODULE ""
#endif

static void need_fake(void) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    if (!th_exists(ORCHSIM_FAKE_GPU_MODULE)) cr_skip_test("fake GPU module not built: %s", ORCHSIM_FAKE_GPU_MODULE);
}

/* `orchsim <args>` with the fake module and extra environment `env`. */
static int fake_run(char **out, const char *env, const char *args) {
    char a[8192];
    snprintf(a, sizeof a, "%s", args);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "env ORCHSIM_GPU_MODULE=%s %s %s %s 2>&1", ORCHSIM_FAKE_GPU_MODULE, env ? env : "",
             ORCHSIM_BIN, a);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 20, n = 0, r;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) n += r;
    buf[n] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *trace(void) {
    static char path[1024];
    char *out = NULL;
    snprintf(path, sizeof path, "%s", th_tmp("fake-trace.h5"));
    if (!th_exists(path)) {
        char args[2048];
        snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 7 --steps 2 --global-batch 16 --dp 8 -o %s", path);
        cr_assert_eq(th_run(&out, args), 0, "%s", out);
        free(out);
    }
    return path;
}

Test(gpu_fake, one_rank_runs_without_nccl, .timeout = 120) {
    need_fake();
    char *out = NULL, args[2048], env[1200];
    const char *log = th_tmp("nccl.log");
    remove(log);
    snprintf(env, sizeof env, "FAKE_GPU_NCCL_LOG=%s", log);
    snprintf(args, sizeof args, "validate %s --gpus 1 --policy none --model mini-tri --steps 2", trace());
    int rc = fake_run(&out, env, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "no NCCL"), "the run line says so: %s", out);
    cr_assert(strstr(out, "# memory:"), "%s", out);
    cr_assert(!th_exists(log), "one rank touched NCCL");
    free(out);
    /* two ranks on two devices do go through NCCL */
    snprintf(env, sizeof env, "FAKE_GPU_NCCL_LOG=%s FAKE_GPU_DEVICES=2", log);
    snprintf(args, sizeof args, "validate %s --gpus 2 --policy post --model mini-tri --steps 1", trace());
    rc = fake_run(&out, env, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(th_exists(log), "two ranks must create an NCCL communicator");
    free(out);
    remove(log);
}

Test(gpu_fake, emulate_runs_without_nccl_and_labels_it, .timeout = 120) {
    need_fake();
    char *out = NULL, args[2048], env[1200];
    const char *log = th_tmp("nccl-emu.log");
    remove(log);
    snprintf(env, sizeof env, "FAKE_GPU_NCCL_LOG=%s", log);
    snprintf(args, sizeof args, "validate %s --gpus 8 --emulate --policy post --model mini-tri --steps 2", trace());
    int rc = fake_run(&out, env, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "--emulate"), "%s", out);
    cr_assert(strstr(out, "GPU 0 holding") || strstr(out, "# memory:"), "%s", out);
    cr_assert(!th_exists(log), "--emulate touched NCCL");
    free(out);
}

Test(gpu_fake, calibrate_writes_a_table_replay_loads, .timeout = 120) {
    need_fake();
    char *out = NULL, args[4096];
    const char *cal = th_tmp("fake.calib");
    snprintf(args, sizeof args, "calibrate -o %s --model mini-tri --repeats 3 --warmup 1", cal);
    int rc = fake_run(&out, NULL, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "512 gemm rows"), "the whole grid is kept: %s", out);
    free(out);
    snprintf(args, sizeof args, "replay %s --model mini-tri --policy post --calibration %s --regroup --gpus 8", trace(), cal);
    rc = fake_run(&out, NULL, args);
    cr_assert_eq(rc, 0, "replay refused the table: %s", out);
    free(out);
    remove(cal);
}

Test(gpu_fake, selftest_fails_on_a_failing_kernel_in_one_line) {
    need_fake();
    char *out = NULL;
    int rc = fake_run(&out, NULL, "selftest --only kernel:");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "PASS  kernel:fake_pass"), "%s", out);
    cr_assert(strstr(out, "2 PASS, 0 FAIL"), "%s", out);
    free(out);
    rc = fake_run(&out, "FAKE_GPU_FAIL_KERNEL=1", "selftest --only kernel:");
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "FAIL  kernel:fake_maybe"), "%s", out);
    cr_assert(strstr(out, "orchsim: error: selftest: kernel:fake_maybe: 1 of 2 checks FAILED"), "%s", out);
    free(out);
}

Test(gpu_fake, doctor_prints_versions_and_paths) {
    need_fake();
    char *out = NULL;
    int rc = fake_run(&out, NULL, "doctor");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "/fake/libcublas.so.13"), "%s", out);
    cr_assert(strstr(out, "NCCL             2.28.9 /fake/libnccl.so.2"), "%s", out);
    cr_assert(strstr(out, "device 0         Fake H200 0, cc 9.0"), "%s", out);
    free(out);
    rc = fake_run(&out, "FAKE_GPU_DEVICES=0", "doctor");
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "orchsim: error: doctor: no CUDA device (fake: no device)"), "%s", out);
    free(out);
}
