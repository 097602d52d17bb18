/* cmd_plot.c — `orchsim plot KIND inputs... -o OUTDIR`: paper-style figures (analysis/plot.h). */
#include <stdio.h>
#include <string.h>

#include "analysis/plot.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "base/util.h"

#define PLOT_MAX_INPUTS 64

static OsStatus parse_size(uint32_t *w, uint32_t *h, const char *s) {
    unsigned a = 0, b = 0;
    char tail = 0;
    if (sscanf(s, "%ux%u%c", &a, &b, &tail) != 2)
        return os_fail(OS_ERR_ARG, "--size", NULL, "e.g. --size 1600x900", "'%s' is not WIDTHxHEIGHT", s);
    *w = a;
    *h = b;
    return OS_OK;
}

static OsStatus draw(const PlotKind *k, const PlotOptions *o, const char *const *in, int n) {
    OsStatus st = OS_OK;
    OS_CHECK(plot_make(k, o, in, n));
    for (unsigned f = PLOT_PNG; f <= PLOT_PDF; f <<= 1) {
        if (!(o->formats & f)) continue;
        char path[4200];
        plot_output_path(path, sizeof path, o, k->name, f);
        printf("wrote %s\n", path);
    }
fail:
    return st;
}

/* `plot all`: every figure whose input was given, one after another. */
static OsStatus draw_all(const PlotOptions *o, const char *sweep, char *steps, char *timeline,
                         const char *trace, const char *validate) {
    OsStatus st = OS_OK;
    char *parts[PLOT_MAX_INPUTS];
    int drawn = 0;
    if (sweep) {
        OS_CHECK(draw(plot_kind_find("throughput"), o, &sweep, 1));
        OS_CHECK(draw(plot_kind_find("mfu"), o, &sweep, 1));
        drawn += 2;
    }
    if (steps) {
        int n = opts_split(steps, parts, PLOT_MAX_INPUTS);
        OS_CHECK(draw(plot_kind_find("imbalance-cdf"), o, (const char *const *)parts, n));
        drawn++;
    }
    if (timeline) {
        int n = opts_split(timeline, parts, PLOT_MAX_INPUTS);
        OS_CHECK(draw(plot_kind_find("timeline"), o, (const char *const *)parts, n));
        drawn++;
    }
    if (trace) {
        OS_CHECK(draw(plot_kind_find("composition"), o, &trace, 1));
        drawn++;
    }
    if (validate) {
        OS_CHECK(draw(plot_kind_find("validate"), o, &validate, 1));
        drawn++;
    }
    if (!drawn)
        OS_FAIL(OS_ERR_ARG, "plot all", NULL, "give --sweep, --steps, --timeline, --trace and/or --validate",
                "no inputs");
fail:
    return st;
}

OsStatus cmd_plot(int argc, char **argv) {
    OsStatus st = OS_OK;
    PlotOptions o;
    plot_options_init(&o);
    const char *formats = "png", *size = NULL, *sweep = NULL, *steps = NULL, *timeline = NULL,
               *trace = NULL, *validate = NULL;
    uint64_t seed = o.seed;
    const OptSpec specs[] = {
        OPTS_ROW_OUTPUT(&o.outdir, "OUTDIR", "folder for the figures and their .dat files"),
        {"format", 'f', OPT_STR, &formats, "LIST", "png, svg and/or pdf, comma-separated", 0, 0},
        {"size", 0, OPT_STR, &size, "WxH", "figure size in pixels (pdf: W/100 x H/100 inches); default 1200x800", 0, 0},
        {"model", 'm', OPT_STR, &o.model, "NAME", "throughput: the model to draw (default: the table's first)", 0, 0},
        {"setup", 0, OPT_STR, &o.setup, "NAME", "throughput/mfu: ddp or fsdp (default: the table's first)", 0, 0},
        {"gpus", 'g', OPT_U32, &o.gpus, "N", "mfu: the GPU count to compare models at (0 = the largest)", 0, 0},
        {"max-ranks", 0, OPT_U32, &o.max_ranks, "N", "timeline: ranks drawn at most (evenly sampled)", 1, 4096},
        {"max-points", 0, OPT_U32, &o.max_points, "N", "composition: examples drawn at most", 1, 10000000},
        {"seed", 's', OPT_U64, &seed, "S", "composition: sample seed", 0, 0},
        {"sweep", 0, OPT_STR, &sweep, "FILE", "plot all: run-level CSV (throughput, mfu)", 0, 0},
        {"steps", 0, OPT_STR, &steps, "A,B,..", "plot all: step-level CSVs (imbalance-cdf)", 0, 0},
        {"timeline", 0, OPT_STR, &timeline, "A[,B]", "plot all: timeline CSVs (timeline)", 0, 0},
        {"trace", 0, OPT_STR, &trace, "FILE", "plot all: trace (composition)", 0, 0},
        {"validate", 0, OPT_STR, &validate, "FILE", "plot all: validate CSV (validate)", 0, 0},
    };
    static char details[2048];
    size_t k = (size_t)snprintf(details, sizeof details, "kinds:\n");
    for (uint32_t i = 0; i < plot_kind_count() && k < sizeof details; i++) {
        const PlotKind *pk = plot_kind_at(i);
        k += (size_t)snprintf(details + k, sizeof details - k, "  %-14s %-16s %s\n", pk->name, pk->inputs, pk->desc);
    }
    if (k < sizeof details)
        snprintf(details + k, sizeof details - k,
                 "  %-14s %-16s every figure whose input option is given\n\n"
                 "Each figure is OUTDIR/<kind>.<format>; the numbers it shows are in OUTDIR/*.dat and the\n"
                 "gnuplot script is plots/<kind>.gp (set ORCHSIM_PLOTS_DIR to use an edited copy).\n"
                 "Input formats: analysis/FORMATS.md.",
                 "all", "(options)");
    const CmdHelp help = {"plot", "orchsim plot KIND INPUT... -o OUTDIR [options]",
                          "draw paper-style figures of sweeps, steps, timelines, validation and traces", details};
    const char *pos[PLOT_MAX_INPUTS + 1];
    int np = 0;
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 1, PLOT_MAX_INPUTS + 1, &np));
    o.seed = seed;
    OS_CHECK(plot_parse_formats(&o.formats, formats));
    if (size) OS_CHECK(parse_size(&o.width, &o.height, size));
    if (!o.outdir) OS_FAIL(OS_ERR_ARG, "plot", "-o", "add -o OUTDIR", "no output folder given");
    if (!strcmp(o.outdir, "-"))
        OS_FAIL(OS_ERR_ARG, "--output", "-", "give a folder name", "is a folder of figures: it cannot be standard output");
    if (!strcmp(pos[0], "all")) {
        if (np > 1) OS_FAIL(OS_ERR_ARG, "plot all", pos[1], "give inputs with --sweep/--steps/...", "unexpected argument");
        OS_CHECK(draw_all(&o, sweep, (char *)steps, (char *)timeline, trace, validate));
    } else {
        const PlotKind *pk = plot_kind_find(pos[0]);
        if (!pk) OS_FAIL(OS_ERR_ARG, "plot", pos[0], "see 'orchsim plot --help' for the kinds", "unknown figure kind");
        OS_CHECK(draw(pk, &o, pos + 1, np - 1));
    }
fail:
    return st;
}
