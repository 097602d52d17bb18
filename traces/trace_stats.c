/* trace_stats.c — see trace_stats.h. */
#include "traces/trace_stats.h"

#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* ---- bounded-memory histogram ----------------------------------------------------------- */

static unsigned hist_bin(uint64_t v) {
    if (v < THIST_EXACT) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* floor(log2 v), 10..63 */
    unsigned sub = (unsigned)((v >> (e - 6u)) & (THIST_PER_OCTAVE - 1u));
    return THIST_EXACT + (e - 10u) * THIST_PER_OCTAVE + sub;
}

/* Representative value of a bin: the value itself, or the bin's midpoint. */
static double hist_value(unsigned b) {
    if (b < THIST_EXACT) return (double)b;
    unsigned e = 10u + (b - THIST_EXACT) / THIST_PER_OCTAVE, sub = (b - THIST_EXACT) % THIST_PER_OCTAVE;
    double w = ldexp(1.0, (int)e - 6);
    return ldexp(1.0, (int)e) + ((double)sub + 0.5) * w;
}

void trace_hist_init(TraceHist *h) {
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void trace_hist_add(TraceHist *h, uint64_t v) {
    h->count[hist_bin(v)]++;
    h->n++;
    h->sum += (double)v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

double trace_hist_mean(const TraceHist *h) { return h->n ? h->sum / (double)h->n : NAN; }

/* The k-th smallest value (0-based), as its bin's representative, clamped to [min, max]. */
static double hist_order(const TraceHist *h, uint64_t k) {
    uint64_t acc = 0;
    for (unsigned b = 0; b < THIST_BINS; b++) {
        acc += h->count[b];
        if (acc > k) {
            double v = hist_value(b);
            if (v < (double)h->min) v = (double)h->min;
            if (v > (double)h->max) v = (double)h->max;
            return v;
        }
    }
    return (double)h->max;
}

double trace_hist_quantile(const TraceHist *h, double p) {
    if (!h->n) return NAN;
    double rank = p * (double)(h->n - 1);
    uint64_t lo = (uint64_t)floor(rank);
    double frac = rank - (double)lo;
    double a = hist_order(h, lo);
    if (frac == 0.0 || lo + 1 >= h->n) return a;
    return a + frac * (hist_order(h, lo + 1) - a);
}

/* ---- streaming correlation ------------------------------------------------------------------ */

void trace_corr_add(TraceCorr *c, double x, double y) {
    c->n += 1.0;
    double dx = x - c->mx;
    c->mx += dx / c->n;
    double dy = y - c->my;
    c->my += dy / c->n;
    c->cxx += dx * (x - c->mx);
    c->cyy += dy * (y - c->my);
    c->cxy += dx * (y - c->my);
}

double trace_corr_r(const TraceCorr *c) {
    if (c->n < 2.0 || c->cxx <= 0.0 || c->cyy <= 0.0) return NAN;
    return c->cxy / sqrt(c->cxx * c->cyy);
}

/* ---- the pass --------------------------------------------------------------------------------- */

static void imb_add(TraceImbalance *im, const double *load, uint32_t dp) {
    double mean = gsl_stats_mean(load, 1, dp);
    if (mean <= 0.0) return; /* no work for this phase in this step */
    double r = gsl_stats_max(load, 1, dp) / mean;
    im->mean += r; /* a sum until the end of the pass */
    if (r > im->max) im->max = r;
    im->steps++;
}

void trace_stats_destroy(TraceStats *s) { free(s); }

OsStatus trace_stats_compute(TraceStats **out, Trace *t, const uint32_t *ratio) {
    OsStatus st = OS_OK;
    TraceStats *s = NULL;
    double *load = NULL; /* [(n_mod) x dp]: [0] LLM tokens, [m] encoder positions per rank */
    size_t load_cap = 0;
    const TraceStep *step = NULL;
    *out = NULL;
    s = calloc(1, sizeof *s);
    ALLOC_CHECK(s);
    s->n_mod = trace_n_modalities(t);
    for (uint32_t m = 0; m < s->n_mod; m++) {
        s->ratio[m] = ratio ? ratio[m] : trace_modality(t, m)->default_ratio;
        if (s->ratio[m] < 1) s->ratio[m] = 1;
        s->tpi[m] = trace_tokens_per_item(t, m);
        trace_hist_init(&s->mod[m].items_per_ex);
        trace_hist_init(&s->mod[m].pos_per_item);
        trace_hist_init(&s->mod[m].pos_per_ex);
    }
    trace_hist_init(&s->llm_per_ex);
    s->dp_min = s->batch_min = UINT32_MAX;
    uint32_t nm = s->n_mod;
    uint64_t cnt[TRACE_MAX_MODALITIES], pos[TRACE_MAX_MODALITIES];
    trace_rewind(t);
    for (;;) {
        OsStatus r = trace_next_step(t, &step);
        if (r == OS_DONE) break;
        OS_CHECK(r);
        uint32_t dp = step->dp, per = step->n_examples / dp;
        s->steps++;
        s->examples += step->n_examples;
        s->items += step->n_items;
        s->dp_min = OS_MIN(s->dp_min, dp);
        s->dp_max = OS_MAX(s->dp_max, dp);
        s->batch_min = OS_MIN(s->batch_min, step->n_examples);
        s->batch_max = OS_MAX(s->batch_max, step->n_examples);
        OS_CHECK(os_grow((void **)&load, &load_cap, (size_t)nm * dp, sizeof *load));
        memset(load, 0, sizeof *load * nm * dp);
        for (uint32_t k = 0; k < step->n_examples; k++) {
            const TraceExample *e = &step->examples[k];
            uint32_t rank = k / per; /* as drawn: rank r holds [r*per, (r+1)*per) */
            memset(cnt, 0, sizeof cnt);
            memset(pos, 0, sizeof pos);
            pos[0] = e->text;
            cnt[0] = e->text > 0;
            for (uint32_t i = 0; i < e->n_items; i++) {
                const TraceItem *it = &step->items[e->first_item + i];
                cnt[it->modality]++;
                pos[it->modality] += it->length;
                s->mod[it->modality].total_llm += s->tpi[it->modality]
                                                       ? s->tpi[it->modality]
                                                       : ((uint64_t)it->length + s->ratio[it->modality] - 1) /
                                                             s->ratio[it->modality];
                trace_hist_add(&s->mod[it->modality].pos_per_item, it->length);
            }
            uint64_t S = trace_llm_tokens_tpi(step, k, s->ratio, s->tpi);
            trace_hist_add(&s->llm_per_ex, S);
            load[(size_t)rank] += (double)S;
            s->mod[0].total_llm += e->text;
            for (uint32_t m = 0; m < nm; m++) {
                TraceModStats *ms = &s->mod[m];
                ms->total_pos += pos[m];
                if (m) {
                    ms->items += cnt[m];
                    load[(size_t)m * dp + rank] += (double)pos[m];
                }
                if (cnt[m]) {
                    ms->examples_with++;
                    if (m) trace_hist_add(&ms->items_per_ex, cnt[m]);
                    trace_hist_add(&ms->pos_per_ex, pos[m]);
                }
                for (uint32_t b = m + 1; b < nm; b++) trace_corr_add(&s->corr[m][b], (double)pos[m], (double)pos[b]);
            }
        }
        imb_add(&s->llm, load, dp);
        for (uint32_t m = 1; m < nm; m++) imb_add(&s->enc[m], load + (size_t)m * dp, dp);
    }
    if (s->llm.steps) s->llm.mean /= (double)s->llm.steps;
    for (uint32_t m = 1; m < nm; m++)
        if (s->enc[m].steps) s->enc[m].mean /= (double)s->enc[m].steps;
    if (!s->steps) s->dp_min = s->batch_min = 0;
    free(load);
    *out = s;
    return OS_OK;
fail:
    free(load);
    free(s);
    return st;
}
