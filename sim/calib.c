/* calib.c — the achieved-rate table the cost model reads: the H100 default, lookups, and the
 * text file `orchsim calibrate` writes. See cost.h (Calib).
 *
 * File format (line-oriented; '#' lines are comments; the first non-blank line is the magic):
 *   # orchsim calibration v1
 *   name = h100-node3                    free text (default: the file's path)
 *   device = NVIDIA H100 80GB HBM3       free text
 *   peak_flops = 9.894e14                required, FLOP/s
 *   kernel_overhead_s = 2e-05            seconds per layer per pass (default 0)
 *   intra_bw = 0                         bytes/s per direction per GPU, 0 = not measured
 *   inter_bw = 0
 *   clock_mhz = 1980                     any other key = value: kept as free text
 *   gemm <flops of one GEMM call> <achieved FLOP/s>     ascending, >= 1 row
 *   attn <sequence length> <achieved FLOP/s>            ascending, >= 1 row
 * Errors name the file, the line and the key or row.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/cost.h"

/* ---- the H100 SXM default ------------------------------------------------------------- */

/* Every number below is an ESTIMATE until `orchsim calibrate` measures the machine:
 *  - peak: 989.4e12 FLOP/s dense bf16 (REFERENCE.md §D.4).
 *  - large-GEMM plateau: 0.72 x peak = 712 TFLOP/s. REFERENCE.md §D.4 gives ~780 TFLOP/s
 *    (79%) as the best hand-tuned case (max-autotune + vboost) and 0.6-0.75 of peak as the
 *    UNCONFIRMED untuned-cuBLAS default; 0.72 sits inside that range, below the tuned best.
 *  - small-GEMM floor: a GEMM call costs at least ~4 us (launch + one wave of a tiny kernel;
 *    estimate, not in REFERENCE.md). rate(F) = F / (GEMM_T0 + F / GEMM_PLATEAU): a 1024^3
 *    GEMM (2.1 GFLOP) gets ~0.43 of the plateau, a 4096^3 one (137 GFLOP) ~0.98.
 *  - attention: FlashAttention-2-class varlen kernels, fwd+bwd averaged, plateau 0.40 x peak
 *    (~396 TFLOP/s of executed FLOPs) reached for long sequences, half of it at 512
 *    positions (short sequences waste partial 128-wide tiles). UNCONFIRMED estimate: the
 *    FlashAttention papers' H100 figures are not in REFERENCE.md.
 *  - kernel overhead: ~8 non-GEMM kernels per layer per pass (2 norms, rotary, activation,
 *    residual adds, attention prologue) at ~2.5 us each = 20 us (estimate). */
#define H100_PEAK 989.4e12
#define GEMM_PLATEAU (0.72 * H100_PEAK)
#define GEMM_T0 4e-6
#define ATTN_PLATEAU (0.40 * H100_PEAK)
#define ATTN_HALF_LEN 512.0
#define KERNEL_OVERHEAD 20e-6

void calib_default_h100(Calib *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "builtin-h100-sxm-default");
    snprintf(c->device, sizeof c->device, "NVIDIA H100 SXM (documented estimates, not measured)");
    c->peak_flops = H100_PEAK;
    /* GEMMs from 1 MFLOP to 100 TFLOP, two points per decade */
    for (int k = 0; k <= 16; k++) {
        double f = pow(10.0, 6.0 + 0.5 * k);
        c->gemm_flops[c->n_gemm] = f;
        c->gemm_rate[c->n_gemm++] = f / (GEMM_T0 + f / GEMM_PLATEAU);
    }
    /* attention from 16 to 131072 positions, one point per octave */
    for (int k = 4; k <= 17; k++) {
        double len = ldexp(1.0, k);
        c->attn_len[c->n_attn] = len;
        c->attn_rate[c->n_attn++] = ATTN_PLATEAU * len / (len + ATTN_HALF_LEN);
    }
    c->kernel_overhead_s = KERNEL_OVERHEAD;
    c->intra_bw = 0.0; /* not measured: the cluster defaults (net.h) apply */
    c->inter_bw = 0.0;
}

/* ---- lookups -------------------------------------------------------------------------- */

/* Power law between neighbouring points (linear in log-log), clamped at both ends. */
static double interp_loglog(const double *x, const double *y, uint32_t n, double q) {
    if (n == 0) return 0.0;
    if (!(q > x[0])) return y[0]; /* also catches NaN and q <= 0 */
    if (q >= x[n - 1]) return y[n - 1];
    uint32_t lo = 0, hi = n - 1; /* x[lo] < q < x[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (x[mid] <= q) lo = mid;
        else hi = mid;
    }
    double t = log(q / x[lo]) / log(x[hi] / x[lo]);
    return y[lo] * exp(t * log(y[hi] / y[lo]));
}

double calib_gemm_rate(const Calib *c, double gemm_flops) {
    if (c->n_gemm == 0) return c->peak_flops; /* an empty table: an unvalidated hand-made Calib */
    return interp_loglog(c->gemm_flops, c->gemm_rate, c->n_gemm, gemm_flops);
}

double calib_attn_rate(const Calib *c, double seq_len) {
    if (c->n_attn == 0) return c->peak_flops;
    return interp_loglog(c->attn_len, c->attn_rate, c->n_attn, seq_len);
}

typedef enum { CK_NAME, CK_DEVICE, CK_PEAK, CK_OVERHEAD, CK_INTRA, CK_INTER, CK_COUNT } CalibKey;
static const char *const CALIB_KEYS[CK_COUNT] = {"name", "device", "peak_flops",
                                                 "kernel_overhead_s", "intra_bw", "inter_bw"};

/* ---- provenance ----------------------------------------------------------------------- */

/* Provenance keys: [a-z0-9_]+, not a key the table itself uses, not a row keyword. */
static int meta_key_ok(const char *k) {
    size_t n = strlen(k);
    for (int i = 0; i < CK_COUNT; i++)
        if (!strcmp(k, CALIB_KEYS[i])) return 0;
    if (!strcmp(k, "gemm") || !strcmp(k, "attn")) return 0;
    if (n == 0 || n >= sizeof ((Calib *)0)->meta_key[0]) return 0;
    for (; *k; k++)
        if (!(islower((unsigned char)*k) || isdigit((unsigned char)*k) || *k == '_')) return 0;
    return 1;
}

OsStatus calib_set_meta(Calib *c, const char *key, const char *value) {
    OsStatus st = OS_OK;
    if (!meta_key_ok(key))
        OS_FAIL(OS_ERR_ARG, "calibration", key,
                "lower-case letters, digits and '_', < 32 chars, not a table key or gemm/attn",
                "bad provenance key");
    if (strlen(value) >= sizeof c->meta_val[0] || strchr(value, '\n'))
        OS_FAIL(OS_ERR_ARG, "calibration", key, "shorten it to one line", "value longer than %zu characters",
                sizeof c->meta_val[0] - 1);
    uint32_t i = 0;
    while (i < c->n_meta && strcmp(c->meta_key[i], key)) i++;
    if (i == c->n_meta) {
        if (c->n_meta >= CALIB_MAX_META)
            OS_FAIL(OS_ERR_ARG, "calibration", key, NULL, "more than %d provenance entries",
                    CALIB_MAX_META);
        c->n_meta++;
        snprintf(c->meta_key[i], sizeof c->meta_key[i], "%s", key);
    }
    snprintf(c->meta_val[i], sizeof c->meta_val[i], "%s", value);
fail:
    return st;
}

const char *calib_get_meta(const Calib *c, const char *key) {
    for (uint32_t i = 0; i < c->n_meta; i++)
        if (!strcmp(c->meta_key[i], key)) return c->meta_val[i];
    return NULL;
}

/* ---- validation ----------------------------------------------------------------------- */

static OsStatus check_rows(const double *x, const double *y, uint32_t n, double peak, int gemm,
                           const char *where) {
    OsStatus st = OS_OK;
    const char *kind = gemm ? "gemm" : "attn";
    char f[48];
    if (n == 0)
        OS_FAIL(OS_ERR_FORMAT, where, kind, "run orchsim calibrate, or copy the rows of the default",
                "no %s rows", kind);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(f, sizeof f, "%s row %u", kind, i + 1);
        if (!(x[i] > 0) || !isfinite(x[i]))
            OS_FAIL(OS_ERR_FORMAT, where, f, NULL, "key %g must be positive", x[i]);
        if (!(y[i] > 0) || !(y[i] <= peak * 1.0000001))
            OS_FAIL(OS_ERR_FORMAT, where, f, "rates are achieved FLOP/s, at most peak_flops",
                    "rate %g is outside (0, %g]", y[i], peak);
        if (i && !(x[i] > x[i - 1]))
            OS_FAIL(OS_ERR_FORMAT, where, f, "sort the rows by their first column, no repeats",
                    "key %g does not exceed the previous %g", x[i], x[i - 1]);
        /* A bigger GEMM that finishes sooner is measurement noise; it would also make the
         * time model non-monotone in tokens, which the balancers rely on. */
        if (gemm && i && x[i] / y[i] < x[i - 1] / y[i - 1] * (1 - 1e-9))
            OS_FAIL(OS_ERR_FORMAT, where, f, "re-measure with more iterations, or drop the noisy row",
                    "a %g-FLOP GEMM takes %g s, less than the previous %g-FLOP one (%g s)", x[i],
                    x[i] / y[i], x[i - 1], x[i - 1] / y[i - 1]);
    }
fail:
    return st;
}

OsStatus calib_validate(const Calib *c, const char *where) {
    OsStatus st = OS_OK;
    if (!(c->peak_flops > 0) || !isfinite(c->peak_flops))
        OS_FAIL(OS_ERR_FORMAT, where, "peak_flops", "989.4e12 for an H100 SXM (bf16 dense)",
                "must be a positive number");
    if (c->n_gemm > CALIB_MAX_POINTS || c->n_attn > CALIB_MAX_POINTS)
        OS_FAIL(OS_ERR_FORMAT, where, "rows", NULL, "more than %d rows of one kind", CALIB_MAX_POINTS);
    OS_CHECK(check_rows(c->gemm_flops, c->gemm_rate, c->n_gemm, c->peak_flops, 1, where));
    OS_CHECK(check_rows(c->attn_len, c->attn_rate, c->n_attn, c->peak_flops, 0, where));
    if (!(c->kernel_overhead_s >= 0) || c->kernel_overhead_s > 1.0)
        OS_FAIL(OS_ERR_FORMAT, where, "kernel_overhead_s", "seconds, e.g. 2e-05",
                "%g is outside [0, 1]", c->kernel_overhead_s);
    if (!(c->intra_bw >= 0) || !(c->inter_bw >= 0) || !isfinite(c->intra_bw) || !isfinite(c->inter_bw))
        OS_FAIL(OS_ERR_FORMAT, where, c->intra_bw >= 0 ? "inter_bw" : "intra_bw",
                "bytes/s, 0 = not measured", "must be >= 0");
fail:
    return st;
}

/* ---- file I/O ------------------------------------------------------------------------- */

#define CALIB_MAGIC "# orchsim calibration v1"



static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* "gemm <key> <rate>" / "attn <key> <rate>" */
static OsStatus parse_row(Calib *c, char *s, int gemm, const char *path, int line) {
    OsStatus st = OS_OK;
    char f[160];
    snprintf(f, sizeof f, "%s: line %d: %s row", path, line, gemm ? "gemm" : "attn");
    uint32_t *n = gemm ? &c->n_gemm : &c->n_attn;
    double *x = gemm ? c->gemm_flops : c->attn_len, *y = gemm ? c->gemm_rate : c->attn_rate;
    char *save = NULL;
    char *a = strtok_r(s, " \t", &save), *b = strtok_r(NULL, " \t", &save);
    char *extra = strtok_r(NULL, " \t", &save);
    if (!a || !b || extra)
        OS_FAIL(OS_ERR_FORMAT, f, NULL, gemm ? "write: gemm <flops> <FLOP/s>" : "write: attn <len> <FLOP/s>",
                "expected exactly two numbers");
    if (*n >= CALIB_MAX_POINTS) OS_FAIL(OS_ERR_FORMAT, f, NULL, NULL, "more than %d rows", CALIB_MAX_POINTS);
    OS_CHECK(os_parse_f64(&x[*n], a, 1e-300, 1e300, f));
    OS_CHECK(os_parse_f64(&y[*n], b, 1e-300, 1e300, f));
    if (*n && !(x[*n] > x[*n - 1]))
        OS_FAIL(OS_ERR_FORMAT, f, NULL, "sort the rows by their first column, no repeats",
                "key %g does not exceed the previous row's %g", x[*n], x[*n - 1]);
    if (gemm && *n && x[*n] / y[*n] < x[*n - 1] / y[*n - 1] * (1 - 1e-9))
        OS_FAIL(OS_ERR_FORMAT, f, NULL, "re-measure with more iterations, or drop the noisy row",
                "a %g-FLOP GEMM takes %g s, less than the previous row's %g s", x[*n], x[*n] / y[*n],
                x[*n - 1] / y[*n - 1]);
    (*n)++;
fail:
    return st;
}

static OsStatus parse_kv(Calib *c, int *seen, char *key, char *val, const char *path, int line) {
    OsStatus st = OS_OK;
    char f[160];
    snprintf(f, sizeof f, "%s: line %d: key \"%s\"", path, line, key);
    int k = -1;
    for (int i = 0; i < CK_COUNT; i++)
        if (!strcmp(key, CALIB_KEYS[i])) k = i;
    if (k < 0) {
        for (int i = 0; i < CK_COUNT; i++)
            if (os_edit_distance(key, CALIB_KEYS[i]) <= 1) { /* a typo of a key that matters, not provenance */
                char hint[64];
                snprintf(hint, sizeof hint, "did you mean \"%s\"?", CALIB_KEYS[i]);
                OS_FAIL(OS_ERR_FORMAT, f, NULL, hint, "unknown key");
            }
        if (!meta_key_ok(key))
            OS_FAIL(OS_ERR_FORMAT, f, NULL, "keys are lower-case letters, digits and '_'", "bad key");
        if (calib_get_meta(c, key)) OS_FAIL(OS_ERR_FORMAT, f, NULL, NULL, "given twice");
        if (c->n_meta >= CALIB_MAX_META)
            OS_FAIL(OS_ERR_FORMAT, f, NULL, "drop some provenance lines", "more than %d free-text keys",
                    CALIB_MAX_META);
        if (strlen(val) >= sizeof c->meta_val[0])
            OS_FAIL(OS_ERR_FORMAT, f, NULL, NULL, "value longer than %zu characters",
                    sizeof c->meta_val[0] - 1);
        OS_CHECK(calib_set_meta(c, key, val));
        return OS_OK;
    }
    if (seen[k]) OS_FAIL(OS_ERR_FORMAT, f, NULL, NULL, "already given on line %d", seen[k]);
    seen[k] = line;
    switch ((CalibKey)k) {
    case CK_NAME:
    case CK_DEVICE: {
        char *dst = k == CK_NAME ? c->name : c->device;
        if (strlen(val) >= sizeof c->name) OS_FAIL(OS_ERR_FORMAT, f, NULL, NULL, "longer than 127 characters");
        strcpy(dst, val);
        break;
    }
    case CK_PEAK: OS_CHECK(os_parse_f64(&c->peak_flops, val, 1.0, 1e20, f)); break;
    case CK_OVERHEAD: OS_CHECK(os_parse_f64(&c->kernel_overhead_s, val, 0.0, 1.0, f)); break;
    case CK_INTRA: OS_CHECK(os_parse_f64(&c->intra_bw, val, 0.0, 1e15, f)); break;
    case CK_INTER: OS_CHECK(os_parse_f64(&c->inter_bw, val, 0.0, 1e15, f)); break;
    default: break;
    }
fail:
    return st;
}

OsStatus calib_load(Calib *out, const char *path) {
    OsStatus st = OS_OK;
    Calib c;
    memset(&c, 0, sizeof c);
    int seen[CK_COUNT] = {0}, line = 0, magic = 0;
    char buf[1024], f[48];
    FILE *fp = fopen(path, "r");
    if (!fp)
        OS_FAIL(OS_ERR_IO, path, NULL, "run orchsim calibrate to write one", "cannot open: %s",
                strerror(errno));
    while (fgets(buf, sizeof buf, fp)) {
        line++;
        snprintf(f, sizeof f, "line %d", line);
        if (!strchr(buf, '\n') && !feof(fp))
            OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "line longer than %zu characters", sizeof buf - 2);
        char *s = trim(buf);
        if (!*s) continue;
        if (!magic) {
            if (strcmp(s, CALIB_MAGIC))
                OS_FAIL(OS_ERR_FORMAT, path, f, "is this a calibration file? (orchsim calibrate --out)",
                        "expected \"%s\" as the first line", CALIB_MAGIC);
            magic = 1;
            continue;
        }
        if (*s == '#') continue;
        if (!strncmp(s, "gemm", 4) && isspace((unsigned char)s[4])) {
            OS_CHECK(parse_row(&c, s + 5, 1, path, line));
            continue;
        }
        if (!strncmp(s, "attn", 4) && isspace((unsigned char)s[4])) {
            OS_CHECK(parse_row(&c, s + 5, 0, path, line));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq)
            OS_FAIL(OS_ERR_FORMAT, path, f, "lines are key = value, gemm <flops> <rate> or attn <len> <rate>",
                    "cannot read \"%.40s\"", s);
        *eq = '\0';
        OS_CHECK(parse_kv(&c, seen, trim(s), trim(eq + 1), path, line));
    }
    if (ferror(fp)) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "read error");
    if (!magic) OS_FAIL(OS_ERR_FORMAT, path, NULL, NULL, "empty file");
    if (!seen[CK_PEAK])
        OS_FAIL(OS_ERR_FORMAT, path, "key \"peak_flops\"", "add peak_flops = 989.4e12 for an H100 SXM",
                "missing");
    if (!seen[CK_NAME]) snprintf(c.name, sizeof c.name, "%s", path);
    OS_CHECK(calib_validate(&c, path));
    *out = c;
fail:
    if (fp) fclose(fp);
    return st;
}

OsStatus calib_save(const Calib *c, const char *path) {
    OsStatus st = OS_OK;
    OsOutFile of;
    int open = 0;
    OS_CHECK(calib_validate(c, c->name[0] ? c->name : "calibration"));
    if (strchr(c->name, '\n') || strchr(c->device, '\n'))
        OS_FAIL(OS_ERR_ARG, path, "name/device", NULL, "must be one line");
    OS_CHECK(os_outfile_open(&of, path, 1));
    open = 1;
    FILE *fp = of.fp;
    fprintf(fp, "%s\n# rates in FLOP/s; gemm key = FLOPs of one call (2*M*K*N); attn key = "
                "sequence length\n", CALIB_MAGIC);
    fprintf(fp, "name = %s\ndevice = %s\n", c->name, c->device);
    fprintf(fp, "peak_flops = %.17g\nkernel_overhead_s = %.17g\n", c->peak_flops, c->kernel_overhead_s);
    fprintf(fp, "intra_bw = %.17g\ninter_bw = %.17g\n", c->intra_bw, c->inter_bw);
    for (uint32_t i = 0; i < c->n_meta; i++) fprintf(fp, "%s = %s\n", c->meta_key[i], c->meta_val[i]);
    for (uint32_t i = 0; i < c->n_gemm; i++) fprintf(fp, "gemm %.17g %.17g\n", c->gemm_flops[i], c->gemm_rate[i]);
    for (uint32_t i = 0; i < c->n_attn; i++) fprintf(fp, "attn %.17g %.17g\n", c->attn_len[i], c->attn_rate[i]);
    open = 0;
    OS_CHECK(os_outfile_commit(&of));
    return OS_OK;
fail:
    if (open) os_outfile_abort(&of);
    return st;
}
