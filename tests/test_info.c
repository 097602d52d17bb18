/* test_info.c — traces/trace_stats.h and `orchsim info`: the bounded histogram and the
 * streaming correlation against their slow GSL twins, a hand-computed trace, the CLI. */
#include <criterion/criterion.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "traces/trace.h"
#include "traces/trace_stats.h"

/* Twin: histogram quantiles == gsl_stats_quantile_from_sorted_data below 1024, within the
 * documented 1/128 relative bound above. */
Test(info_stats, histogram_quantiles_match_gsl) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    const double ps[] = {0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0};
    for (int trial = 0; trial < 2; trial++) {
        size_t n = 5001;
        double *x = malloc(sizeof *x * n);
        TraceHist *h = malloc(sizeof *h);
        trace_hist_init(h);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = trial == 0 ? gsl_rng_uniform_int(r, 1000)
                                    : (uint64_t)floor(exp(gsl_ran_gaussian(r, 2.0) + 9.0));
            x[i] = (double)v;
            trace_hist_add(h, v);
        }
        gsl_sort(x, 1, n);
        cr_assert_float_eq(trace_hist_mean(h), gsl_stats_mean(x, 1, n), 1e-9 * x[n - 1]);
        for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
            double want = gsl_stats_quantile_from_sorted_data(x, 1, n, ps[k]), got = trace_hist_quantile(h, ps[k]);
            if (trial == 0) cr_assert_float_eq(got, want, 1e-9, "p=%g: %g vs %g", ps[k], got, want);
            else cr_assert(fabs(got - want) <= want / 128.0 + 1e-9, "p=%g: %g vs %g", ps[k], got, want);
        }
        free(x);
        free(h);
    }
    gsl_rng_free(r);
}

Test(info_stats, streaming_correlation_matches_gsl) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    size_t n = 3000;
    double *x = malloc(sizeof *x * n), *y = malloc(sizeof *y * n);
    TraceCorr c = {0};
    for (size_t i = 0; i < n; i++) {
        x[i] = 1e6 + gsl_ran_gaussian(r, 3.0); /* large offset: the naive formula would lose digits */
        y[i] = 0.5 * x[i] + gsl_ran_gaussian(r, 2.0);
        trace_corr_add(&c, x[i], y[i]);
    }
    cr_assert_float_eq(trace_corr_r(&c), gsl_stats_correlation(x, 1, y, 1, n), 1e-9);
    TraceCorr k = {0};
    trace_corr_add(&k, 1, 5);
    trace_corr_add(&k, 2, 5);
    cr_assert(isnan(trace_corr_r(&k))); /* constant y */
    free(x);
    free(y);
    gsl_rng_free(r);
}

static const TraceModality MODS[] = {{"text", "token", 1}, {"image", "patch", 4}, {"audio", "frame", 2}};

/* Step 0 (dp 2): ex0 text 10 + image 8; ex1 text 0 + audio 6; ex2 text 4; ex3 text 2 + image
 * 4,4 + audio 2. Step 1 (dp 1): one example, text 5. */
static const char *hand_trace(void) {
    const char *p = th_tmp("hand.h5");
    TraceWriter *w = NULL;
    cr_assert_eq(trace_writer_create(&w, p, MODS, 3, NULL, 0), OS_OK);
    TraceStep s;
    trace_step_init(&s);
    TraceItem e0[] = {{8, 1}}, e1[] = {{6, 2}}, e3[] = {{4, 1}, {4, 1}, {2, 2}};
    s.dp = 2;
    trace_step_push(&s, 10, 0, e0, 1);
    trace_step_push(&s, 0, 1, e1, 1);
    trace_step_push(&s, 4, 2, NULL, 0);
    trace_step_push(&s, 2, 3, e3, 3);
    cr_assert_eq(trace_writer_add_step(w, &s), OS_OK);
    trace_step_clear(&s);
    s.dp = 1;
    trace_step_push(&s, 5, 4, NULL, 0);
    cr_assert_eq(trace_writer_add_step(w, &s), OS_OK);
    cr_assert_eq(trace_writer_close(w), OS_OK);
    trace_step_free(&s);
    return p;
}

Test(info_stats, hand_computed_trace) {
    const char *p = hand_trace();
    Trace *t = NULL;
    TraceStats *s = NULL;
    cr_assert_eq(trace_open(&t, p), OS_OK);
    cr_assert_eq(trace_stats_compute(&s, t, NULL), OS_OK, "%s", os_last_error());
    cr_assert_eq(s->steps, 2u);
    cr_assert_eq(s->examples, 5u);
    cr_assert_eq(s->items, 5u);
    cr_assert_eq(s->dp_min, 1u);
    cr_assert_eq(s->dp_max, 2u);
    cr_assert_eq(s->mod[0].examples_with, 4u);   /* text > 0 */
    cr_assert_eq(s->mod[0].total_pos, 21u);
    cr_assert_eq(s->mod[1].examples_with, 2u);
    cr_assert_eq(s->mod[1].items, 3u);
    cr_assert_float_eq(trace_hist_mean(&s->mod[1].items_per_ex), 1.5, 1e-12);
    cr_assert_float_eq(trace_hist_mean(&s->mod[1].pos_per_item), 16.0 / 3.0, 1e-12);
    cr_assert_float_eq(trace_hist_quantile(&s->mod[1].pos_per_item, 0.5), 4.0, 1e-12);
    cr_assert_float_eq(trace_hist_mean(&s->mod[1].pos_per_ex), 8.0, 1e-12);
    cr_assert_eq(s->mod[1].total_pos, 16u);
    cr_assert_eq(s->mod[1].total_llm, 4u);       /* ceil(8/4) + 1 + 1 */
    cr_assert_eq(s->mod[2].total_pos, 8u);
    cr_assert_eq(s->mod[2].total_llm, 4u);       /* ceil(6/2) + 1 */
    /* S = 12, 3, 4, 5, 5: median 5 */
    cr_assert_float_eq(trace_hist_quantile(&s->llm_per_ex, 0.5), 5.0, 1e-12);
    /* LLM: step 0 ranks 15 | 9 -> 1.25; step 1 one rank -> 1 */
    cr_assert_eq(s->llm.steps, 2u);
    cr_assert_float_eq(s->llm.mean, 1.125, 1e-12);
    cr_assert_float_eq(s->llm.max, 1.25, 1e-12);
    cr_assert_eq(s->enc[1].steps, 1u);           /* no image work in step 1 */
    cr_assert_float_eq(s->enc[1].mean, 1.0, 1e-12); /* 8 | 8 */
    cr_assert_float_eq(s->enc[2].max, 1.5, 1e-12);  /* 6 | 2 */
    double x[] = {10, 0, 4, 2, 5}, y[] = {8, 0, 0, 8, 0};
    cr_assert_float_eq(trace_corr_r(&s->corr[0][1]), gsl_stats_correlation(x, 1, y, 1, 5), 1e-12);
    trace_stats_destroy(s);
    /* image ratio 1: S = 18, 3, 4, 11 -> ranks 21 | 15 -> 21/18 */
    uint32_t ratio[3] = {1, 1, 2};
    cr_assert_eq(trace_stats_compute(&s, t, ratio), OS_OK);
    cr_assert_float_eq(s->llm.max, 21.0 / 18.0, 1e-12);
    trace_stats_destroy(s);
    trace_close(t);
}

Test(info_cli, table_json_ratio_and_errors) {
    const char *p = hand_trace();
    char args[1200], *o = NULL;
    snprintf(args, sizeof args, "info %s", p);
    cr_assert_eq(th_run(&o, args), 0, "%s", o);
    cr_assert(strstr(o, "steps 2   examples 5   items 5   dp 1..2   global batch 1..4"), "%s", o);
    cr_assert(strstr(o, "llm                 1.125    1.250        2"), "%s", o);
    free(o);
    snprintf(args, sizeof args, "info %s --json --ratio image=1", p);
    cr_assert_eq(th_run(&o, args), 0, "%s", o);
    cr_assert(strstr(o, "\"steps\": 2, \"examples\": 5"), "%s", o);
    cr_assert(strstr(o, "\"name\": \"image\", \"unit\": \"patch\", \"ratio\": 1"), "%s", o);
    cr_assert(strstr(o, "{\"phase\": \"llm\", \"steps\": 2, \"mean\": 1.08333, \"max\": 1.16667}"), "%s", o);
    free(o);
    snprintf(args, sizeof args, "info %s --ratio photo=2", p);
    cr_assert_eq(th_run(&o, args), 2, "%s", o);
    cr_assert(strstr(o, "photo: unknown modality"), "%s", o);
    free(o);
    snprintf(args, sizeof args, "info %s.missing", p);
    cr_assert_eq(th_run(&o, args), 1, "%s", o);
    cr_assert(strstr(o, "orchsim: error: ") && strstr(o, "no such file"), "%s", o);
    free(o);
}
