/* trace_stats.h — one streaming pass over a trace for `orchsim info`.
 * Implements: per-modality shares, items per example, positions per item and per example
 *   (mean exact, median/p99 from a bounded log-spaced histogram), total positions and LLM
 *   tokens, Pearson correlations of per-example token counts between modalities (streaming
 *   co-moments), and the per-step imbalance max/mean of every phase under "as drawn" dealing.
 * Does not: hold the trace (memory is fixed: ~36 KiB per histogram, O(dp) per step), or
 *   print (cli/cmd_info.c does).
 * Quantile error bound: values below 1024 are binned exactly (quantiles match
 *   gsl_stats_quantile_from_sorted_data); above, 64 log-spaced bins per octave and the bin
 *   midpoint give a relative error of at most 1/128 (0.78%). */
#ifndef OS_TRACES_TRACE_STATS_H
#define OS_TRACES_TRACE_STATS_H

#include <stdint.h>

#include "base/status.h"
#include "traces/trace.h"

#define THIST_EXACT 1024u
#define THIST_PER_OCTAVE 64u
#define THIST_BINS (THIST_EXACT + (64u - 10u) * THIST_PER_OCTAVE)

typedef struct {
    uint64_t count[THIST_BINS];
    uint64_t n;
    double sum;            /* exact mean = sum / n */
    uint64_t min, max;
} TraceHist;

void trace_hist_init(TraceHist *h);
void trace_hist_add(TraceHist *h, uint64_t v);
double trace_hist_mean(const TraceHist *h);          /* NaN when empty */
/* Quantile p in [0, 1], linear interpolation between order statistics (GSL's definition),
 * each order statistic read as its bin's midpoint (exact below THIST_EXACT). NaN when empty. */
double trace_hist_quantile(const TraceHist *h, double p);

/* Pearson correlation from streaming co-moments (Welford). */
typedef struct {
    double n, mx, my, cxx, cyy, cxy;
} TraceCorr;
void trace_corr_add(TraceCorr *c, double x, double y);
double trace_corr_r(const TraceCorr *c); /* NaN when a variable is constant or n < 2 */

typedef struct {
    uint64_t examples_with; /* examples with >= 1 item (text: with text > 0) */
    uint64_t items;
    TraceHist items_per_ex; /* over examples having the modality */
    TraceHist pos_per_item; /* text: unused */
    TraceHist pos_per_ex;   /* over examples having the modality */
    uint64_t total_pos;     /* sum of lengths (text: tokens) */
    uint64_t total_llm;     /* LLM tokens it contributes: sum ceil(len / ratio) */
} TraceModStats;

typedef struct {
    double mean, max;       /* of max/mean over the steps where the phase has work */
    uint64_t steps;         /* steps where the phase has work */
} TraceImbalance;

typedef struct {
    uint64_t steps, examples, items;
    uint32_t dp_min, dp_max, batch_min, batch_max;
    uint32_t n_mod;
    uint32_t ratio[TRACE_MAX_MODALITIES];      /* ratios used for LLM tokens */
    uint32_t tpi[TRACE_MAX_MODALITIES];        /* fixed tokens per item (trace attribute), 0 = by ratio */
    TraceModStats mod[TRACE_MAX_MODALITIES];   /* [0] = text */
    TraceHist llm_per_ex;                      /* S per example */
    TraceCorr corr[TRACE_MAX_MODALITIES][TRACE_MAX_MODALITIES]; /* [a][b], a < b, per-example counts */
    TraceImbalance enc[TRACE_MAX_MODALITIES];  /* encoder phase of modality m >= 1: positions */
    TraceImbalance llm;                        /* LLM phase: S */
} TraceStats;

/* Allocate and fill (the struct is ~2 MiB, so it lives on the heap). ratio: [n_modalities]
 * projector ratios, or NULL for the trace's default_ratio. Reads every step (validating it). */
OsStatus trace_stats_compute(TraceStats **out, Trace *t, const uint32_t *ratio);
void trace_stats_destroy(TraceStats *s); /* NULL-safe */

#endif
