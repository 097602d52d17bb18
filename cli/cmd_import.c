/* cmd_import.c — `orchsim import`: JSONL/CSV per-example lengths -> trace (traces/import.h). */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "base/util.h"
#include "traces/import.h"

OsStatus cmd_import(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *output = NULL, *format = NULL, *pos[1] = {NULL};
    uint64_t seed = 1;
    uint32_t batch = 0, dp = 0, chunk = 0;
    int shuffle = 0, drop = 0;
    const OptSpec specs[] = {
        {"output", 'o', OPT_STR, &output, "FILE", "output trace (.h5), written atomically", 0, 0},
        {"global-batch", 'b', OPT_U32, &batch, "B", "examples per step (required)", 1, 1 << 30},
        {"dp", 'd', OPT_U32, &dp, "D", "data-parallel ranks; each draws B/D examples (required)", 1, 1 << 24},
        {"shuffle", 0, OPT_FLAG, &shuffle, NULL, "deal examples in a seeded random order (holds all lengths)", 0, 0},
        {"seed", 's', OPT_U64, &seed, "S", "shuffle seed", 0, 0},
        {"format", 'f', OPT_STR, &format, "jsonl|csv", "input format (default: from the extension)", 0, 0},
        {"drop-remainder", 0, OPT_FLAG, &drop, NULL, "drop a final partial batch instead of failing", 0, 0},
        {"chunk-rows", 0, OPT_U32, &chunk, "R", "HDF5 chunk size in rows (0 = 65536)", 0, 1 << 26},
    };
    const CmdHelp help = {
        "import", "orchsim import IN.jsonl|IN.csv -o OUT.h5 --global-batch B --dp D [options]",
        "Turn a list of per-example lengths into a trace, B examples per step in file order.",
        "JSONL: one object per line, e.g. {\"id\": 7, \"text\": 512, \"image\": [576, 576], \"audio\": 1500}\n"
        "  (keys: id, text, image, audio, video; a modality takes an integer or a list of integers).\n"
        "CSV: a header such as id,text,image,audio; list cells separated by ';' (576;576), empty = none.\n"
        "Lengths are encoder units: image patches, audio frames, video frames x patches."};
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 1, 1, NULL));
    if (!output) OS_FAIL(OS_ERR_ARG, "import", "--output", "add -o trace.h5", "missing output file");
    if (!batch) OS_FAIL(OS_ERR_ARG, "import", "--global-batch", "add --global-batch B", "missing");
    if (!dp) OS_FAIL(OS_ERR_ARG, "import", "--dp", "add --dp D", "missing");
    ImportConfig cfg = {pos[0], output, format, batch, dp, shuffle, seed, drop, chunk, "orchsim " ORCHSIM_VERSION};
    ImportSummary sum;
    OS_CHECK(import_run(&cfg, &sum));
    fprintf(stderr, "orchsim import: wrote %s: %llu steps, %llu examples, %llu items%s\n", output,
            (unsigned long long)sum.steps, (unsigned long long)sum.examples, (unsigned long long)sum.items,
            sum.dropped ? " (dropped a partial batch)" : "");
    if (sum.dropped)
        fprintf(stderr, "orchsim import: dropped the last %llu examples (--drop-remainder)\n",
                (unsigned long long)sum.dropped);
fail:
    return st;
}
