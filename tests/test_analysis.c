/* test_analysis.c — analysis/stats, csv, schema (against FORMATS.md) and runtable, on
 * hand-computed cases and invariants. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "analysis/runtable.h"
#include "analysis/schema.h"
#include "analysis/stats.h"
#include "helpers.h"

#define NEAR(a, b, tol) cr_assert(fabs((a) - (b)) <= (tol), "%s = %.12g, expected %.12g", #a, (double)(a), (double)(b))

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp, "cannot write %s", path);
    fputs(text, fp);
    fclose(fp);
}

/* ---------------------------------------------------------------- stats */

Test(stats, mean_ci_of_one_to_five) {
    const double x[] = {1, 2, 3, 4, 5};
    double mean, half;
    cr_assert_eq(stats_mean_ci(&mean, &half, x, 5, 0.95), OS_OK);
    NEAR(mean, 3.0, 1e-12);
    /* s = sqrt(2.5); t(0.975, 4) = 2.776445105; half = t * s / sqrt(5) */
    NEAR(half, 2.776445105 * sqrt(2.5) / sqrt(5.0), 1e-8);
    NEAR(half, 1.963243, 1e-6);
}

Test(stats, mean_ci_edge_cases) {
    const double one[] = {7.5};
    double mean, half;
    cr_assert_eq(stats_mean_ci(&mean, &half, one, 1, 0.95), OS_OK);
    NEAR(mean, 7.5, 0);
    cr_assert(isnan(half), "one sample has no confidence interval, got %g", half);
    os_clear_error();
    cr_assert_eq(stats_mean_ci(&mean, &half, one, 0, 0.95), OS_ERR_ARG);
    os_clear_error();
    cr_assert_eq(stats_mean_ci(&mean, &half, one, 1, 1.5), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "level") != NULL);
    os_clear_error();
    /* a constant series has zero spread */
    const double c[] = {2, 2, 2, 2};
    cr_assert_eq(stats_mean_ci(&mean, &half, c, 4, 0.99), OS_OK);
    NEAR(half, 0.0, 1e-15);
}

Test(stats, quantiles_hand_computed) {
    const double x[] = {5, 1, 4, 2, 3};
    const double p[] = {0.0, 0.25, 0.5, 0.9, 1.0};
    double q[5], scratch[5];
    cr_assert_eq(stats_quantiles(q, p, 5, x, 5, scratch), OS_OK);
    NEAR(q[0], 1.0, 1e-12);
    NEAR(q[1], 2.0, 1e-12);
    NEAR(q[2], 3.0, 1e-12);
    NEAR(q[3], 4.6, 1e-12); /* position (5-1)*0.9 = 3.6 between 4 and 5 */
    NEAR(q[4], 5.0, 1e-12);
    NEAR(x[0], 5.0, 0); /* input untouched when scratch is separate */
}

Test(stats, quantiles_match_reference_twin) {
    double x[97], s[97];
    unsigned seed = 12345;
    for (int i = 0; i < 97; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (double)(seed >> 16 & 0x3ff) / 7.0; /* ties included */
    }
    for (double p = 0.0; p <= 1.0; p += 0.01) {
        double q;
        cr_assert_eq(stats_quantiles(&q, &p, 1, x, 97, s), OS_OK);
        double r = stats_quantile_ref(x, 97, p);
        NEAR(q, r, 1e-9 + 1e-12 * fabs(r));
    }
}

Test(stats, ecdf_points_and_twin) {
    const double x[] = {3, 1, 2, 2};
    double xs[4], ps[4];
    cr_assert_eq(stats_ecdf(xs, ps, x, 4), OS_OK);
    const double ex[] = {1, 2, 2, 3}, ep[] = {0.25, 0.5, 0.75, 1.0};
    for (int i = 0; i < 4; i++) {
        NEAR(xs[i], ex[i], 0);
        NEAR(ps[i], ep[i], 1e-15);
    }
    /* read as a step function, the last point of each tie group is F(x) */
    NEAR(stats_ecdf_ref(x, 4, 2.0), 0.75, 1e-15);
    NEAR(stats_ecdf_ref(x, 4, 0.5), 0.0, 0);
    /* twin on a larger random series: F(xs[i]) >= ps[i], equal at the last of each tie group */
    double y[200], ys[200], yp[200];
    unsigned seed = 7;
    for (int i = 0; i < 200; i++) {
        seed = seed * 1664525u + 1013904223u;
        y[i] = (double)(seed >> 20);
    }
    cr_assert_eq(stats_ecdf(ys, yp, y, 200), OS_OK);
    for (int i = 0; i < 200; i++) {
        double f = stats_ecdf_ref(y, 200, ys[i]);
        cr_assert(f >= yp[i] - 1e-12);
        if (i == 199 || ys[i + 1] > ys[i]) NEAR(f, yp[i], 1e-12);
    }
}

Test(stats, imbalance_and_idle) {
    const double load[] = {1, 2, 3};
    NEAR(stats_imbalance(load, 3), 1.5, 1e-15);
    const double zero[] = {0, 0};
    NEAR(stats_imbalance(zero, 2), 1.0, 0);
    const double even[] = {4, 4, 4, 4};
    NEAR(stats_imbalance(even, 4), 1.0, 0);
    /* span = slowest rank (3): idle 2 + 1 + 0 over 3 * 3 */
    NEAR(stats_idle_frac(load, 3, 0.0), 1.0 / 3.0, 1e-15);
    /* explicit span 4: idle 3 + 2 + 1 over 3 * 4 */
    NEAR(stats_idle_frac(load, 3, 4.0), 0.5, 1e-15);
    NEAR(stats_idle_frac(zero, 2, 0.0), 0.0, 0);
}

Test(stats, scaling_efficiency) {
    /* smallest count is not first: the reference is found by value */
    const double gpus[] = {256, 64, 128}, tput[] = {340, 100, 190};
    double eff[3];
    cr_assert_eq(stats_scaling_eff(eff, gpus, tput, 3), OS_OK);
    NEAR(eff[0], 3.4 / 4.0, 1e-12);
    NEAR(eff[1], 1.0, 1e-12);
    NEAR(eff[2], 1.9 / 2.0, 1e-12);
    const double bad[] = {0, 1};
    os_clear_error();
    cr_assert_eq(stats_scaling_eff(eff, bad, tput, 2), OS_ERR_ARG);
    os_clear_error();
}

Test(stats, prediction_error_exact_lines) {
    PredError e;
    const double p1[] = {1, 2, 4}, m1[] = {1, 2, 4};
    cr_assert_eq(stats_pred_error(&e, p1, m1, 3), OS_OK);
    NEAR(e.mape, 0.0, 1e-15);
    NEAR(e.max_abs_err, 0.0, 1e-15);
    NEAR(e.fit_a, 0.0, 1e-12);
    NEAR(e.fit_b, 1.0, 1e-12);
    NEAR(e.r2, 1.0, 1e-12);
    /* measured = 0.5 + 2 * predicted exactly */
    const double p2[] = {1, 2, 3}, m2[] = {2.5, 4.5, 6.5};
    cr_assert_eq(stats_pred_error(&e, p2, m2, 3), OS_OK);
    NEAR(e.fit_a, 0.5, 1e-12);
    NEAR(e.fit_b, 2.0, 1e-12);
    NEAR(e.r2, 1.0, 1e-12);
    double mape = (1.5 / 2.5 + 2.5 / 4.5 + 3.5 / 6.5) / 3.0;
    NEAR(e.mape, mape, 1e-12);
    NEAR(e.mean_err, -mape, 1e-12);
    NEAR(e.max_abs_err, 0.6, 1e-12);
    cr_assert_eq(e.n, 3);
}

Test(stats, prediction_error_noisy_fit) {
    /* points around y = x with residuals +-0.1: slope and intercept by the normal equations */
    const double p[] = {1, 2, 3, 4}, m[] = {1.1, 1.9, 3.1, 3.9};
    PredError e;
    cr_assert_eq(stats_pred_error(&e, p, m, 4), OS_OK);
    /* xbar 2.5, ybar 2.5, Sxy = 1.5*1.4 + 0.5*0.6 + 0.5*0.6 + 1.5*1.4 = 4.8, Sxx = 5 */
    NEAR(e.fit_b, 0.96, 1e-12);
    NEAR(e.fit_a, 2.5 - 0.96 * 2.5, 1e-12);
    /* SStot = 1.4^2*2 + 0.6^2*2 = 4.64; SSres = SStot - b*Sxy = 4.64 - 4.608 */
    NEAR(e.r2, 1.0 - (4.64 - 4.608) / 4.64, 1e-9);
    os_clear_error();
    const double bad[] = {0, 1};
    cr_assert_eq(stats_pred_error(&e, p, bad, 2), OS_ERR_ARG);
    os_clear_error();
}

/* ---------------------------------------------------------------- csv */

Test(csv, reads_header_numbers_quotes_and_empties) {
    const char *path = th_tmp("t1.csv");
    write_file(path, "# a comment line\n"
                     "name,x,y\r\n"
                     "\n"
                     "a,1.5,\n"
                     "\"b, quoted \"\"q\"\"\",2e3,-4\n");
    CsvTable *t = NULL;
    cr_assert_eq(csv_read(&t, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(csv_n_rows(t), 2);
    cr_assert_eq(csv_n_cols(t), 3);
    cr_assert_eq(csv_col(t, "y"), 2);
    cr_assert_eq(csv_col(t, "nope"), -1);
    cr_assert_str_eq(csv_str(t, 1, 0), "b, quoted \"q\"");
    double v;
    cr_assert_eq(csv_num(&v, t, 0, 1), OS_OK);
    NEAR(v, 1.5, 0);
    cr_assert_eq(csv_num(&v, t, 0, 2), OS_OK);
    cr_assert(isnan(v), "an empty cell reads as absent (NaN)");
    cr_assert_eq(csv_num(&v, t, 1, 1), OS_OK);
    NEAR(v, 2000.0, 0);
    cr_assert_eq(csv_line(t, 1), 5);
    csv_destroy(t);
}

Test(csv, errors_name_file_line_and_column) {
    const char *path = th_tmp("t2.csv");
    write_file(path, "a,b\n1,2\n3,oops\n");
    CsvTable *t = NULL;
    cr_assert_eq(csv_read(&t, path), OS_OK);
    double v;
    os_clear_error();
    cr_assert_eq(csv_num(&v, t, 1, 1), OS_ERR_FORMAT);
    const char *e = os_last_error();
    cr_assert(strstr(e, path) && strstr(e, "line 3") && strstr(e, "column 2") && strstr(e, "(b)") &&
                  strstr(e, "oops"),
              "error was: %s", e);
    os_clear_error();
    int c;
    cr_assert_eq(csv_require(&c, t, "missing_col"), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "missing_col") && strstr(os_last_error(), path));
    os_clear_error();
    csv_destroy(t);

    write_file(path, "a,b,c\n1,2,3\n4,5\n");
    cr_assert_eq(csv_read(&t, path), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "line 3") && strstr(os_last_error(), "2 fields"), "%s", os_last_error());
    cr_assert_null(t);
    os_clear_error();

    write_file(path, "a,b\n\"open,2\n");
    cr_assert_eq(csv_read(&t, path), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "unterminated"), "%s", os_last_error());
    os_clear_error();

    cr_assert_eq(csv_read(&t, th_tmp("does-not-exist.csv")), OS_ERR_IO);
    os_clear_error();
    write_file(path, "# only a comment\n");
    cr_assert_eq(csv_read(&t, path), OS_ERR_FORMAT);
    os_clear_error();
}

/* Markdown pipe tables: cells trimmed, escaped bars kept, the first table's header the header,
 * later tables with the same header appended (their header and delimiter rows not data), a
 * table with another header left out and counted, prose and headings ignored, CRLF accepted;
 * a short row names its line; a file without a table is an error. */
static int want_k(const char *const *names, size_t n, void *arg) {
    (void)arg;
    return n > 0 && !strcmp(names[0], "k");
}

Test(csv, reads_markdown_pipe_tables) {
    const char *path = th_tmp("t.md");
    write_file(path, "# Title\n\nprose | not a table\n\n"
                     "| name | x |\r\n"
                     "|:-----|--:|\r\n"
                     "|  a b | 1 |\r\n"
                     "| c \\| d | 2e3 |\n"
                     "\n## Other\n"
                     "| k | v | w |\n|---|---|---|\n| 1 | 2 | 3 |\n\n"
                     "name | x\n--- | ---\n"
                     "e | |\n");
    CsvTable *t = NULL;
    cr_assert_eq(csv_read(&t, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(csv_n_cols(t), 2u);
    cr_assert_eq(csv_n_rows(t), 3u);
    cr_assert_eq(csv_n_skipped(t), 1u);
    cr_assert_str_eq(csv_col_name(t, 1), "x");
    cr_assert_str_eq(csv_str(t, 0, 0), "a b");
    cr_assert_str_eq(csv_str(t, 1, 0), "c | d");
    cr_assert_str_eq(csv_str(t, 2, 0), "e");
    double v;
    cr_assert_eq(csv_num(&v, t, 1, 1), OS_OK);
    NEAR(v, 2000.0, 0);
    cr_assert_eq(csv_num(&v, t, 2, 1), OS_OK);
    cr_assert(isnan(v), "an empty cell reads as absent");
    cr_assert_eq(csv_line(t, 0), 7u);
    cr_assert_eq(csv_line(t, 2), 17u);
    csv_destroy(t);

    /* a caller's header test: the first table it takes is the header; tables before are left out */
    cr_assert_eq(csv_read_where(&t, path, want_k, NULL), OS_OK, "%s", os_last_error());
    cr_assert_eq(csv_n_rows(t), 1u);
    cr_assert_str_eq(csv_str(t, 0, 2), "3");
    cr_assert_eq(csv_n_skipped(t), 2u, "the name/x tables, before and after");
    csv_destroy(t);

    write_file(path, "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |\n");
    cr_assert_eq(csv_read(&t, path), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "line 4") && strstr(os_last_error(), "1 cells"), "%s", os_last_error());
    os_clear_error();
    write_file(path, "no table here\n| a | b |\n");
    cr_assert_eq(csv_read(&t, path), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "no markdown table"), "%s", os_last_error());
    os_clear_error();
}

Test(csv, writer_round_trips) {
    const char *path = th_tmp("t3.csv");
    FILE *fp = fopen(path, "w");
    csv_put_str(fp, "label", 1);
    csv_put_str(fp, "value", 0);
    csv_put_str(fp, "count", 0);
    csv_end_row(fp);
    csv_put_str(fp, "has,comma \"and quote\"", 1);
    csv_put_f64(fp, 0.1 + 0.2, 0);
    csv_put_u64(fp, 18446744073709551615ull, 0);
    csv_end_row(fp);
    csv_put_str(fp, "absent", 1);
    csv_put_f64(fp, NAN, 0);
    csv_put_u64(fp, 0, 0);
    csv_end_row(fp);
    fclose(fp);
    CsvTable *t = NULL;
    cr_assert_eq(csv_read(&t, path), OS_OK, "%s", os_last_error());
    cr_assert_str_eq(csv_str(t, 0, 0), "has,comma \"and quote\"");
    double v;
    cr_assert_eq(csv_num(&v, t, 0, 1), OS_OK);
    NEAR(v, 0.3, 1e-9);
    cr_assert_str_eq(csv_str(t, 1, 1), "");
    cr_assert_str_eq(csv_str(t, 0, 2), "18446744073709551615");
    csv_destroy(t);
}

/* ---------------------------------------------------------------- schema vs FORMATS.md */

/* Parse the table under "## ... (`name`)" in FORMATS.md into names/units. */
static size_t doc_table(char names[][64], char units[][32], size_t cap, const char *schema) {
    FILE *fp = fopen(ORCHSIM_SRC "/analysis/FORMATS.md", "r");
    cr_assert_not_null(fp, "analysis/FORMATS.md missing");
    char line[1024], tag[80];
    snprintf(tag, sizeof tag, "(`%s`)", schema);
    int in = 0;
    size_t n = 0;
    while (fgets(line, sizeof line, fp)) {
        if (!strncmp(line, "## ", 3)) {
            if (in) break;
            in = strstr(line, tag) != NULL;
            continue;
        }
        if (!in || strncmp(line, "| `", 3)) continue;
        char *name = line + 3, *end = strchr(name, '`');
        cr_assert_not_null(end);
        *end = '\0';
        char *unit = strchr(end + 1, '|');
        cr_assert_not_null(unit);
        unit++;
        while (*unit == ' ') unit++;
        char *ue = strchr(unit, '|');
        cr_assert_not_null(ue);
        while (ue > unit && ue[-1] == ' ') ue--;
        *ue = '\0';
        cr_assert_lt(n, cap);
        snprintf(names[n], 64, "%.63s", name);
        snprintf(units[n], 32, "%.31s", unit);
        n++;
    }
    fclose(fp);
    return n;
}

Test(schema, formats_md_documents_every_column_with_its_unit) {
    static char names[128][64], units[128][32];
    cr_assert_eq(schema_count(), 6); /* run, step, timeline, validate, loads, assignment */
    for (size_t i = 0; i < schema_count(); i++) {
        const CsvSchema *s = schema_at(i);
        size_t n = doc_table(names, units, 128, s->name);
        cr_assert_eq(n, s->n_cols, "FORMATS.md lists %zu columns for %s, the code %zu", n, s->name, s->n_cols);
        for (size_t c = 0; c < n; c++) {
            cr_assert_str_eq(names[c], s->cols[c].name, "%s column %zu", s->name, c);
            cr_assert_str_eq(units[c], s->cols[c].unit, "%s column %s unit", s->name, names[c]);
        }
    }
}

Test(schema, run_level_columns_as_briefed) {
    /* the run-level header, verbatim from the design brief */
    const char *want = "policy,model,gpus,gpus_per_node,tp,dp,setup,steps,step_mean_s,step_ci95_s,step_p50_s,"
                       "step_p99_s,tokens_per_s,samples_per_s,mfu,mfu_noattn,mfu_causal,hfu,speedup_vs_none,"
                       "idle_frac,bytes_intra_per_step,bytes_inter_per_step,a2a_s_per_step,balancer_s_per_step,"
                       "imbalance_image,imbalance_audio,imbalance_video,imbalance_llm,idle_frac_image,"
                       "idle_frac_audio,idle_frac_video,idle_frac_llm,tokens_per_s_ci95,mfu_ci95,idle_frac_ci95,"
                       "imbalance_image_ci95,imbalance_audio_ci95,imbalance_video_ci95,imbalance_llm_ci95,"
                       /* then feasibility and provenance (issue "answers a user can act on"), optional on input */
                       "long_examples,needs_recompute,balancer_charge,balancer_modelled_s_per_step,balancer_measured_s_per_step,"
                       "recompute,padded,"
                       "calibration,trace,trace_hash,orchsim_version,command\n";
    const char *path = th_tmp("hdr.csv");
    FILE *fp = fopen(path, "w");
    runtable_write_header(fp);
    fclose(fp);
    char buf[2048] = "";
    fp = fopen(path, "r");
    cr_assert_not_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    cr_assert_str_eq(buf, want);
    /* the row writer's field table follows the same order */
    const CsvSchema *s = schema_find("run");
    cr_assert_eq(s->n_required, 39, "the briefed 39 are required, the later ones optional");
    cr_assert_str_eq(s->cols[s->n_required].name, "long_examples");
    cr_assert_eq(runtable_n_fields(), s->n_cols);
    for (size_t i = 0; i < s->n_cols; i++) cr_assert_str_eq(runtable_field(i)->name, s->cols[i].name);
    /* timeline and validate headers as briefed */
    const CsvSchema *tl = schema_find("timeline"), *va = schema_find("validate");
    const char *tln[] = {"rank", "node", "phase", "op", "kind", "start_s", "end_s", "stage", "replica"};
    const char *van[] = {"step", "policy", "measured_s", "predicted_s", "error_frac", "mfu_measured"};
    cr_assert_eq(tl->n_cols, 9); /* the seven briefed, then the pipeline's two (optional on input) */
    cr_assert_eq(tl->n_required, 7);
    cr_assert_eq(va->n_cols, 6);
    for (int i = 0; i < 9; i++) cr_assert_str_eq(tl->cols[i].name, tln[i]);
    for (int i = 0; i < 6; i++) cr_assert_str_eq(va->cols[i].name, van[i]);
    /* step-level: 18 fixed columns then 5 per phase, image/audio/video/llm */
    const CsvSchema *st = schema_find("step");
    cr_assert_eq(st->n_cols, 18 + 5 * 4);
    cr_assert_str_eq(st->cols[18].name, "image_max_s");
    cr_assert_str_eq(st->cols[22].name, "image_idle_frac");
    cr_assert_str_eq(st->cols[37].name, "llm_idle_frac");
    cr_assert_null(schema_find("nope"));
}

/* ---------------------------------------------------------------- runtable */

static void fake_summary(ReplaySummary *s) {
    memset(s, 0, sizeof *s);
    s->steps = 5;
    s->P = 2;
    snprintf(s->phase_name[0], 32, "image");
    snprintf(s->phase_name[1], 32, "llm");
    s->step_mean_s = 3.0;
    s->step_p50_s = 3.0;
    s->step_p99_s = 4.96;
    s->tokens_per_s = 1000.0;
    s->samples_per_s = 10.0;
    s->mfu = 0.4;
    s->phase_imbalance[0] = 1.25;
    s->phase_imbalance[1] = 1.5;
    s->phase_idle_frac[0] = 0.2;
    s->phase_idle_frac[1] = 0.3;
}

Test(runtable, fill_maps_phases_and_computes_ci) {
    ReplaySummary s;
    fake_summary(&s);
    ReplayConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.cluster.gpus = 64;
    cfg.cluster.gpus_per_node = 8;
    cfg.cluster.tp = 2;
    cfg.cluster.dp = 32;
    const double steps[] = {1, 2, 3, 4, 5};
    RunRow r;
    cr_assert_eq(runrow_fill(&r, &s, &cfg, "post", "vl-7b", "fsdp", steps, 5), OS_OK);
    cr_assert_str_eq(r.policy, "post");
    cr_assert_eq(r.dp, 32);
    NEAR(r.step_ci95_s, 1.963243, 1e-6);
    NEAR(r.imbalance[0], 1.25, 0);
    NEAR(r.imbalance[3], 1.5, 0);
    NEAR(r.phase_idle[3], 0.3, 0);
    cr_assert(isnan(r.imbalance[1]) && isnan(r.imbalance[2]), "absent phases stay empty");
    cr_assert(isnan(r.speedup_vs_none));
    snprintf(s.phase_name[0], 32, "smell");
    os_clear_error();
    cr_assert_eq(runrow_fill(&r, &s, &cfg, "post", "m", "ddp", steps, 5), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "smell"));
    os_clear_error();
}

Test(runtable, write_read_round_trip_and_speedups) {
    RunRow rows[3];
    for (int i = 0; i < 3; i++) {
        runrow_init(&rows[i]);
        snprintf(rows[i].model, sizeof rows[i].model, "m,with comma");
        snprintf(rows[i].setup, sizeof rows[i].setup, "ddp");
        rows[i].gpus = 64;
        rows[i].gpus_per_node = 8;
        rows[i].tp = 1;
        rows[i].dp = 64;
        rows[i].steps = 4;
        rows[i].imbalance[3] = 1.0 + i;
    }
    snprintf(rows[0].policy, 64, "none");
    snprintf(rows[1].policy, 64, "post");
    snprintf(rows[2].policy, 64, "lpt");
    rows[0].tokens_per_s = 100.0;
    rows[1].tokens_per_s = 150.0;
    rows[2].tokens_per_s = 120.0;
    rows[2].gpus = 128; /* no `none` run at 128 GPUs */
    runtable_speedups(rows, 3);
    NEAR(rows[0].speedup_vs_none, 1.0, 0);
    NEAR(rows[1].speedup_vs_none, 1.5, 1e-15);
    cr_assert(isnan(rows[2].speedup_vs_none));
    const char *path = th_tmp("runs.csv");
    FILE *fp = fopen(path, "w");
    runtable_write_header(fp);
    for (int i = 0; i < 3; i++) runtable_write_row(fp, &rows[i]);
    fclose(fp);
    RunRow *back = NULL;
    size_t n = 0;
    cr_assert_eq(runtable_read(&back, &n, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(back[i].policy, rows[i].policy);
        cr_assert_str_eq(back[i].model, "m,with comma");
        cr_assert_eq(back[i].gpus, rows[i].gpus);
        NEAR(back[i].tokens_per_s, rows[i].tokens_per_s, 0);
        NEAR(back[i].imbalance[3], rows[i].imbalance[3], 0);
        cr_assert(isnan(back[i].imbalance[0]) && isnan(back[i].mfu));
    }
    cr_assert(isnan(back[2].speedup_vs_none));
    free(back);
    /* a table missing a run-level column is refused with the column's name */
    write_file(path, "policy,model\nnone,x\n");
    os_clear_error();
    cr_assert_eq(runtable_read(&back, &n, path), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "gpus"), "%s", os_last_error());
    os_clear_error();
}

Test(runtable, series_push_grows_and_maps) {
    RunSeries s;
    memset(&s, 0, sizeof s);
    int col[2] = {0, 3};
    StepResult r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 200; i++) {
        r.step_s = i;
        r.mfu = 0.5;
        r.phase_imbalance[0] = 1.0 + i;
        r.phase_imbalance[1] = 2.0;
        cr_assert_eq(run_series_push(&s, &r, col, 2), OS_OK);
    }
    cr_assert_eq(s.n, 200);
    NEAR(s.step_s[199], 199.0, 0);
    NEAR(s.imbalance[0][150], 151.0, 0);
    NEAR(s.imbalance[3][10], 2.0, 0);
    cr_assert_null(s.imbalance[1]);
    run_series_free(&s);
    cr_assert_null(s.step_s);
}

/* Every reported mean gets its interval: tokens/s, MFU, idle and per-phase imbalance. */
Test(runtable, confidence_intervals_for_every_series) {
    RunSeries s;
    memset(&s, 0, sizeof s);
    int phase_col[2] = {0, 3}; /* image, llm */
    for (int k = 1; k <= 5; k++) {
        StepResult r;
        memset(&r, 0, sizeof r);
        r.step_s = 1.0;
        r.llm_tokens = (uint64_t)k;        /* tokens/s 1..5 */
        r.mfu = 0.1 * k;                   /* 0.1..0.5 */
        r.idle_s = 0.01 * k;               /* idle fraction 0.01..0.05 */
        r.phase_imbalance[0] = 1.0 + k;    /* 2..6 */
        r.phase_imbalance[1] = 1.5;        /* constant: half-width 0 */
        cr_assert_eq(run_series_push(&s, &r, phase_col, 2), OS_OK);
    }
    RunRow row;
    runrow_init(&row);
    cr_assert_eq(runrow_add_cis(&row, &s), OS_OK);
    /* half-width of {1..5}: t(0.975, 4) * sqrt(2.5) / sqrt(5) = 2.776445 * 0.707107 = 1.963243 */
    NEAR(row.tokens_per_s_ci95, 1.963243, 1e-6);
    NEAR(row.mfu_ci95, 0.1963243, 1e-7);
    NEAR(row.idle_frac_ci95, 0.01963243, 1e-8);
    NEAR(row.imbalance_ci95[0], 1.963243, 1e-6);
    NEAR(row.imbalance_ci95[3], 0.0, 1e-12);
    cr_assert(isnan(row.imbalance_ci95[1]) && isnan(row.imbalance_ci95[2]), "absent phases stay empty");
    run_series_free(&s);
}

/* Feasibility and provenance: what runrow_fill takes from the summary and the config. */
Test(runtable, fill_carries_feasibility_and_provenance) {
    ReplaySummary s;
    fake_summary(&s);
    s.long_examples = 3;
    s.needs_recompute = 226;
    snprintf(s.calib_name, sizeof s.calib_name, "h100-test");
    s.balancer_s_per_step = 0.004;
    ReplayConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.cluster.gpus = 8;
    cfg.recompute = RECOMPUTE_SELECTIVE;
    cfg.layout = ATTN_PADDED;
    cfg.balancer_cost_s = -1.0; /* measured: the charge is the measurement */
    const double steps[] = {1, 2};
    RunRow r;
    cr_assert_eq(runrow_fill(&r, &s, &cfg, "post", "tiny", "fsdp", steps, 2), OS_OK);
    cr_assert_eq(r.long_examples, 3);
    cr_assert_eq(r.needs_recompute, 226);
    cr_assert_str_eq(r.recompute, "selective");
    cr_assert_eq(r.padded, 1);
    cr_assert_str_eq(r.calibration, "h100-test");
    cr_assert_str_eq(r.balancer_charge, "measured");
    NEAR(r.balancer_measured_s_per_step, 0.004, 0);
    cfg.balancer_cost_s = 0.01;
    cfg.layout = ATTN_VARLEN;
    cfg.recompute = RECOMPUTE_NONE;
    cr_assert_eq(runrow_fill(&r, &s, &cfg, "post", "tiny", "fsdp", steps, 2), OS_OK);
    cr_assert_str_eq(r.balancer_charge, "fixed");
    cr_assert(isnan(r.balancer_measured_s_per_step), "a fixed charge measures nothing");
    cr_assert_str_eq(r.recompute, "none");
    cr_assert_eq(r.padded, 0);
    /* and they survive a write/read round trip */
    RunProv p;
    const char *trace = th_tmp("prov.bin");
    write_file(trace, "foobar");
    char *argv[] = {"compare", (char *)trace, "--policies", "none,post", "--model", "it's mine", ""};
    char cmd[RUNPROV_CMD];
    runprov_command(cmd, sizeof cmd, 7, argv);
    cr_assert_eq(runprov_init(&p, trace, cmd, "9.9.9"), OS_OK, "%s", os_last_error());
    /* FNV-1a 64 test vector: "foobar" -> 0x85944171f73967e8 */
    cr_assert_str_eq(p.trace_hash, "85944171f73967e8");
    char want[2048];
    snprintf(want, sizeof want, "orchsim compare %s --policies none,post --model 'it'\\''s mine' ''", trace);
    cr_assert_str_eq(p.command, want);
    runrow_set_prov(&r, &p);
    const char *path = th_tmp("prov.csv");
    FILE *fp = fopen(path, "w");
    runtable_write_header(fp);
    runtable_write_row(fp, &r);
    fclose(fp);
    RunRow *back = NULL;
    size_t n = 0;
    cr_assert_eq(runtable_read(&back, &n, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(n, 1);
    cr_assert_eq(back[0].needs_recompute, 226);
    cr_assert_str_eq(back[0].command, want);
    cr_assert_str_eq(back[0].trace_hash, "85944171f73967e8");
    cr_assert_str_eq(back[0].orchsim_version, "9.9.9");
    free(back);
    /* an older table without the later columns still reads (they stay empty) */
    write_file(path, "policy,model,gpus,gpus_per_node,tp,dp,setup,steps,step_mean_s,step_ci95_s,step_p50_s,"
                     "step_p99_s,tokens_per_s,samples_per_s,mfu,mfu_noattn,mfu_causal,hfu,speedup_vs_none,"
                     "idle_frac,bytes_intra_per_step,bytes_inter_per_step,a2a_s_per_step,balancer_s_per_step,"
                     "imbalance_image,imbalance_audio,imbalance_video,imbalance_llm,idle_frac_image,"
                     "idle_frac_audio,idle_frac_video,idle_frac_llm,tokens_per_s_ci95,mfu_ci95,idle_frac_ci95,"
                     "imbalance_image_ci95,imbalance_audio_ci95,imbalance_video_ci95,imbalance_llm_ci95\n"
                     "none,m,8,8,1,8,fsdp,2,1,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n");
    cr_assert_eq(runtable_read(&back, &n, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(n, 1);
    cr_assert_str_eq(back[0].trace, "");
    free(back);
    /* the hash of a missing file names it */
    uint64_t h;
    os_clear_error();
    cr_assert_eq(runprov_hash_file(&h, "/nonexistent/trace.h5"), OS_ERR_IO);
    cr_assert(strstr(os_last_error(), "/nonexistent/trace.h5"));
    os_clear_error();
    /* FNV-1a 64 of the empty file: the offset basis */
    write_file(trace, "");
    cr_assert_eq(runprov_hash_file(&h, trace), OS_OK);
    cr_assert_eq(h, 0xcbf29ce484222325ull);
}
