/* cmd_gen.c — `orchsim gen`: write a synthetic trace from a named profile (traces/gen.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "base/util.h"
#include "traces/gen.h"
#include "traces/gen_t2i.h"

OsStatus cmd_gen(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *profile = "vl-sft", *output = NULL;
    uint64_t seed = 1, steps = 0, examples = 0;
    uint32_t batch = 512, dp = 8, chunk = 0;
    int list = 0, no_progress = 0;
    OptsBinOut bo = {0};
    const OptSpec specs[] = {
        /* no -p: that letter is --policies everywhere else (cli/opts.h's vocabulary) */
        {"profile", 0, OPT_STR, &profile, "NAME", "generator profile (see --list-profiles)", 0, 0},
        {"seed", 's', OPT_U64, &seed, "S", "RNG seed: the same seed gives a byte-identical file", 0, 0},
        OPTS_ROW_STEPS(&steps, "number of steps (global batches) (default: 8 when neither this nor --examples is given)", 1, 1e12),
        {"examples", 0, OPT_U64, &examples, "N", "alternative to --steps: N examples, a multiple of B (default: none)", 1, 1e13},
        {"global-batch", 'b', OPT_U32, &batch, "B", "examples per step (at most what the reader takes per step)", 1,
         TRACE_DEFAULT_MAX_STEP_EXAMPLES},
        {"dp", 'd', OPT_U32, &dp, "D", "data-parallel ranks; each draws B/D examples", 1, 1 << 24},
        OPTS_ROW_OUTPUT(&output, "FILE", "output trace (.h5), written atomically ('-' = stdout, not a terminal)"),
        {"chunk-rows", 0, OPT_U32, &chunk, "R", "HDF5 chunk size in rows (0 = 65536)", 0, TRACE_MAX_CHUNK_ROWS},
        {"list-profiles", 0, OPT_FLAG, &list, NULL, "list the profiles and exit", 0, 0},
        OPTS_ROW_NO_PROGRESS(&no_progress),
    };
    const CmdHelp help = {
        "gen", "orchsim gen --profile NAME -n K --global-batch B --dp D -o FILE|- [options]",
        "Write a synthetic modality-composition trace (DESIGN.md §1) from a named profile.",
        "Each step is one global batch of B examples in drawn order; rank r draws examples\n"
        "[r*B/D, (r+1)*B/D). Profiles and their sources: traces/README.md.\n"
        "example: orchsim gen --profile tri-modal-mix --seed 42 --steps 8 --global-batch 512 --dp 64 -o demo.h5"};
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, NULL, 0, 0, NULL));
    if (no_progress) os_progress_force(-1);
    if (list) {
        for (size_t i = 0; i < gen_profile_count(); i++)
            printf("%-14s %s\n", gen_profile_name(i), gen_profile_summary(i));
        for (size_t i = 0; i < gen_t2i_count(); i++) /* text-to-image request profiles */
            printf("%-14s %s\n", gen_t2i_name(i), gen_t2i_summary(i));
        return OS_OK;
    }
    if (!output) OS_FAIL(OS_ERR_ARG, "gen", "--output", "add -o trace.h5", "missing output file");
    if (steps && examples)
        OS_FAIL(OS_ERR_ARG, "gen", "--steps", "give one of --steps K or --examples N",
                "both --steps and --examples given");
    int t2i = gen_t2i_is_profile(profile); /* a text-to-image request trace (traces/gen_t2i.h) */
    if (!steps && !examples && !(t2i && gen_t2i_fixed_count(profile)))
        steps = 8; /* a small trace by default (the help says so); cpdm's size is its anchors */
    if (examples) {
        if (examples % batch)
            OS_FAIL(OS_ERR_ARG, "gen", "--examples", "make N a multiple of --global-batch",
                    "%llu examples leave a partial batch of %llu", (unsigned long long)examples,
                    (unsigned long long)(examples % batch));
        steps = examples / batch;
    }
    GenConfig cfg = {profile, seed, steps, batch, dp, chunk, "orchsim " ORCHSIM_VERSION};
    OS_CHECK(opts_binout_begin(&bo, output, "--output")); /* '-': a temporary file, then stdout */
    if (t2i) {
        OS_CHECK(gen_t2i_write(bo.path, &cfg));
        if (!steps) steps = gen_t2i_fixed_count(profile) / batch;
    } else {
        OS_CHECK(gen_write(bo.path, &cfg));
    }
    OS_CHECK(opts_binout_end(&bo, OS_OK));
    fprintf(stderr, "orchsim gen: wrote %s: %llu steps x %u examples (profile %s, seed %llu, dp %u)\n",
            strcmp(output, "-") ? output : "standard output", (unsigned long long)steps, batch, profile,
            (unsigned long long)seed, dp);
fail:
    st = opts_binout_end(&bo, st); /* removes the temporary file on failure */
    return st;
}
