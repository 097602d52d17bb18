/* test_gpu_module.c — the GPU module loaded on demand (exec/module.h, exec/gpumod.h), without a
 * GPU: the orchsim binary needs no CUDA, cuBLAS, NCCL or MPI library at load time (its
 * DT_NEEDED list); the simulator commands never touch the module; and every way loading it
 * can fail is one line naming the file and what failed, with a hint, and a non-zero exit: no
 * module file, a file that is no module, a module whose library is missing (named, with the
 * pip-wheel hint), a module of another ABI. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "exec/gpumod.h"
#include "exec/module.h"
#include "helpers.h"

static char *run_sh(int *rc, const char *cmd) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) n += r;
    buf[n] = '\0';
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static size_t lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

Test(gpu_module, binary_needs_no_cuda_nccl_or_mpi_library) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built: %s", ORCHSIM_BIN);
    int rc;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "(readelf -d %s || objdump -p %s) | grep -E 'NEEDED'", ORCHSIM_BIN, ORCHSIM_BIN);
    char *out = run_sh(&rc, cmd);
    if (!strstr(out, "NEEDED")) cr_skip_test("neither readelf nor objdump printed the needed libraries: %s", out);
    static const char *const BAD[] = {"libcuda", "libcudart", "libcublas", "libnccl", "libmpi", "libopen-", "libnvidia"};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        cr_assert(!strstr(out, BAD[i]), "orchsim needs %s at load time:\n%s", BAD[i], out);
    free(out);
}

Test(gpu_module, simulator_commands_never_load_the_module) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    int rc;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ORCHSIM_GPU_MODULE=/nonexistent/liborchsim_gpu.so %s gen --profile tri-modal-mix "
             "--seed 3 --steps 1 --global-batch 16 --dp 2 -o %s && ORCHSIM_GPU_MODULE=/nonexistent/x.so %s info %s",
             ORCHSIM_BIN, th_tmp("m.h5"), ORCHSIM_BIN, th_tmp("m.h5"));
    char *out = run_sh(&rc, cmd);
    cr_assert_eq(rc, 0, "gen/info touched the GPU module: %s", out);
    remove(th_tmp("m.h5"));
    free(out);
}

/* `orchsim calibrate` with ORCHSIM_GPU_MODULE=path: exit non-zero, one line, all of want[] in it. */
static void one_line(const char *module, const char *const *want, size_t nwant) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    int rc;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ORCHSIM_GPU_MODULE='%s' %s calibrate -o %s", module, ORCHSIM_BIN, th_tmp("c.txt"));
    char *out = run_sh(&rc, cmd);
    cr_assert(rc > 0, "exit %d: %s", rc, out);
    cr_assert_eq(lines(out), 1, "one line expected: %s", out);
    cr_assert(strstr(out, "orchsim: error: ") == out, "%s", out);
    for (size_t i = 0; i < nwant; i++) cr_assert(strstr(out, want[i]), "'%s' missing in: %s", want[i], out);
    cr_assert(!th_exists(th_tmp("c.txt")), "a calibration file was written");
    free(out);
}

Test(gpu_module, missing_module_file_is_one_line) {
    const char *want[] = {"/nonexistent/liborchsim_gpu.so", "ORCHSIM_GPU_MODULE", "hint:"};
    one_line("/nonexistent/liborchsim_gpu.so", want, 3);
}

Test(gpu_module, a_file_that_is_no_module_is_one_line) {
    FILE *f = fopen(th_tmp("notamodule.so"), "w");
    cr_assert_not_null(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    const char *want[] = {th_tmp("notamodule.so"), "dlopen", "hint: not a module for this machine"};
    one_line(th_tmp("notamodule.so"), want, 3);
    remove(th_tmp("notamodule.so"));
}

/* A module that needs a library nobody has: built here with the C compiler, against a stub
 * that is then removed (what a machine without the cuBLAS wheel looks like to the loader). */
Test(gpu_module, missing_library_is_named_with_the_wheel_hint) {
    int rc;
    char dir[1100], cmd[8192];
    snprintf(dir, sizeof dir, "%s", th_tmp("mod"));
    snprintf(cmd, sizeof cmd,
             "set -e; rm -rf %s; mkdir -p %s; cd %s; echo 'int os_missing_fn(void){return 1;}' > stub.c; "
             "echo 'int os_missing_fn(void); const void *orchsim_gpu_module(unsigned a){(void)a; return (const void *)(long)os_missing_fn();}' > m.c; "
             "cc -shared -fPIC -o libosmissing.so.13 -Wl,-soname,libosmissing.so.13 stub.c; "
             "cc -shared -fPIC -o liborchsim_gpu.so m.c -Wl,--no-as-needed ./libosmissing.so.13; rm libosmissing.so.13",
             dir, dir, dir);
    char *out = run_sh(&rc, cmd);
    if (rc != 0) cr_skip_test("no C compiler to build the test module: %s", out);
    free(out);
    char mod[1200];
    snprintf(mod, sizeof mod, "%s/liborchsim_gpu.so", dir);
    const char *want[] = {"libosmissing.so.13", "cannot open shared object file", "LD_LIBRARY_PATH", "nvidia/cu13/lib",
                          "run.sh"};
    one_line(mod, want, 5);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    free(run_sh(&rc, cmd));
}

Test(gpu_module, another_abi_is_refused_naming_both) {
    int rc;
    char dir[1100], cmd[8192];
    snprintf(dir, sizeof dir, "%s", th_tmp("abi"));
    snprintf(cmd, sizeof cmd,
             "set -e; rm -rf %s; mkdir -p %s; cd %s; "
             "echo 'static const unsigned t[2] = {99u, 8u}; const void *orchsim_gpu_module(unsigned a){(void)a; return t;}' > m.c; "
             "cc -shared -fPIC -o liborchsim_gpu.so m.c", dir, dir, dir);
    char *out = run_sh(&rc, cmd);
    if (rc != 0) cr_skip_test("no C compiler to build the test module: %s", out);
    free(out);
    char mod[1200], abi[64];
    snprintf(mod, sizeof mod, "%s/liborchsim_gpu.so", dir);
    snprintf(abi, sizeof abi, "needs ABI %d", EXEC_GPU_ABI);
    const char *want[] = {"module ABI 99", abi, "rebuild both"};
    one_line(mod, want, 3);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    free(run_sh(&rc, cmd));
}

Test(gpu_module, hints_by_dlopen_error) {
    ExecModuleSpec s = {"GPU module", "liborchsim_gpu.so", NULL, "e", 1, 8, NULL, "WHEELS", NULL};
    cr_assert_str_eq(exec_module_hint(&s, "libcublas.so.13: cannot open shared object file: No such file"), "WHEELS");
    cr_assert(strstr(exec_module_hint(&s, "/x/liborchsim_gpu.so: cannot open shared object file"), "module file"));
    cr_assert(strstr(exec_module_hint(&s, "/x/liborchsim_gpu.so: undefined symbol: cublasLtFoo"), "older"));
    cr_assert(strstr(exec_module_hint(&s, "version `GLIBC_2.38' not found"), "C library"));
    cr_assert(strstr(exec_module_hint(&s, "/x/m.so: invalid ELF header"), "rebuild"));
}

Test(gpu_module, loaded_module_speaks_this_abi) {
    const ExecGpuApi *g = NULL;
    if (exec_gpu_api(&g) != OS_OK) {
        char why[600];
        snprintf(why, sizeof why, "%s", os_last_error());
        os_clear_error();
        cr_skip_test("GPU module not loadable here: %s", why);
    }
    cr_assert_eq(g->abi, EXEC_GPU_ABI);
    cr_assert_geq(g->size, sizeof(ExecGpuApi));
    cr_assert(g->selftest_count() >= 11, "every kernel file has a self-test");
    cr_assert(strstr(exec_gpu_module_path(), EXEC_GPU_FILE));
}
