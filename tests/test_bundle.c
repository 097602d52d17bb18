/* test_bundle.c — the gpu-bundle's script and packer without a GPU (exec/bundle/): run.sh runs
 * through with every step saying "no device", exits 0 and leaves at most 6 files; with the
 * time budget spent it starts no step; its library search finds cuBLAS and NCCL laid out as
 * the pip wheels lay them out (site-packages/nvidia/cu13/lib, nvidia/nccl/lib) and the module
 * loads them from there; pack.sh refuses a bundle over its size limit listing every file's
 * size, and a binary that still needs shared HDF5/GSL. Set ORCHSIM_TEST_WHEELS to an unpacked
 * wheel tree (pip download nvidia-cublas nvidia-nccl-cu13 ...; unzip) to search real wheels;
 * else the wheel layout is made of links to this machine's libraries. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "exec/gpu.h"
#include "helpers.h"

static char *sh(int *rc, const char *cmd) {
    char full[16384];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 20, n = 0, r;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) n += r;
    buf[n] = '\0';
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static void no_gpu_here(void) {
    int n = 0;
    char why[256];
    OsStatus st = exec_gpu_count(&n, why, sizeof why);
    os_clear_error();
    if (st == OS_OK && n > 0) cr_skip_test("a GPU is present: run.sh would run the real check (minutes)");
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim not built");
}

static const char *trace(void) {
    static char path[1024];
    int rc;
    char cmd[4096];
    snprintf(path, sizeof path, "%s", th_tmp("bundle-trace.h5"));
    snprintf(cmd, sizeof cmd, "%s gen --profile tri-modal-mix --seed 7 --steps 4 --global-batch 16 --dp 8 -o %s",
             ORCHSIM_BIN, path);
    free(sh(&rc, cmd));
    cr_assert_eq(rc, 0);
    return path;
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    cr_assert_not_null(d, "%s", dir);
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

Test(bundle, run_sh_without_a_device_says_so_for_every_step, .timeout = 180) {
    no_gpu_here();
    int rc;
    char cmd[8192], out[1100];
    snprintf(out, sizeof out, "%s", th_tmp("run-out"));
    snprintf(cmd, sizeof cmd, "rm -rf %s; ORCHSIM_BIN=%s ORCHSIM_TRACE=%s bash %s/exec/bundle/run.sh %s", out, ORCHSIM_BIN,
             trace(), ORCHSIM_SRC, out);
    char *o = sh(&rc, cmd);
    cr_assert_eq(rc, 0, "run.sh must exit cleanly without a device:\n%s", o);
    cr_assert_leq(count_files(out), 6, "at most 6 files");
    static const char *const STEPS[] = {"selftest: no device", "calibrate: no device", "validate-1-none: no device",
                                        "validate-1-post: no device", "validate-8-emulate-none: no device",
                                        "validate-8-emulate-post: no device"};
    for (size_t i = 0; i < sizeof STEPS / sizeof STEPS[0]; i++) cr_assert(strstr(o, STEPS[i]), "'%s' missing:\n%s", STEPS[i], o);
    free(o);
    snprintf(cmd, sizeof cmd, "cat %s/env.log", out);
    o = sh(&rc, cmd);
    cr_assert(strstr(o, "## nvidia-smi") && strstr(o, "LD_LIBRARY_PATH=") && strstr(o, "## orchsim doctor"), "%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "rm -rf %s", out);
    free(sh(&rc, cmd));
}

Test(bundle, run_sh_starts_no_step_once_its_time_is_spent) {
    no_gpu_here();
    int rc;
    char cmd[8192], out[1100];
    snprintf(out, sizeof out, "%s", th_tmp("run-late"));
    snprintf(cmd, sizeof cmd, "rm -rf %s; RUN_NEW_STEP_LIMIT_S=0 ORCHSIM_BIN=%s ORCHSIM_TRACE=/nonexistent bash %s/exec/bundle/run.sh %s",
             out, ORCHSIM_BIN, ORCHSIM_SRC, out);
    char *o = sh(&rc, cmd);
    cr_assert_eq(rc, 0, "%s", o);
    cr_assert(strstr(o, "selftest: SKIP: not started"), "%s", o);
    cr_assert(strstr(o, "validate-8-emulate-post: SKIP: not started"), "%s", o);
    cr_assert_leq(count_files(out), 6);
    free(o);
    snprintf(cmd, sizeof cmd, "rm -rf %s", out);
    free(sh(&rc, cmd));
}

/* The wheels' layout: nvidia/cu13/lib (cuBLAS + cuBLASLt) and nvidia/nccl/lib (NCCL). */
Test(bundle, library_search_finds_the_pip_wheel_layout, .timeout = 120) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim not built");
    int rc;
    char cmd[8192], site[1100];
    const char *real = getenv("ORCHSIM_TEST_WHEELS");
    if (real && *real) {
        snprintf(site, sizeof site, "%s", real);
    } else {
        snprintf(site, sizeof site, "%s", th_tmp("site"));
        snprintf(cmd, sizeof cmd,
                 "set -e; rm -rf %s; mkdir -p %s/nvidia/cu13/lib %s/nvidia/nccl/lib; "
                 "for l in libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do "
                 "p=$(ldconfig -p | awk -v n=$l '$1 == n { print $NF; exit }'); "
                 "[ -n \"$p\" ] || { echo \"no $l on this machine\"; exit 3; }; "
                 "case $l in libnccl*) d=nccl ;; *) d=cu13 ;; esac; ln -s \"$(readlink -f $p)\" %s/nvidia/$d/lib/$l; done",
                 site, site, site, site);
        char *o = sh(&rc, cmd);
        if (rc == 3) cr_skip_test("%s", o);
        cr_assert_eq(rc, 0, "%s", o);
        free(o);
    }
    snprintf(cmd, sizeof cmd, "ORCHSIM_SITE_DIRS=%s ORCHSIM_BIN=%s bash %s/exec/bundle/run.sh --find-libs", site,
             ORCHSIM_BIN, ORCHSIM_SRC);
    char *o = sh(&rc, cmd), want[2600];
    cr_assert_eq(rc, 0, "%s", o);
    snprintf(want, sizeof want, "libcublas.so.13: %s/nvidia/cu13/lib (pip wheel)", site);
    cr_assert(strstr(o, want), "'%s' missing:\n%s", want, o);
    snprintf(want, sizeof want, "libnccl.so.2: %s/nvidia/nccl/lib (pip wheel)", site);
    cr_assert(strstr(o, want), "'%s' missing:\n%s", want, o);
    snprintf(want, sizeof want, "LD_LIBRARY_PATH=%s/nvidia/cu13/lib:%s/nvidia/nccl/lib", site, site);
    cr_assert(strstr(o, want), "'%s' missing:\n%s", want, o);
    /* doctor, under that path, loaded cuBLAS from the wheel folder */
    if (strstr(o, "module           ")) {
        snprintf(want, sizeof want, "%s/nvidia/cu13/lib/libcublas.so.13", site);
        cr_assert(strstr(o, want) || real == NULL, "cuBLAS not loaded from the wheel folder:\n%s", o);
    }
    free(o);
    if (!(real && *real)) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", site);
        free(sh(&rc, cmd));
    }
}

Test(bundle, pack_refuses_an_oversized_bundle_listing_each_file, .timeout = 120) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim not built");
    int rc;
    char cmd[8192], out[1100];
    snprintf(out, sizeof out, "%s", th_tmp("bundle-out"));
    snprintf(cmd, sizeof cmd, "BUNDLE_MAX_KIB=64 bash %s/exec/bundle/pack.sh %s %s", ORCHSIM_SRC, ORCHSIM_BUILD_DIR, out);
    char *o = sh(&rc, cmd);
    cr_assert_neq(rc, 0, "%s", o);
    cr_assert(strstr(o, "(64 KiB) limit"), "%s", o);
    cr_assert(strstr(o, "MiB  orchsim"), "each file's size: %s", o);
    cr_assert(strstr(o, "MiB  run.sh") && strstr(o, "MiB  trace.h5"), "%s", o);
    cr_assert(!th_exists(out), "nothing is left when the bundle fails");
    free(o);
}

Test(bundle, pack_refuses_a_binary_that_needs_shared_hdf5, .timeout = 120) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim not built");
    int rc;
    char cmd[8192], out[1100];
    snprintf(cmd, sizeof cmd, "readelf -d %s | grep -c 'NEEDED.*hdf5'", ORCHSIM_BIN);
    char *o = sh(&rc, cmd);
    int shared = rc == 0 && atoi(o) > 0;
    free(o);
    if (!shared) cr_skip_test("this build links HDF5 statically (a bundle build)");
    snprintf(out, sizeof out, "%s", th_tmp("bundle-out2"));
    snprintf(cmd, sizeof cmd, "BUNDLE_MAX_MIB=1000 bash %s/exec/bundle/pack.sh %s %s", ORCHSIM_SRC, ORCHSIM_BUILD_DIR, out);
    o = sh(&rc, cmd);
    cr_assert_neq(rc, 0, "%s", o);
    cr_assert(strstr(o, "orchsim still needs") && strstr(o, "hdf5"), "%s", o);
    cr_assert(strstr(o, "-DORCHSIM_STATIC=ON"), "the hint: %s", o);
    cr_assert(!th_exists(out));
    free(o);
}
