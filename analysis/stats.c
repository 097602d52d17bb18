/* stats.c — see stats.h. GSL does the numerics; the reference twins count by hand. */
#include "analysis/stats.h"

#include "base/util.h"

#include <math.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_sort_double.h>
#include <gsl/gsl_statistics_double.h>

OsStatus stats_mean_ci(double *mean, double *half, const double *x, size_t n, double level) {
    OsStatus st = OS_OK;
    if (n == 0) OS_FAIL(OS_ERR_ARG, "stats", "mean_ci", NULL, "no samples");
    if (!(level > 0.0 && level < 1.0))
        OS_FAIL(OS_ERR_ARG, "stats", "level", "use e.g. 0.95", "confidence level %g is not in (0, 1)", level);
    *mean = gsl_stats_mean(x, 1, n);
    if (n == 1) {
        *half = NAN; /* one sample has no spread: the interval is undefined, not zero */
        return OS_OK;
    }
    /* Steps are few (tens to hundreds), so the t quantile, not the normal one, is right. */
    double s = gsl_stats_sd_m(x, 1, n, *mean);
    double t = gsl_cdf_tdist_Pinv(1.0 - 0.5 * (1.0 - level), (double)(n - 1));
    *half = t * s / sqrt((double)n);
fail:
    return st;
}

OsStatus stats_quantiles(double *q, const double *p, size_t np, const double *x, size_t n,
                         double *scratch) {
    OsStatus st = OS_OK;
    if (n == 0) OS_FAIL(OS_ERR_ARG, "stats", "quantiles", NULL, "no samples");
    if (scratch != x) memcpy(scratch, x, n * sizeof *x);
    gsl_sort(scratch, 1, n);
    for (size_t i = 0; i < np; i++) {
        if (!(p[i] >= 0.0 && p[i] <= 1.0))
            OS_FAIL(OS_ERR_ARG, "stats", "quantile", NULL, "p = %g is not in [0, 1]", p[i]);
        q[i] = gsl_stats_quantile_from_sorted_data(scratch, 1, n, p[i]);
    }
fail:
    return st;
}

/* k-th smallest (0-based) by counting: the value v with #{x < v} <= k < #{x <= v}. */
static double kth_ref(const double *x, size_t n, size_t k) {
    for (size_t i = 0; i < n; i++) {
        size_t lt = 0, le = 0;
        for (size_t j = 0; j < n; j++) {
            lt += x[j] < x[i];
            le += x[j] <= x[i];
        }
        if (lt <= k && k < le) return x[i];
    }
    return NAN;
}

double stats_quantile_ref(const double *x, size_t n, double p) {
    if (n == 0) return NAN;
    double h = (double)(n - 1) * p; /* the position GSL (and R type 7) interpolate at */
    size_t lo = (size_t)floor(h);
    double frac = h - (double)lo;
    double a = kth_ref(x, n, lo);
    if (lo + 1 >= n || frac == 0.0) return a;
    return a + frac * (kth_ref(x, n, lo + 1) - a);
}

OsStatus stats_ecdf(double *xs, double *ps, const double *x, size_t n) {
    OsStatus st = OS_OK;
    if (n == 0) OS_FAIL(OS_ERR_ARG, "stats", "ecdf", NULL, "no samples");
    if (xs != x) memcpy(xs, x, n * sizeof *x);
    gsl_sort(xs, 1, n);
    for (size_t i = 0; i < n; i++) ps[i] = (double)(i + 1) / (double)n;
fail:
    return st;
}

double stats_ecdf_ref(const double *x, size_t n, double v) {
    if (n == 0) return NAN;
    size_t c = 0;
    for (size_t j = 0; j < n; j++) c += x[j] <= v;
    return (double)c / (double)n;
}

double stats_imbalance(const double *load, size_t n) {
    if (n == 0) return 1.0;
    double mx = load[0], sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += load[i];
        if (load[i] > mx) mx = load[i];
    }
    double mean = sum / (double)n;
    return mean > 0.0 ? mx / mean : 1.0;
}

double stats_idle_frac(const double *busy, size_t n, double span) {
    if (n == 0) return 0.0;
    if (span <= 0.0) {
        span = busy[0];
        for (size_t i = 1; i < n; i++) span = OS_MAX(span, busy[i]);
    }
    if (span <= 0.0) return 0.0;
    double idle = 0.0;
    for (size_t i = 0; i < n; i++) idle += span - busy[i];
    return idle / ((double)n * span);
}

OsStatus stats_scaling_eff(double *eff, const double *gpus, const double *tput, size_t n) {
    OsStatus st = OS_OK;
    if (n == 0) OS_FAIL(OS_ERR_ARG, "stats", "scaling", NULL, "no points");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(gpus[i] > 0.0) || !(tput[i] > 0.0))
            OS_FAIL(OS_ERR_ARG, "stats", "scaling", NULL,
                    "point %zu has gpus = %g, throughput = %g (both must be > 0)", i, gpus[i], tput[i]);
        if (gpus[i] < gpus[k]) k = i;
    }
    for (size_t i = 0; i < n; i++) eff[i] = (tput[i] / tput[k]) / (gpus[i] / gpus[k]);
fail:
    return st;
}

OsStatus stats_pred_error(PredError *out, const double *pred, const double *meas, size_t n) {
    OsStatus st = OS_OK;
    memset(out, 0, sizeof *out);
    if (n == 0) OS_FAIL(OS_ERR_ARG, "stats", "pred_error", NULL, "no points");
    double sum_abs = 0.0, sum = 0.0, mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(meas[i] > 0.0) || !isfinite(pred[i]))
            OS_FAIL(OS_ERR_ARG, "stats", "pred_error", NULL,
                    "point %zu: measured %g must be > 0 and predicted %g finite", i, meas[i], pred[i]);
        double e = (pred[i] - meas[i]) / meas[i];
        sum += e;
        sum_abs += fabs(e);
        if (fabs(e) > mx) mx = fabs(e);
    }
    out->n = n;
    out->mape = sum_abs / (double)n;
    out->mean_err = sum / (double)n;
    out->max_abs_err = mx;
    if (n == 1) {
        out->fit_a = 0.0;
        out->fit_b = pred[0] > 0.0 ? meas[0] / pred[0] : NAN;
        out->r2 = NAN;
        return OS_OK;
    }
    double c00, c01, c11, sumsq;
    if (gsl_fit_linear(pred, 1, meas, 1, n, &out->fit_a, &out->fit_b, &c00, &c01, &c11, &sumsq))
        OS_FAIL(OS_ERR_ARG, "stats", "pred_error", "vary the inputs", "least-squares fit failed");
    double mean_m = gsl_stats_mean(meas, 1, n);
    double sstot = 0.0;
    for (size_t i = 0; i < n; i++) sstot += (meas[i] - mean_m) * (meas[i] - mean_m);
    /* all measurements equal: the fit explains everything there is (R^2 undefined -> 1 if exact) */
    out->r2 = sstot > 0.0 ? 1.0 - sumsq / sstot : (sumsq == 0.0 ? 1.0 : NAN);
    /* predictions all equal make the slope undefined: GSL returns NaN; keep it, callers print it */
fail:
    return st;
}
