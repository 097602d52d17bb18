/* test_plot.c — every figure kind renders: gnuplot exits 0, the PNG exists, is non-empty and has
 * the requested pixel size (read from its IHDR chunk); data files hold what was asked. Inputs
 * are synthetic files in the documented formats (analysis/FORMATS.md). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis/plot.h"
#include "analysis/runtable.h"
#include "analysis/schema.h"
#include "helpers.h"
#include "sim/policy.h"
#include "traces/trace.h"

static int have_gnuplot(void) { return ORCHSIM_GNUPLOT[0] && access(ORCHSIM_GNUPLOT, X_OK) == 0; }
#define NEED_GNUPLOT()                                                                  \
    do {                                                                                \
        if (!have_gnuplot()) cr_skip_test("gnuplot not found at configure time: no figures"); \
    } while (0)

/* PNG: 8-byte signature, then the IHDR chunk (length, "IHDR", width BE, height BE). */
static void png_size(const char *path, uint32_t *w, uint32_t *h, long *bytes) {
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "%s was not written", path);
    unsigned char b[24];
    cr_assert_eq(fread(b, 1, 24, fp), 24, "%s is shorter than a PNG header", path);
    fseek(fp, 0, SEEK_END);
    *bytes = ftell(fp);
    fclose(fp);
    cr_assert(!memcmp(b, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG", path);
    cr_assert(!memcmp(b + 12, "IHDR", 4));
    *w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
    *h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
}

static void check_png(const PlotOptions *o, const char *kind) {
    char path[4200];
    plot_output_path(path, sizeof path, o, kind, PLOT_PNG);
    uint32_t w, h;
    long bytes;
    png_size(path, &w, &h, &bytes);
    cr_assert_eq(w, o->width, "%s: width %u", kind, w);
    cr_assert_eq(h, o->height, "%s: height %u", kind, h);
    cr_assert_gt(bytes, 5000, "%s: %ld bytes: an empty canvas?", kind, bytes);
}

static const char *outdir(const char *name) {
    const char *d = th_tmp(name);
    mkdir(d, 0777);
    return d;
}

/* ---------------------------------------------------------------- inputs */

static void write_sweep(const char *path) {
    const char *pols[] = {"none", "lpt", "post", "post-node"};
    const char *models[] = {"vl-14b", "llava-7b", "my-custom-model"};
    const uint64_t gpus[] = {64, 128, 256, 512};
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    runtable_write_header(fp);
    for (int m = 0; m < 3; m++)
        for (int g = 0; g < 4; g++)
            for (int p = 0; p < 4; p++) {
                RunRow r;
                runrow_init(&r);
                snprintf(r.policy, sizeof r.policy, "%s", pols[p]);
                snprintf(r.model, sizeof r.model, "%s", models[m]);
                snprintf(r.setup, sizeof r.setup, "fsdp");
                r.gpus = gpus[g];
                r.gpus_per_node = 8;
                r.tp = 1;
                r.dp = gpus[g];
                r.steps = 8;
                double eff = 1.0 - 0.05 * g * (p == 0 ? 2.0 : 1.0); /* none scales worse */
                r.tokens_per_s = 1e6 * (1.0 + 0.4 * p) * (double)gpus[g] / 64.0 * eff / (1 + m);
                r.step_mean_s = 1e7 / r.tokens_per_s;
                r.mfu = 0.2 + 0.05 * p - 0.02 * m;
                r.imbalance[0] = 1.5 - 0.1 * p;
                r.imbalance[3] = 1.3 - 0.07 * p;
                runtable_write_row(fp, &r);
            }
    fclose(fp);
}

static void write_steps(const char *path, const char *policy, double spread) {
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    const CsvSchema *s = schema_find("step");
    schema_write_header(fp, s);
    for (int k = 0; k < 50; k++) {
        for (size_t c = 0; c < s->n_cols; c++) {
            const char *name = s->cols[c].name;
            if (c) fputc(',', fp);
            if (!strcmp(name, "policy")) fputs(policy, fp);
            else if (!strcmp(name, "step")) fprintf(fp, "%d", k);
            else if (strstr(name, "audio_") || strstr(name, "video_")) { /* absent phases: empty */
            } else if (strstr(name, "_imbalance")) fprintf(fp, "%.6f", 1.0 + spread * ((k * 37) % 50) / 50.0);
            else fprintf(fp, "%d", 1 + k % 3);
        }
        fputc('\n', fp);
    }
    fclose(fp);
}

static void write_timeline(const char *path, int ranks, int balanced) {
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    /* the seven columns a timeline had before pipelines: stage/replica are optional on input */
    fprintf(fp, "rank,node,phase,op,kind,start_s,end_s\n");
    for (int r = 0; r < ranks; r++) {
        double img = balanced ? 0.30 : 0.1 + 0.4 * ((r * 7) % ranks) / ranks;
        double llm = balanced ? 0.60 : 0.3 + 0.6 * ((r * 13) % ranks) / ranks;
        double t = 0.0;
        if (balanced) {
            fprintf(fp, "%d,%d,balance,a2a,comm,%.4f,%.4f\n", r, r / 8, t, t + 0.02);
            t += 0.02;
        }
        fprintf(fp, "%d,%d,image,fwd,compute,%.4f,%.4f\n", r, r / 8, t, t + img);
        fprintf(fp, "%d,%d,image,wait,idle,%.4f,%.4f\n", r, r / 8, t + img, t + 0.5);
        t += 0.5;
        fprintf(fp, "%d,%d,llm,fwd,compute,%.4f,%.4f\n", r, r / 8, t, t + llm);
        fprintf(fp, "%d,%d,llm,wait,idle,%.4f,%.4f\n", r, r / 8, t + llm, t + 0.9);
        t += 0.9;
        fprintf(fp, "%d,%d,sync,allreduce,comm,%.4f,%.4f\n", r, r / 8, t, t + 0.1);
    }
    fclose(fp);
}

static void write_validate(const char *path) {
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    schema_write_header(fp, schema_find("validate"));
    for (int k = 0; k < 12; k++) {
        double m = 0.5 + 0.1 * k, p = m * (1.0 + 0.03 * ((k % 5) - 2));
        fprintf(fp, "%d,%s,%.6f,%.6f,%.6f,0.3\n", k, k % 2 ? "post" : "none", m, p, (p - m) / m);
    }
    fprintf(fp, "12,none,,0.9,,\n"); /* a step with no measurement is skipped */
    fclose(fp);
}

static void write_trace(const char *path) {
    const TraceModality mods[] = {{"text", "token", 1}, {"image", "patch", 4}, {"audio", "frame", 2}};
    TraceProvenance prov;
    memset(&prov, 0, sizeof prov);
    snprintf(prov.source, sizeof prov.source, "test_plot synthetic");
    snprintf(prov.created_by, sizeof prov.created_by, "test_plot");
    TraceWriter *w = NULL;
    cr_assert_eq(trace_writer_create(&w, path, mods, 3, &prov, 0), OS_OK, "%s", os_last_error());
    TraceStep s;
    trace_step_init(&s);
    uint64_t id = 0;
    for (int step = 0; step < 4; step++) {
        trace_step_clear(&s);
        s.index = (uint64_t)step;
        s.dp = 4;
        for (int e = 0; e < 64; e++, id++) {
            TraceItem it[2];
            uint32_t n = 0;
            if (id % 4 != 0) it[n++] = (TraceItem){(uint32_t)(256 + (id * 977) % 4000), 1};
            if (id % 3 == 0) it[n++] = (TraceItem){(uint32_t)(100 + (id * 131) % 1500), 2};
            cr_assert_eq(trace_step_push(&s, (uint32_t)(20 + (id * 53) % 900), id, it, n), OS_OK);
        }
        cr_assert_eq(trace_writer_add_step(w, &s), OS_OK, "%s", os_last_error());
    }
    trace_step_free(&s);
    cr_assert_eq(trace_writer_close(w), OS_OK, "%s", os_last_error());
}

/* ---------------------------------------------------------------- figures */

static void opts(PlotOptions *o, const char *dir) {
    plot_options_init(o);
    o->outdir = dir;
}

Test(plot, throughput_and_mfu_from_a_sweep) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-sweep");
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/sweep.csv", dir);
    write_sweep(csv);
    PlotOptions o;
    opts(&o, dir);
    const char *in[] = {csv};
    cr_assert_eq(plot_make(plot_kind_find("throughput"), &o, in, 1), OS_OK, "%s", os_last_error());
    check_png(&o, "throughput");
    cr_assert_eq(plot_make(plot_kind_find("mfu"), &o, in, 1), OS_OK, "%s", os_last_error());
    check_png(&o, "mfu");
    /* mfu.dat: models ordered by parameter count, the unresolvable one last */
    char dat[4200], line[512];
    snprintf(dat, sizeof dat, "%s/mfu.dat", dir);
    FILE *fp = fopen(dat, "r");
    cr_assert_not_null(fp);
    const char *order[3] = {0};
    static char keep[3][512];
    int n = 0;
    while (fgets(line, sizeof line, fp))
        if (line[0] == '"' && n < 3) snprintf(keep[n], 512, "%s", line), order[n] = keep[n], n++;
    fclose(fp);
    cr_assert_eq(n, 3);
    cr_assert(!strncmp(order[0], "\"llava-7b", 9) && !strncmp(order[1], "\"vl-14b", 7) &&
                  !strncmp(order[2], "\"my-custom-model (size unknown)\"", 32),
              "order: %s %s %s", order[0], order[1], order[2]);
    /* ideal line: anchored at 64 GPUs on the best policy there (post-node: 1e6*2.2/3... for model
     * vl-14b, the table's first), linear in GPUs */
    snprintf(dat, sizeof dat, "%s/throughput.dat", dir);
    fp = fopen(dat, "r");
    double ideal64 = 0, ideal512 = 0;
    int in_ideal = 0;
    while (fgets(line, sizeof line, fp)) {
        if (strstr(line, "# ideal")) in_ideal = 1;
        double g, t;
        if (in_ideal && sscanf(line, "%lf %lf", &g, &t) == 2) {
            if (g == 64) ideal64 = t;
            if (g == 512) ideal512 = t;
        }
    }
    fclose(fp);
    cr_assert(fabs(ideal64 - 1e6 * 2.2 / 1.0) < 1e-3 * ideal64, "ideal at 64 = %g", ideal64);
    cr_assert(fabs(ideal512 - 8 * ideal64) < 1e-6 * ideal512);
    /* a filter that matches nothing is an argument error naming the option */
    o.model = "no-such-model";
    os_clear_error();
    cr_assert_eq(plot_make(plot_kind_find("throughput"), &o, in, 1), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "no-such-model"), "%s", os_last_error());
    os_clear_error();
}

Test(plot, timeline_samples_many_ranks) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-timeline");
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/timeline_none.csv", dir);
    snprintf(b, sizeof b, "%s/timeline_post-node.csv", dir);
    write_timeline(a, 48, 0);
    write_timeline(b, 48, 1);
    PlotOptions o;
    opts(&o, dir);
    const char *in[] = {a, b};
    cr_assert_eq(plot_make(plot_kind_find("timeline"), &o, in, 2), OS_OK, "%s", os_last_error());
    check_png(&o, "timeline");
    /* 48 ranks, 16 shown by default: rows 0..15 only */
    char dat[4200], line[256];
    snprintf(dat, sizeof dat, "%s/timeline_1.dat", dir);
    FILE *fp = fopen(dat, "r");
    cr_assert_not_null(fp);
    int maxrow = -1;
    while (fgets(line, sizeof line, fp)) {
        int row;
        if (line[0] != '#' && sscanf(line, "%d", &row) == 1 && row > maxrow) maxrow = row;
    }
    fclose(fp);
    cr_assert_eq(maxrow, 15);
    /* one panel works too, and three are refused */
    cr_assert_eq(plot_make(plot_kind_find("timeline"), &o, in, 1), OS_OK, "%s", os_last_error());
    const char *three[] = {a, b, a};
    os_clear_error();
    cr_assert_eq(plot_make(plot_kind_find("timeline"), &o, three, 3), OS_ERR_ARG);
    os_clear_error();
}

Test(plot, imbalance_cdf_per_phase) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-cdf");
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/steps_none.csv", dir);
    snprintf(b, sizeof b, "%s/steps_post.csv", dir);
    write_steps(a, "none", 0.8);
    write_steps(b, "post", 0.05);
    PlotOptions o;
    opts(&o, dir);
    const char *in[] = {a, b};
    cr_assert_eq(plot_make(plot_kind_find("imbalance-cdf"), &o, in, 2), OS_OK, "%s", os_last_error());
    check_png(&o, "imbalance-cdf");
    /* panels only for the phases with values: image and llm here, not audio/video */
    char p[4200];
    snprintf(p, sizeof p, "%s/imbalance_cdf_image.dat", dir);
    cr_assert(th_exists(p));
    snprintf(p, sizeof p, "%s/imbalance_cdf_audio.dat", dir);
    cr_assert(!th_exists(p));
    /* each policy's CDF ends at 1 */
    snprintf(p, sizeof p, "%s/imbalance_cdf_llm.dat", dir);
    FILE *fp = fopen(p, "r");
    char line[256];
    int ones = 0;
    double x, f;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "%lf %lf", &x, &f) == 2 && f == 1.0) ones++;
    fclose(fp);
    cr_assert_eq(ones, 2);
}

Test(plot, validate_scatter) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-validate");
    char v[4200];
    snprintf(v, sizeof v, "%s/validate.csv", dir);
    write_validate(v);
    PlotOptions o;
    opts(&o, dir);
    o.formats = PLOT_PNG | PLOT_SVG | PLOT_PDF;
    const char *in[] = {v};
    cr_assert_eq(plot_make(plot_kind_find("validate"), &o, in, 1), OS_OK, "%s", os_last_error());
    check_png(&o, "validate");
    char p[4200];
    struct stat sb;
    plot_output_path(p, sizeof p, &o, "validate", PLOT_SVG);
    cr_assert(stat(p, &sb) == 0 && sb.st_size > 1000, "svg missing");
    plot_output_path(p, sizeof p, &o, "validate", PLOT_PDF);
    cr_assert(stat(p, &sb) == 0 && sb.st_size > 1000, "pdf missing");
    FILE *fp = fopen(p, "rb");
    char head[5] = {0};
    cr_assert_eq(fread(head, 1, 4, fp), 4);
    fclose(fp);
    cr_assert_str_eq(head, "%PDF");
}

Test(plot, composition_of_a_trace) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-comp");
    char t[4200];
    snprintf(t, sizeof t, "%s/tiny.h5", dir);
    write_trace(t);
    PlotOptions o;
    opts(&o, dir);
    o.max_points = 100; /* 256 examples: the reservoir keeps 100 */
    o.width = 640;
    o.height = 480;
    const char *in[] = {t};
    cr_assert_eq(plot_make(plot_kind_find("composition"), &o, in, 1), OS_OK, "%s", os_last_error());
    check_png(&o, "composition");
    char p[4200], line[256];
    snprintf(p, sizeof p, "%s/composition.dat", dir);
    FILE *fp = fopen(p, "r");
    int rows = 0;
    while (fgets(line, sizeof line, fp)) rows += line[0] != '#';
    fclose(fp);
    cr_assert_eq(rows, 100);
}

Test(plot, errors_and_options) {
    unsigned m;
    cr_assert_eq(plot_parse_formats(&m, "png,pdf"), OS_OK);
    cr_assert_eq(m, PLOT_PNG | PLOT_PDF);
    os_clear_error();
    cr_assert_eq(plot_parse_formats(&m, "png,gif"), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "gif"));
    os_clear_error();
    cr_assert_null(plot_kind_find("pie"));
    const char *kinds[] = {"throughput", "policies", "mfu", "timeline", "imbalance-cdf", "validate", "composition",
                           "fidelity"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        cr_assert_not_null(plot_kind_find(kinds[i]), "%s is not registered", kinds[i]);
    cr_assert_geq(plot_kind_count(), sizeof kinds / sizeof kinds[0]);
    PlotOptions o;
    opts(&o, outdir("plot-err"));
    o.gnuplot = "/nonexistent/gnuplot";
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/sweep.csv", o.outdir);
    write_sweep(csv);
    const char *in[] = {csv};
    cr_assert_eq(plot_make(plot_kind_find("throughput"), &o, in, 1), OS_ERR_NODEV);
    os_clear_error();
    /* a bad input names the file */
    plot_options_init(&o);
    o.outdir = outdir("plot-err");
    const char *bad[] = {"/nonexistent/sweep.csv"};
    cr_assert_neq(plot_make(plot_kind_find("mfu"), &o, bad, 1), OS_OK);
    cr_assert(strstr(os_last_error(), "/nonexistent/sweep.csv"));
    os_clear_error();
}

Test(plot, cli_plot_all) {
    NEED_GNUPLOT();
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    const char *dir = outdir("plot-cli");
    char sweep[4200], steps[4200], tl[4200], args[16384], *out = NULL;
    snprintf(sweep, sizeof sweep, "%s/sweep.csv", dir);
    snprintf(steps, sizeof steps, "%s/steps_none.csv", dir);
    snprintf(tl, sizeof tl, "%s/timeline_none.csv", dir);
    write_sweep(sweep);
    write_steps(steps, "none", 0.5);
    write_timeline(tl, 8, 0);
    snprintf(args, sizeof args, "plot all --sweep %s --steps %s --timeline %s -o %s/figs --size 800x600", sweep,
             steps, tl, dir);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "orchsim %s -> %d: %s", args, rc, out);
    free(out);
    PlotOptions o;
    plot_options_init(&o);
    char figs[4200];
    snprintf(figs, sizeof figs, "%s/figs", dir);
    o.outdir = figs;
    o.width = 800;
    o.height = 600;
    check_png(&o, "throughput");
    check_png(&o, "mfu");
    check_png(&o, "imbalance-cdf");
    check_png(&o, "timeline");
    snprintf(args, sizeof args, "plot pie %s -o %s", sweep, dir);
    rc = th_run(&out, args);
    cr_assert_eq(rc, 2);
    cr_assert(strstr(out, "unknown figure kind"), "%s", out);
    free(out);
}

/* ---------------------------------------------------------------- item 7: what every figure promises */

/* The slowest and the fastest rank are always rows, marked, whatever the sampling; the panel
 * is titled from the file's "# key: value" lines (policy, step, model, GPUs). */
Test(plot, timeline_shows_and_marks_the_extremes) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-tl-extremes");
    char a[4200];
    snprintf(a, sizeof a, "%s/timeline_lpt.csv", dir);
    /* 40 ranks: compute 1.0 s each except rank 29 (9.0 s, the straggler) and rank 13 (0.2 s);
     * neither is among 8 evenly spaced ranks (0, 5, 11, 16, 22, 27, 33, 39) */
    FILE *fp = fopen(a, "w");
    cr_assert_not_null(fp);
    char meta[512];
    plot_timeline_meta(meta, sizeof meta, "lpt", 12, "vl-14b", 320);
    fputs(meta, fp);
    fprintf(fp, "rank,node,phase,op,kind,start_s,end_s\n");
    for (int r = 0; r < 40; r++) {
        double c = r == 29 ? 9.0 : r == 13 ? 0.2 : 1.0;
        fprintf(fp, "%d,%d,llm,fwd,compute,0,%.3f\n%d,%d,llm,wait,idle,%.3f,9.5\n", r, r / 8, c, r, r / 8, c);
    }
    fclose(fp);
    PlotOptions o;
    opts(&o, dir);
    o.max_ranks = 8;
    const char *in[] = {a};
    cr_assert_eq(plot_make(plot_kind_find("timeline"), &o, in, 1), OS_OK, "%s", os_last_error());
    check_png(&o, "timeline");
    /* 8 rows: the marks file names the slowest's and fastest's rows and compute */
    char p[4200], line[512];
    snprintf(p, sizeof p, "%s/timeline_1_marks.dat", dir);
    fp = fopen(p, "r");
    cr_assert_not_null(fp);
    int rows[2] = {-1, -1}, k = 0;
    char text[2][256] = {"", ""};
    while (fgets(line, sizeof line, fp))
        if (line[0] != '#' && k < 2 && sscanf(line, "%d \"%255[^\"]\"", &rows[k], text[k]) == 2) k++;
    fclose(fp);
    cr_assert_eq(k, 2);
    cr_assert_str_eq(text[0], "slowest: 9.000 s compute");
    cr_assert_str_eq(text[1], "fastest: 0.200 s compute");
    /* rows are in rank order; with 8 rows the straggler 29 and rank 13 replaced their nearest
     * evenly spaced neighbours (27 and 11): rows 0 5 13 16 22 29 33 39 -> 29 is row 5, 13 row 2 */
    cr_assert_eq(rows[0], 5);
    cr_assert_eq(rows[1], 2);
    int maxrow = -1;
    snprintf(p, sizeof p, "%s/timeline_1.dat", dir);
    fp = fopen(p, "r");
    while (fgets(line, sizeof line, fp)) {
        int row;
        if (line[0] != '#' && sscanf(line, "%d", &row) == 1 && row > maxrow) maxrow = row;
    }
    fclose(fp);
    cr_assert_eq(maxrow, 7, "still max_ranks rows");
}

/* Policies in one order (the registry's, then megatron, the oracle, other names), each with its
 * own colour, dash type and point type, whatever order the input lists them in. */
Test(plot, one_policy_order_and_distinct_styles) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-order");
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/steps_b.csv", dir);
    snprintf(b, sizeof b, "%s/steps_a.csv", dir);
    write_steps(a, "post-node", 0.05); /* the files in anti-registry order */
    write_steps(b, "none", 0.8);
    PlotOptions o;
    opts(&o, dir);
    const char *in[] = {a, b};
    cr_assert_eq(plot_make(plot_kind_find("imbalance-cdf"), &o, in, 2), OS_OK, "%s", os_last_error());
    char p[4200], line[256], first[64] = "";
    snprintf(p, sizeof p, "%s/imbalance_cdf_llm.dat", dir);
    FILE *fp = fopen(p, "r");
    while (fgets(line, sizeof line, fp))
        if (!first[0] && sscanf(line, "# policy %63[^:]", first) == 1) break;
    fclose(fp);
    cr_assert_str_eq(first, "none", "none is drawn first (registry order), not post-node");
    /* styles: every registry policy, megatron and the oracle differ in colour, dash and point */
    const char *names[40];
    int n = 0;
    for (uint32_t i = 0; i < policy_count(); i++) names[n++] = policy_at(i)->name;
    names[n++] = "megatron";
    names[n++] = "oracle";
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const char *ci, *cj;
            int di, dj, pi, pj;
            plot_policy_style(names[i], &ci, &di, &pi);
            plot_policy_style(names[j], &cj, &dj, &pj);
            cr_assert(strcmp(ci, cj), "%s and %s share a colour", names[i], names[j]);
            cr_assert(di != dj || pi != pj, "%s and %s share dash and point type", names[i], names[j]);
            cr_assert_neq(pi, pj, "%s and %s share a point type", names[i], names[j]);
        }
    const char *mixed[] = {"zeta", "oracle", "post", "megatron", "none", "alpha", "lpt"};
    plot_sort_policies(mixed, 7);
    const char *want[] = {"none", "lpt", "post", "megatron", "oracle", "alpha", "zeta"};
    for (int i = 0; i < 7; i++) cr_assert_str_eq(mixed[i], want[i]);
}

/* A table with one GPU count draws bars (no column of dots with an "ideal" line of one point). */
Test(plot, single_count_throughput_is_bars) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-one-count");
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/one.csv", dir);
    FILE *fp = fopen(csv, "w");
    runtable_write_header(fp);
    const char *pols[] = {"post-node", "none", "lpt"};
    for (int p = 0; p < 3; p++) {
        RunRow r;
        runrow_init(&r);
        snprintf(r.policy, sizeof r.policy, "%s", pols[p]);
        snprintf(r.model, sizeof r.model, "tiny");
        snprintf(r.setup, sizeof r.setup, "fsdp");
        r.gpus = 64;
        r.gpus_per_node = 8;
        r.tp = 1;
        r.dp = 64;
        r.steps = 2;
        r.tokens_per_s = 1e6 * (1 + p);
        r.step_mean_s = 1.0 / (1 + p);
        runtable_write_row(fp, &r);
    }
    fclose(fp);
    PlotOptions o;
    opts(&o, dir);
    const char *in[] = {csv};
    cr_assert_eq(plot_make(plot_kind_find("throughput"), &o, in, 1), OS_OK, "%s", os_last_error());
    check_png(&o, "throughput");
    char p[4200], line[256];
    snprintf(p, sizeof p, "%s/throughput.dat", dir);
    fp = fopen(p, "r");
    int bars = 0, ideal = 0;
    char order[3][32];
    while (fgets(line, sizeof line, fp)) {
        ideal |= strstr(line, "ideal") != NULL;
        double tps;
        if (line[0] == '"' && bars < 3 && sscanf(line, "\"%31[^\"]\" %lf", order[bars], &tps) == 2) bars++;
    }
    fclose(fp);
    cr_assert_eq(bars, 3);
    cr_assert(!ideal, "no ideal-scaling line from one GPU count");
    cr_assert_str_eq(order[0], "none");
    cr_assert_str_eq(order[1], "lpt");
    cr_assert_str_eq(order[2], "post-node");
}

/* The policies figure (compare/advise CSV): bars in policy order, the oracle as a line. */
Test(plot, policies_figure_from_a_compare_table) {
    NEED_GNUPLOT();
    const char *dir = outdir("plot-policies");
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/cmp.csv", dir);
    FILE *fp = fopen(csv, "w");
    runtable_write_header(fp);
    const char *pols[] = {"post", "none", "oracle"};
    for (int p = 0; p < 3; p++) {
        RunRow r;
        runrow_init(&r);
        snprintf(r.policy, sizeof r.policy, "%s", pols[p]);
        snprintf(r.model, sizeof r.model, "tiny");
        snprintf(r.setup, sizeof r.setup, "fsdp");
        r.gpus = 16;
        r.gpus_per_node = 8;
        r.tp = 1;
        r.dp = 16;
        r.steps = 3;
        r.step_mean_s = 3.0 - p;
        r.step_ci95_s = p == 2 ? NAN : 0.1;
        runtable_write_row(fp, &r);
    }
    fclose(fp);
    PlotOptions o;
    opts(&o, dir);
    const char *in[] = {csv};
    cr_assert_eq(plot_make(plot_kind_find("policies"), &o, in, 1), OS_OK, "%s", os_last_error());
    check_png(&o, "policies");
    char p[4200], line[256], name[2][32];
    snprintf(p, sizeof p, "%s/policies.dat", dir);
    fp = fopen(p, "r");
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        int idx;
        if (line[0] != '#' && n < 2 && sscanf(line, "%d \"%31[^\"]\"", &idx, name[n]) == 2) n++;
    }
    fclose(fp);
    cr_assert_eq(n, 2, "two policies; the oracle is the line, not a bar");
    cr_assert_str_eq(name[0], "none");
    cr_assert_str_eq(name[1], "post");
}
