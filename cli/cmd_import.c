/* cmd_import.c — `orchsim import`: JSONL/JSON/CSV per-example lengths -> trace (traces/import.h),
 * with the importer's counts reported on stderr: ignored keys (once), hashed string ids,
 * dropped zero lengths, and items longer than an encoder's window. */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "sim/model.h"
#include "traces/import.h"

/* Windows from a model preset: each encoder's max_len for its modality (0 = none). */
static OsStatus model_windows(uint32_t *win, const TraceModality *mods, uint32_t nm, const char *name) {
    OsStatus st = OS_OK;
    ModelSpec m;
    OS_CHECK(model_resolve(&m, name));
    for (uint32_t k = 0; k < nm; k++) win[k] = 0;
    for (uint32_t e = 0; e < m.n_enc; e++)
        for (uint32_t k = 1; k < nm; k++)
            if (!strcmp(m.enc[e].modality, mods[k].name)) win[k] = m.enc[e].max_len;
fail:
    return st;
}

OsStatus cmd_import(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *output = NULL, *format = NULL, *pos[1] = {NULL}, *ratio = NULL, *tpi = NULL, *window = NULL,
               *model = NULL;
    uint64_t seed = 1;
    uint32_t batch = 0, dp = 0, chunk = 0;
    int shuffle = 0, drop = 0, ignore = 0;
    OptsBinOut bo = {0};
    const OptSpec specs[] = {
        OPTS_ROW_OUTPUT(&output, "FILE", "output trace (.h5), written atomically ('-' = stdout, not a terminal)"),
        {"global-batch", 'b', OPT_U32, &batch, "B", "examples per step (required)", 1, TRACE_DEFAULT_MAX_STEP_EXAMPLES},
        {"dp", 'd', OPT_U32, &dp, "D", "data-parallel ranks; each draws B/D examples (required)", 1, 1 << 24},
        {"shuffle", 0, OPT_FLAG, &shuffle, NULL, "deal examples in a seeded random order (holds all lengths)", 0, 0},
        {"seed", 's', OPT_U64, &seed, "S", "shuffle seed", 0, 0},
        {"format", 'f', OPT_STR, &format, "jsonl|json|csv", "input format (default: from the extension; stdin: sniffed)", 0, 0},
        {"drop-remainder", 0, OPT_FLAG, &drop, NULL, "drop a final partial batch instead of failing", 0, 0},
        {"ignore-unknown", 0, OPT_FLAG, &ignore, NULL, "skip keys/columns other than id, text and the modalities (listed once)", 0, 0},
        {"ratio", 'r', OPT_STR, &ratio, "NAME=R,...", "projector ratio stored per modality (default: image=4,audio=2,video=4)", 0, 0},
        {"tokens-per-item", 0, OPT_STR, &tpi, "NAME=K,...", "fixed LLM tokens per item (e.g. image=256) instead of ceil(len/ratio)", 0, 0},
        {"window", 0, OPT_STR, &window, "NAME=N,...", "warn about items longer than N positions (default: audio=1500)", 0, 0},
        {"model", 'm', OPT_STR, &model, "NAME|FILE", "take the --window limits from a model's encoders (max_len)", 0, 0},
        {"chunk-rows", 0, OPT_U32, &chunk, "R", "HDF5 chunk size in rows (0 = 65536)", 0, TRACE_MAX_CHUNK_ROWS},
    };
    const CmdHelp help = {
        "import", "orchsim import IN.jsonl|IN.json|IN.csv[.gz]|- -o OUT.h5 --global-batch B --dp D [options]",
        "Turn a list of per-example lengths into a trace, B examples per step in input order.",
        "JSON lines, or one JSON array of objects, e.g. {\"id\": 7, \"text\": 512, \"image\": [576, 576], \"audio\": 1500}\n"
        "  keys: id (integer or string: strings are hashed, FNV-1a 64), text, image, audio, video (an\n"
        "  integer or a list; 0, [] and null = no item; integral floats such as 512.0 are integers).\n"
        "CSV: a header such as id,text,image,audio; list cells separated by ';' (576;576), empty = none.\n"
        "Lengths are encoder units: image patches per tile (InternViT 448 px: 1024), audio frames, video\n"
        "frames x patches. '-' reads standard input; .gz is decompressed; a UTF-8 BOM is skipped."};
    uint32_t nm = 0;
    const TraceModality *mods = trace_std_modalities(&nm);
    const char *names[TRACE_MAX_MODALITIES];
    uint32_t r[TRACE_MAX_MODALITIES] = {0}, k[TRACE_MAX_MODALITIES] = {0}, w[TRACE_MAX_MODALITIES] = {0};
    for (uint32_t m = 0; m < nm; m++) names[m] = mods[m].name;
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 1, 1, NULL));
    if (!output) OS_FAIL(OS_ERR_ARG, "import", "--output", "add -o trace.h5", "missing output file");
    if (!batch) OS_FAIL(OS_ERR_ARG, "import", "--global-batch", "add --global-batch B", "missing");
    if (!dp) OS_FAIL(OS_ERR_ARG, "import", "--dp", "add --dp D", "missing");
    ImportOptions opt = {ignore, NULL, NULL, NULL};
    if (ratio) {
        OS_CHECK(opts_named_u32(r, names, nm, 1, ratio, "--ratio", 1, 1u << 16));
        opt.ratio = r;
    }
    if (tpi) {
        OS_CHECK(opts_named_u32(k, names, nm, 1, tpi, "--tokens-per-item", 1, TRACE_MAX_LEN - 1));
        opt.tokens_per_item = k;
    }
    if (model || window) {
        uint32_t n = 0;
        memcpy(w, import_std_windows(&n), sizeof w[0] * n);
        if (model) OS_CHECK(model_windows(w, mods, nm, model));
        if (window) OS_CHECK(opts_named_u32(w, names, nm, 1, window, "--window", 0, TRACE_MAX_LEN - 1));
        opt.window = w;
    }
    OS_CHECK(opts_binout_begin(&bo, output, "--output")); /* '-': a temporary file, then stdout */
    ImportConfig cfg = {pos[0], bo.path, format, batch, dp, shuffle, seed, drop, chunk, "orchsim " ORCHSIM_VERSION};
    ImportSummary sum;
    OS_CHECK(import_run_opts(&cfg, &opt, &sum));
    OS_CHECK(opts_binout_end(&bo, OS_OK));
    fprintf(stderr, "orchsim import: wrote %s: %llu steps, %llu examples, %llu items (%s)%s\n",
            strcmp(output, "-") ? output : "standard output",
            (unsigned long long)sum.steps, (unsigned long long)sum.examples, (unsigned long long)sum.items, sum.format,
            sum.dropped ? " (dropped a partial batch)" : "");
    if (sum.dropped)
        fprintf(stderr, "orchsim import: dropped the last %llu examples (--drop-remainder)\n",
                (unsigned long long)sum.dropped);
    if (sum.unknown_keys)
        fprintf(stderr, "orchsim import: ignored %llu values of unknown keys: %s\n", (unsigned long long)sum.unknown_keys,
                sum.unknown);
    if (sum.string_ids)
        fprintf(stderr, "orchsim import: %llu string ids hashed to integers (FNV-1a 64)\n",
                (unsigned long long)sum.string_ids);
    if (sum.zero_lengths)
        fprintf(stderr, "orchsim import: %llu zero lengths read as 'no item'\n", (unsigned long long)sum.zero_lengths);
    for (uint32_t m = 1; m < nm; m++)
        if (sum.over_window[m])
            fprintf(stderr,
                    "orchsim import: warning: %llu %s items exceed the encoder's %u-position window (longest %u); "
                    "replay flags them as too long\n",
                    (unsigned long long)sum.over_window[m], mods[m].name, sum.window[m], sum.longest[m]);
fail:
    st = opts_binout_end(&bo, st); /* removes the temporary file on failure */
    return st;
}
