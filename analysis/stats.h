/* stats.h — summary statistics of simulated and measured runs (GSL underneath).
 * Implements: mean with a Student-t confidence interval, quantiles, empirical CDF points,
 *   the imbalance ratio max/mean, idle fraction, scaling efficiency against the smallest GPU
 *   count, and predicted-vs-measured error statistics (MAPE, max |%| error, least-squares fit
 *   measured = a + b * predicted with R^2).
 * Does not: allocate (callers pass scratch), read files (csv.h), or know what a run is.
 * Source: DESIGN.md §7. Units: whatever the caller's arrays hold (seconds, tokens/s, ...);
 *   fractions are in [0, 1], percentages are never used in return values. */
#ifndef OS_ANALYSIS_STATS_H
#define OS_ANALYSIS_STATS_H

#include <stddef.h>

#include "base/status.h"

/* Mean of x[n] and the half-width of its two-sided `level` confidence interval
 * (t(1 - (1-level)/2, n-1) * s / sqrt(n), s the sample standard deviation). level in (0, 1),
 * typically 0.95. n == 1 gives half = NaN (no spread to estimate: written as an empty cell).
 * n == 0 is an error. */
OsStatus stats_mean_ci(double *mean, double *half, const double *x, size_t n, double level);

/* Quantiles p[np] (each in [0, 1], linear interpolation between order statistics, as
 * gsl_stats_quantile_from_sorted_data) of x[n]. scratch[n] receives a sorted copy (may alias
 * x when the caller does not need x's order). */
OsStatus stats_quantiles(double *q, const double *p, size_t np, const double *x, size_t n,
                         double *scratch);
/* Slow reference twin: the same definition computed by counting and selecting without GSL
 * (O(n^2)), for the test that compares them. */
double stats_quantile_ref(const double *x, size_t n, double p);

/* Empirical CDF points of x[n]: xs[n] sorted ascending, ps[i] = (i + 1) / n, i.e. the
 * fraction of samples <= xs[i] (ties share the last index's probability when read as a step
 * function). xs may alias x. */
OsStatus stats_ecdf(double *xs, double *ps, const double *x, size_t n);
/* Reference twin: F(v) = #{x_j <= v} / n, by counting. */
double stats_ecdf_ref(const double *x, size_t n, double v);

/* max / mean of load[n] (1 = perfectly balanced). 1 when the mean is 0 (nothing to balance).
 * Loads must be >= 0. */
double stats_imbalance(const double *load, size_t n);

/* Idle fraction of n ranks over a span: sum(span - busy_i) / (n * span). span <= 0 means
 * "the slowest rank's busy time" (a synchronous phase). 0 when the span is 0. */
double stats_idle_frac(const double *busy, size_t n, double span);

/* Scaling efficiency of each point against the smallest GPU count:
 * eff[i] = (tput[i] / tput_min) / (gpus[i] / gpus_min), where tput_min is the throughput at
 * the smallest GPU count (the first such point). gpus > 0, tput > 0. */
OsStatus stats_scaling_eff(double *eff, const double *gpus, const double *tput, size_t n);

typedef struct {
    size_t n;
    double mape;            /* mean |pred - meas| / meas (fraction, not %) */
    double max_abs_err;     /* max |pred - meas| / meas (fraction) */
    double mean_err;        /* mean (pred - meas) / meas: the bias, signed (fraction) */
    double fit_a, fit_b;    /* measured = a + b * predicted, least squares */
    double r2;              /* coefficient of determination of that fit (1 - SSres/SStot) */
} PredError;

/* Error statistics of predictions pred[n] against measurements meas[n] (meas > 0).
 * n >= 2 for the fit; with n == 1 fit_a = 0, fit_b = meas/pred and r2 = NaN. */
OsStatus stats_pred_error(PredError *out, const double *pred, const double *meas, size_t n);

#endif
