/* main.c — `orchsim <command>`: the command registry (git.c's shape) and the one exit point.
 * Every error climbs back here as an OsStatus; main prints one line
 * "orchsim: error: <file>: <field>: <what> (hint: <fix>)" on stderr and exits non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "base/status.h"
#include "base/util.h"

typedef struct {
    const char *name;
    CommandFn *fn;
    const char *summary;
} Command;

static const Command COMMANDS[] = {
    {"gen", cmd_gen, "write a synthetic modality-composition trace from a named profile"},
    {"import", cmd_import, "turn a JSONL/CSV list of per-example lengths into a trace"},
    {"info", cmd_info, "print a trace's provenance, counts and per-modality statistics"},
    {"replay", cmd_replay, "simulate training on a trace under one balancing policy"},
    {"compare", cmd_compare, "replay a trace under several policies and compare them in one table"},
    {"advise", cmd_advise, "replay every policy and say which to use: paired statistics, GPU-hours saved, a diagnosis"},
    {"sweep", cmd_sweep, "replay a trace over a grid of policies, models, setups and GPU counts"},
    {"plot", cmd_plot, "draw paper-style figures (throughput, MFU, timelines, imbalance CDFs, ...)"},
    {"calibrate", cmd_calibrate, "measure achieved GEMM/attention rates on this GPU for the cost model"},
    {"validate", cmd_validate, "run a trace on real GPUs: measured vs predicted step times"},
    {"selftest", cmd_selftest, "check the GPU backend: kernels, executor vs float64, memory estimate, NCCL"},
    {"doctor", cmd_doctor, "print the GPU module, driver, runtime, cuBLAS, NCCL and devices found"},
    {"fidelity", cmd_fidelity, "replay published training runs and collectives: predicted vs published"},
    {"pipeline", cmd_pipeline, "replay text-to-image requests through forward-only stages (caption .. score) per policy"},
};

static void usage(FILE *fp) {
    fprintf(fp, "usage: orchsim <command> [options]   (orchsim <command> --help for details)\n\n"
                "Predict and measure how data-parallel balancing policies behave on multimodal\n"
                "LLM training data (OrchMLLM, arXiv 2503.23830).\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(fp, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(fp, "\nglobal: --verbose (before the command) traces errors through the call stack;\n"
                "        --version prints the version.\n");
}

int main(int argc, char **argv) {
    setlinebuf(stdout);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) os_set_verbose(1);
        else if (!strcmp(argv[i], "--version")) {
            printf("orchsim %s\n", ORCHSIM_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "orchsim: error: unknown global option '%s' (hint: orchsim --help)\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[i];
    const Command *cmd = NULL;
    for (size_t k = 0; k < sizeof COMMANDS / sizeof COMMANDS[0]; k++)
        if (!strcmp(COMMANDS[k].name, name)) cmd = &COMMANDS[k];
    if (!cmd) {
        const char *best = NULL;
        int bd = 3;
        for (size_t k = 0; k < sizeof COMMANDS / sizeof COMMANDS[0]; k++) {
            int d = os_edit_distance(name, COMMANDS[k].name);
            if (d < bd) bd = d, best = COMMANDS[k].name;
        }
        if (best)
            fprintf(stderr, "orchsim: error: '%s' is not a command (hint: did you mean '%s'?)\n", name, best);
        else
            fprintf(stderr, "orchsim: error: '%s' is not a command (hint: orchsim --help)\n", name);
        return 2;
    }
    os_clear_error();
    OsStatus st = cmd->fn(argc - i, argv + i);
    if (st == OS_OK || st == OS_DONE) return 0;
    fprintf(stderr, "orchsim: error: %s\n",
            os_has_error() ? os_last_error() : os_status_name(st));
    return st == OS_ERR_ARG ? 2 : 1;
}
