/* cmd_selftest.c — `orchsim selftest`: every check of the backend (exec/selftest.h), one line
 * per check on stdout: PASS / FAIL / SKIP, its seconds, its figures or the reason. Plain C, no
 * test framework: it runs on a bare GPU machine and on one without a GPU, where every GPU
 * check is a SKIP naming why. Exit 0 when nothing FAILs; else one error line and exit 1. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "exec/gpumod.h"
#include "exec/selftest.h"
#include "base/util.h"

static const char *const RES[] = {"PASS", "FAIL", "SKIP"};

typedef struct {
    int list;
    char first_fail[160];
} Out;

static void print_check(const ExecCheck *c, void *user) {
    Out *o = user;
    if (o->list) {
        printf("%s\n", c->name);
        return;
    }
    printf("%-4s  %-32s %7.2f s  %s\n", RES[c->res], c->name, c->secs, c->detail);
    if (c->res == EXEC_CHECK_FAIL && !o->first_fail[0]) snprintf(o->first_fail, sizeof o->first_fail, "%s", c->name);
}

OsStatus cmd_selftest(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *only = NULL;
    int list = 0;
    const OptSpec specs[] = {
        {"only", 0, OPT_STR, &only, "TEXT", "run only the checks whose name contains TEXT", 0, 0},
        {"list", 0, OPT_FLAG, &list, NULL, "print the checks' names and stop", 0, 0},
    };
    const CmdHelp help = {
        "selftest", "orchsim selftest [--only TEXT] [--list]",
        "check the GPU backend: kernels, executor, memory estimate, NCCL; plain C, one line per check",
        "Checks, in order: the fused attention's tiled algorithm on the CPU against float64; the GPU\n"
        "module loads; a device is there; every GPU kernel against its CPU reference; the step\n"
        "executor on the tiny model, forward and backward, against the float64 reference (fused\n"
        "attention and its cuBLAS twin), the same batch under none / post / post-node on 4 local\n"
        "ranks, the executor's own allocator count against validate's memory estimate; a one-rank\n"
        "NCCL communicator. A check that cannot run here is SKIP with its reason. Exit 0 when\n"
        "nothing FAILs."};
    Out o;
    ExecCheckCounts n;
    memset(&o, 0, sizeof o);
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, NULL, 0, 0, NULL));
    o.list = list;
    if (list) {
        exec_selftest_list(print_check, &o);
        return OS_OK;
    }
    printf("# selftest: orchsim %s; PASS / FAIL / SKIP, seconds, figures (worst = |got-ref| / (atol + rtol |ref|), "
           "<= 1 passes)\n", ORCHSIM_VERSION);
    exec_selftest_run(&n, only, "/proc/self/exe", print_check, &o);
    printf("# selftest: %d PASS, %d FAIL, %d SKIP%s\n", n.pass, n.fail, n.skip,
           n.pass + n.fail + n.skip == 0 ? " (no check matched --only)" : "");
    if (n.fail)
        OS_FAIL(OS_ERR_INTERNAL, "selftest", o.first_fail, "the lines above give each check's figures",
                "%d of %d checks FAILED", n.fail, n.pass + n.fail + n.skip);
fail:
    return st;
}
