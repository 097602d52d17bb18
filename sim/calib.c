/* calib.c — the achieved-rate table the cost model reads: rows, their lookups, and the text
 * file `orchsim calibrate` writes. See cost.h (Calib); the built-in H100 table is calib_h100.c.
 *
 * File format v2 (line-oriented; '#' lines are comments; the first non-blank line is the magic):
 *   # orchsim calibration v2
 *   name = h100-node3                    free text (default: the file's path)
 *   device = NVIDIA H100 80GB HBM3       free text
 *   stack = CUDA 12.4, cuBLAS 12.4       free text: the software stack the rates stand for
 *   attn_kernel = flash-attention-2      free text: which kernel the attn rows measured
 *   peak_flops = 9.894e14                required, FLOP/s
 *   hbm_bw = 3.0e12                      required, bytes/s of a streaming kernel
 *   kernel_launch_s = 4e-06              required, seconds per memory-bound kernel
 *   overlap_slowdown = 0.1               required, [0, 1): compute slowdown beside NCCL
 *   conv = 0.8                           optional, (0, 1]: implicit-GEMM convolution rate over a
 *                                        dense GEMM of the same shape (text-to-image models)
 *   ce_eager_bw = 1.7e12                 optional, bytes/s of PyTorch's eager cross-entropy forward
 *                                        (14 B per logit); absent = hbm_bw
 *   train_metric_ce = 2                  optional, eager cross-entropy forwards per micro-batch for
 *                                        training metrics; absent = 0 (none)
 *   grad_land_bytes = 4                  optional, bytes per parameter per micro-batch landing weight
 *                                        gradients in the framework's buffer; absent = 0 (none)
 *   recompute_early_stop = 1             optional, 0 or 1: full recomputation stops before the
 *                                        block's last GEMM (PyTorch >= 2.1); absent = 0
 *   gemm_sustained = 7.3e14 8192 8192 8192
 *                                        optional, FLOP/s of back-to-back GEMMs of shape m n k held
 *                                        for a minute (a burn); every GEMM row is scaled by
 *                                        min(1, this / the rows' rate at that shape); absent = 1
 *   intra_bw = 0                         bytes/s per direction per GPU, 0 = not measured
 *   inter_bw = 0
 *   clock_mhz = 1980                     any other key = value: kept as free text
 *   gemm <m> <n> <k> <achieved FLOP/s>   C[m x n] = A[m x k] B[k x n]; a complete grid
 *   attn <fwd|bwd> <causal|full> <head dim> <sequence length> <achieved FLOP/s>
 *   layernorm <fwd|bwd> <hidden> <bytes/s on the op's ideal bytes>   optional (cost.h CalibNorm);
 *                                        none = LayerNorm priced as a streaming kernel at hbm_bw
 * Errors name the file, the line and the key or row. A v1 file (GEMMs keyed by FLOPs alone,
 * no HBM bandwidth, one attention rate for both passes) is refused with that reason.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/cost.h"

#define CALIB_MAGIC "# orchsim calibration v2"
#define CALIB_MAGIC_V1 "# orchsim calibration v1"

/* ---- rows ------------------------------------------------------------------------------- */

OsStatus calib_add_gemm(Calib *c, double m, double n, double k, double rate) {
    if (c->n_gemm >= CALIB_MAX_GEMM)
        return os_fail(OS_ERR_RANGE, c->name[0] ? c->name : "calibration", "gemm", NULL,
                       "more than %d gemm rows", CALIB_MAX_GEMM);
    c->gemm[c->n_gemm++] = (CalibGemm){m, n, k, rate};
    return OS_OK;
}

OsStatus calib_add_attn(Calib *c, AttnDir dir, int causal, uint32_t hdim, double len, double rate) {
    if (c->n_attn >= CALIB_MAX_ATTN)
        return os_fail(OS_ERR_RANGE, c->name[0] ? c->name : "calibration", "attn", NULL,
                       "more than %d attn rows", CALIB_MAX_ATTN);
    c->attn[c->n_attn++] = (CalibAttn){(uint8_t)dir, (uint8_t)(causal != 0), hdim, len, rate};
    return OS_OK;
}

OsStatus calib_add_norm(Calib *c, AttnDir dir, uint32_t hidden, double bw) {
    if (c->n_norm >= CALIB_MAX_NORM)
        return os_fail(OS_ERR_RANGE, c->name[0] ? c->name : "calibration", "layernorm", NULL,
                       "more than %d layernorm rows", CALIB_MAX_NORM);
    c->norm[c->n_norm++] = (CalibNorm){(uint8_t)dir, hidden, bw};
    return OS_OK;
}

/* ---- provenance ----------------------------------------------------------------------- */

typedef enum {
    CK_NAME, CK_DEVICE, CK_STACK, CK_ATTN_KERNEL, CK_PEAK, CK_HBM, CK_LAUNCH, CK_OVERLAP, CK_INTRA,
    CK_INTER, CK_CONV, CK_CE_EAGER, CK_METRIC_CE, CK_GRAD_LAND, CK_EARLY_STOP,
    CK_GEMM_SUSTAINED, CK_COUNT
} CalibKey;
static const char *const CALIB_KEYS[CK_COUNT] = {"name",    "device",          "stack",
                                                 "attn_kernel", "peak_flops",  "hbm_bw",
                                                 "kernel_launch_s", "overlap_slowdown",
                                                 "intra_bw", "inter_bw", "conv", "ce_eager_bw",
                                                 "train_metric_ce", "grad_land_bytes",
                                                 "recompute_early_stop", "gemm_sustained"};
/* keys the cost model cannot do without: a file missing one is refused, naming it */
static const int CALIB_REQUIRED[CK_COUNT] = {[CK_PEAK] = 1, [CK_HBM] = 1, [CK_LAUNCH] = 1,
                                             [CK_OVERLAP] = 1};

/* Provenance keys: [a-z0-9_]+, not a key the table itself uses, not a row keyword. */
static int meta_key_ok(const char *k) {
    size_t n = strlen(k);
    for (int i = 0; i < CK_COUNT; i++)
        if (!strcmp(k, CALIB_KEYS[i])) return 0;
    if (!strcmp(k, "gemm") || !strcmp(k, "attn") || !strcmp(k, "layernorm")) return 0;
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

/* ---- validation and the lookup structures --------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_attn(const void *a, const void *b) {
    const CalibAttn *x = a, *y = b;
    if (x->dir != y->dir) return (int)x->dir - (int)y->dir;
    if (x->causal != y->causal) return (int)x->causal - (int)y->causal;
    if (x->hdim != y->hdim) return x->hdim < y->hdim ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

static int axis_index(const double *ax, uint32_t n, double v) {
    for (uint32_t i = 0; i < n; i++)
        if (ax[i] == v) return (int)i;
    return -1;
}

/* Distinct sorted values of one GEMM dimension. */
static OsStatus build_axis(Calib *c, int d, const char *where) {
    OsStatus st = OS_OK;
    static const char *const DIM[3] = {"m", "n", "k"};
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_gemm; i++) {
        double v = d == 0 ? c->gemm[i].m : d == 1 ? c->gemm[i].n : c->gemm[i].k;
        if (axis_index(c->ax[d], n, v) >= 0) continue;
        if (n >= CALIB_MAX_AXIS)
            OS_FAIL(OS_ERR_FORMAT, where, "gemm", "measure at most 16 sizes per dimension",
                    "more than %d distinct values of %s", CALIB_MAX_AXIS, DIM[d]);
        c->ax[d][n++] = v;
    }
    qsort(c->ax[d], n, sizeof(double), cmp_double);
    c->ax_n[d] = n;
fail:
    return st;
}

static size_t grid_at(const Calib *c, uint32_t i, uint32_t j, uint32_t l) {
    return ((size_t)i * c->ax_n[1] + j) * c->ax_n[2] + l;
}

/* Clamp rates so that time (FLOPs / rate) never falls as any one dimension grows: rate at a
 * point may exceed its lower neighbour's only in proportion to the size. Rates only fall, so
 * repeating the three sweeps converges; interpolating log(rate) linearly in log(size) between
 * such points then keeps time monotone everywhere (cost.h). */
static void grid_monotone(Calib *c) {
    uint32_t nd[3] = {c->ax_n[0], c->ax_n[1], c->ax_n[2]};
    for (int iter = 0; iter < 64; iter++) {
        int changed = 0;
        for (int d = 0; d < 3; d++)
            for (uint32_t i = 0; i < nd[0]; i++)
                for (uint32_t j = 0; j < nd[1]; j++)
                    for (uint32_t l = 0; l < nd[2]; l++) {
                        uint32_t idx[3] = {i, j, l};
                        if (idx[d] == 0) continue;
                        uint32_t prev[3] = {i, j, l};
                        prev[d]--;
                        size_t a = grid_at(c, idx[0], idx[1], idx[2]);
                        size_t b = grid_at(c, prev[0], prev[1], prev[2]);
                        double cap = c->grid_lr[b] + log(c->ax[d][idx[d]] / c->ax[d][prev[d]]);
                        if (c->grid_lr[a] > cap + 1e-12) c->grid_lr[a] = cap, changed = 1;
                    }
        if (!changed) break;
    }
}

static OsStatus check_rate(double rate, double peak, const char *where, const char *f) {
    if (!(rate > 0) || !isfinite(rate) || !(rate <= peak * 1.0000001))
        return os_fail(OS_ERR_FORMAT, where, f, "rates are achieved FLOP/s, at most peak_flops",
                       "rate %g is outside (0, %g]", rate, peak);
    return OS_OK;
}

static OsStatus prepare_gemm(Calib *c, const char *where) {
    OsStatus st = OS_OK;
    char f[96];
    if (c->n_gemm == 0)
        OS_FAIL(OS_ERR_FORMAT, where, "gemm", "run orchsim calibrate, or start from `orchsim calibrate --default`",
                "no gemm rows");
    if (c->n_gemm > CALIB_MAX_GEMM)
        OS_FAIL(OS_ERR_FORMAT, where, "gemm", NULL, "more than %d gemm rows", CALIB_MAX_GEMM);
    for (uint32_t i = 0; i < c->n_gemm; i++) {
        const CalibGemm *g = &c->gemm[i];
        snprintf(f, sizeof f, "gemm row %u", i + 1);
        if (!(g->m >= 1) || !(g->n >= 1) || !(g->k >= 1) || !isfinite(g->m) || !isfinite(g->n) ||
            !isfinite(g->k) || g->m > 1e9 || g->n > 1e9 || g->k > 1e9)
            OS_FAIL(OS_ERR_FORMAT, where, f, "m, n, k are matrix sizes, 1 to 1e9", "size %g x %g x %g",
                    g->m, g->n, g->k);
        OS_CHECK(check_rate(g->rate, c->peak_flops, where, f));
    }
    for (int d = 0; d < 3; d++) OS_CHECK(build_axis(c, d, where));
    size_t cells = (size_t)c->ax_n[0] * c->ax_n[1] * c->ax_n[2];
    if (cells > CALIB_MAX_GEMM || cells != c->n_gemm) {
        /* find a missing or repeated cell to name */
        static unsigned char seen[CALIB_MAX_GEMM];
        memset(seen, 0, sizeof seen);
        for (uint32_t r = 0; r < c->n_gemm && cells <= CALIB_MAX_GEMM; r++) {
            const CalibGemm *g = &c->gemm[r];
            size_t a = grid_at(c, (uint32_t)axis_index(c->ax[0], c->ax_n[0], g->m),
                               (uint32_t)axis_index(c->ax[1], c->ax_n[1], g->n),
                               (uint32_t)axis_index(c->ax[2], c->ax_n[2], g->k));
            if (seen[a]) {
                snprintf(f, sizeof f, "gemm row %u", r + 1);
                OS_FAIL(OS_ERR_FORMAT, where, f, "one row per (m, n, k)", "%g x %g x %g given twice", g->m, g->n, g->k);
            }
            seen[a] = 1;
        }
        for (uint32_t i = 0; i < c->ax_n[0] && cells <= CALIB_MAX_GEMM; i++)
            for (uint32_t j = 0; j < c->ax_n[1]; j++)
                for (uint32_t l = 0; l < c->ax_n[2]; l++)
                    if (!seen[grid_at(c, i, j, l)])
                        OS_FAIL(OS_ERR_FORMAT, where, "gemm", "measure every combination of the m, n and k sizes used",
                                "the rows are not a complete grid: %g x %g x %g is missing", c->ax[0][i],
                                c->ax[1][j], c->ax[2][l]);
        OS_FAIL(OS_ERR_FORMAT, where, "gemm", "use at most 512 (m, n, k) cells", "%zu grid cells", cells);
    }
    for (uint32_t r = 0; r < c->n_gemm; r++) {
        const CalibGemm *g = &c->gemm[r];
        size_t a = grid_at(c, (uint32_t)axis_index(c->ax[0], c->ax_n[0], g->m),
                           (uint32_t)axis_index(c->ax[1], c->ax_n[1], g->n),
                           (uint32_t)axis_index(c->ax[2], c->ax_n[2], g->k));
        c->grid_lr[a] = log(g->rate);
    }
    grid_monotone(c);
fail:
    return st;
}

/* Sustained GEMM throughput. The gemm rows are burst measurements: each shape timed for
 * milliseconds to seconds from a cool GPU (OpenXLA's table: 5 profiled runs per shape; the
 * MAMF finder: 100 after 50 warm-ups). Held for a minute, as through a training run, the
 * same GEMMs settle at a lower clock once the board reaches its power and thermal limits
 * (an H100 SXM burn: ~730 TFLOP/s at 8192^3 against the burst table's ~808; calib_h100.c).
 * One sustained figure at a reference shape rescales every GEMM row by the ratio of the two,
 * never above 1 (a table measured throttled, or on an older, slower library, keeps its rates).
 * Only GEMMs: the burn is a GEMM, near the tensor cores' peak power; attention kernels of the
 * FlashAttention v1/v2 class run at 15-35% of that peak and memory-bound kernels on HBM,
 * whose clock the power limit does not lower, so their burst rates stand. The scale is
 * folded into grid_lr (rebuilt from the rows by prepare_gemm on every validation, so a table
 * validated twice is not scaled twice). Simplification: small, launch-bound GEMMs draw less
 * power than the burn and are scaled all the same (at most 1/scale too slow); in a training
 * step's large GEMMs, where the time is, the burn's conditions hold. */
static OsStatus prepare_sustain(Calib *c, const char *where) {
    OsStatus st = OS_OK;
    c->gemm_sustain_scale = 1.0;
    if (c->gemm_sustained == 0) return OS_OK;
    const double *q = c->gemm_sustained_mnk;
    if (!(c->gemm_sustained > 0) || !isfinite(c->gemm_sustained) || c->gemm_sustained > c->peak_flops)
        OS_FAIL(OS_ERR_FORMAT, where, "gemm_sustained", "FLOP/s up to peak_flops, 0 = not measured",
                "%g is outside (0, %g]", c->gemm_sustained, c->peak_flops);
    for (int d = 0; d < 3; d++)
        if (!(q[d] >= 1) || !(q[d] <= 1e9))
            OS_FAIL(OS_ERR_FORMAT, where, "gemm_sustained", "write: gemm_sustained = <FLOP/s> <m> <n> <k>",
                    "reference shape %g x %g x %g: sizes are 1 to 1e9", q[0], q[1], q[2]);
    double burst = calib_gemm_rate(c, q[0], q[1], q[2]);
    double scale = fmin(1.0, c->gemm_sustained / burst);
    if (scale < 0.25)
        OS_FAIL(OS_ERR_FORMAT, where, "gemm_sustained",
                "a burn runs at most a few tens of percent below a burst measurement; check the shape and units",
                "%.4g FLOP/s is %.1f%% of the gemm rows' %.4g at %g x %g x %g", c->gemm_sustained,
                100 * c->gemm_sustained / burst, burst, q[0], q[1], q[2]);
    c->gemm_sustain_scale = scale;
    size_t cells = (size_t)c->ax_n[0] * c->ax_n[1] * c->ax_n[2];
    for (size_t i = 0; i < cells; i++) c->grid_lr[i] += log(scale);
fail:
    return st;
}

void calib_sustain_text(const Calib *c, char *buf, size_t cap) {
    if (c->gemm_sustained > 0)
        snprintf(buf, cap, "at %.3f of the table's burst rates (gemm_sustained: a minute-long burn of %.0f TFLOP/s at "
                 "%gx%gx%g)", c->gemm_sustain_scale, c->gemm_sustained / 1e12, c->gemm_sustained_mnk[0],
                 c->gemm_sustained_mnk[1], c->gemm_sustained_mnk[2]);
    else
        snprintf(buf, cap, "at the table's own rates (no gemm_sustained: burst measurements taken as sustained)");
}

static OsStatus prepare_attn(Calib *c, const char *where) {
    OsStatus st = OS_OK;
    char f[96];
    if (c->n_attn > CALIB_MAX_ATTN)
        OS_FAIL(OS_ERR_FORMAT, where, "attn", NULL, "more than %d attn rows", CALIB_MAX_ATTN);
    for (uint32_t i = 0; i < c->n_attn; i++) {
        const CalibAttn *a = &c->attn[i];
        snprintf(f, sizeof f, "attn row %u", i + 1);
        if (a->dir > 1 || a->causal > 1 || a->hdim < 1 || a->hdim > 4096 || !(a->len >= 1) || !isfinite(a->len) ||
            a->len > 1e8)
            OS_FAIL(OS_ERR_FORMAT, where, f, "attn <fwd|bwd> <causal|full> <head dim 1..4096> <length 1..1e8> <rate>",
                    "bad key");
        OS_CHECK(check_rate(a->rate, c->peak_flops, where, f));
    }
    qsort(c->attn, c->n_attn, sizeof *c->attn, cmp_attn);
    for (uint32_t i = 1; i < c->n_attn; i++)
        if (!cmp_attn(&c->attn[i], &c->attn[i - 1]))
            OS_FAIL(OS_ERR_FORMAT, where, "attn", "one row per (pass, mask, head dim, length)",
                    "%s %s head dim %u length %g given twice", c->attn[i].dir ? "bwd" : "fwd",
                    c->attn[i].causal ? "causal" : "full", c->attn[i].hdim, c->attn[i].len);
    for (int d = 0; d < 2; d++)
        for (int cz = 0; cz < 2; cz++) {
            int found = 0;
            for (uint32_t i = 0; i < c->n_attn; i++) found |= c->attn[i].dir == d && c->attn[i].causal == cz;
            if (!found) {
                snprintf(f, sizeof f, "attn %s %s", d ? "bwd" : "fwd", cz ? "causal" : "full");
                OS_FAIL(OS_ERR_FORMAT, where, f,
                        "the cost model prices forward and backward, causal and bidirectional attention apart",
                        "no rows");
            }
        }
fail:
    return st;
}

static int cmp_norm(const void *a, const void *b) {
    const CalibNorm *x = a, *y = b;
    if (x->dir != y->dir) return (int)x->dir - (int)y->dir;
    return (x->hidden > y->hidden) - (x->hidden < y->hidden);
}

/* The optional stack keys: LayerNorm rows sorted and unique, the scalars in range. */
static OsStatus prepare_stack(Calib *c, const char *where) {
    OsStatus st = OS_OK;
    char f[96];
    if (c->n_norm > CALIB_MAX_NORM)
        OS_FAIL(OS_ERR_FORMAT, where, "layernorm", NULL, "more than %d layernorm rows", CALIB_MAX_NORM);
    for (uint32_t i = 0; i < c->n_norm; i++) {
        const CalibNorm *r = &c->norm[i];
        snprintf(f, sizeof f, "layernorm row %u", i + 1);
        if (r->dir > 1 || r->hidden < 1 || r->hidden > 1000000 || !(r->bw > 0) || !isfinite(r->bw) || r->bw > 1e15)
            OS_FAIL(OS_ERR_FORMAT, where, f, "layernorm <fwd|bwd> <hidden 1..1e6> <bytes/s up to 1e15>", "bad row");
    }
    qsort(c->norm, c->n_norm, sizeof *c->norm, cmp_norm);
    for (uint32_t i = 1; i < c->n_norm; i++)
        if (!cmp_norm(&c->norm[i], &c->norm[i - 1]))
            OS_FAIL(OS_ERR_FORMAT, where, "layernorm", "one row per (pass, hidden)", "%s hidden %u given twice",
                    c->norm[i].dir ? "bwd" : "fwd", c->norm[i].hidden);
    if (!(c->ce_eager_bw >= 0) || c->ce_eager_bw > 1e15)
        OS_FAIL(OS_ERR_FORMAT, where, "ce_eager_bw", "bytes/s, 0 = priced at hbm_bw", "%g is outside [0, 1e15]",
                c->ce_eager_bw);
    if (!(c->metric_ce >= 0) || c->metric_ce > 16)
        OS_FAIL(OS_ERR_FORMAT, where, "train_metric_ce", "cross-entropy passes per micro-batch, 0 = none",
                "%g is outside [0, 16]", c->metric_ce);
    if (!(c->grad_land_bytes >= 0) || c->grad_land_bytes > 1024)
        OS_FAIL(OS_ERR_FORMAT, where, "grad_land_bytes", "bytes per parameter per micro-batch, 0 = none",
                "%g is outside [0, 1024]", c->grad_land_bytes);
    if (c->recompute_early_stop > 1)
        OS_FAIL(OS_ERR_FORMAT, where, "recompute_early_stop", "0 or 1", "%u", c->recompute_early_stop);
fail:
    return st;
}

OsStatus calib_validate(Calib *c, const char *where) {
    OsStatus st = OS_OK;
    if (!(c->peak_flops > 0) || !isfinite(c->peak_flops) || c->peak_flops > 1e20)
        OS_FAIL(OS_ERR_FORMAT, where, "peak_flops", "989.4e12 for an H100 SXM (bf16 dense)",
                "must be a positive number");
    if (!(c->hbm_bw > 0) || !isfinite(c->hbm_bw) || c->hbm_bw > 1e15)
        OS_FAIL(OS_ERR_FORMAT, where, "hbm_bw", "bytes/s a streaming kernel achieves (H100 SXM: see the built-in table)",
                "must be a positive number up to 1e15");
    if (!(c->kernel_launch_s >= 0) || c->kernel_launch_s > 1e-2)
        OS_FAIL(OS_ERR_FORMAT, where, "kernel_launch_s", "seconds, e.g. 4e-06", "%g is outside [0, 0.01]",
                c->kernel_launch_s);
    if (!(c->overlap_slowdown >= 0) || !(c->overlap_slowdown < 1))
        OS_FAIL(OS_ERR_FORMAT, where, "overlap_slowdown", "a fraction: 0.1 = compute 10% slower beside NCCL",
                "%g is outside [0, 1)", c->overlap_slowdown);
    OS_CHECK(prepare_gemm(c, where));
    OS_CHECK(prepare_sustain(c, where));
    OS_CHECK(prepare_attn(c, where));
    if (!(c->intra_bw >= 0) || !(c->inter_bw >= 0) || !isfinite(c->intra_bw) || !isfinite(c->inter_bw))
        OS_FAIL(OS_ERR_FORMAT, where, c->intra_bw >= 0 ? "inter_bw" : "intra_bw",
                "bytes/s, 0 = not measured", "must be >= 0");
    if (!(c->conv_frac >= 0) || c->conv_frac > 1)
        OS_FAIL(OS_ERR_FORMAT, where, "conv", "a fraction of the GEMM rate, e.g. 0.8; 0 = not measured",
                "%g is outside [0, 1]", c->conv_frac);
    OS_CHECK(prepare_stack(c, where));
fail:
    return st;
}

/* ---- lookups -------------------------------------------------------------------------- */

/* Bracket q on a sorted axis: lo, hi and the log-space weight of hi (0 when clamped). */
static void bracket(const double *ax, uint32_t n, double q, uint32_t *lo, uint32_t *hi, double *w) {
    if (n <= 1 || !(q > ax[0])) {
        *lo = *hi = 0;
        *w = 0;
        return;
    }
    if (q >= ax[n - 1]) {
        *lo = *hi = n - 1;
        *w = 0;
        return;
    }
    uint32_t a = 0, b = n - 1;
    while (b - a > 1) {
        uint32_t mid = a + (b - a) / 2;
        if (ax[mid] <= q) a = mid;
        else b = mid;
    }
    *lo = a, *hi = b;
    *w = log(q / ax[a]) / log(ax[b] / ax[a]);
}

double calib_gemm_rate(const Calib *c, double m, double n, double k) {
    if (c->n_gemm == 0 || c->ax_n[0] == 0) return c->peak_flops; /* unvalidated hand-made table */
    double q[3] = {m, n, k}, scale = 1.0;
    uint32_t lo[3], hi[3];
    double w[3];
    for (int d = 0; d < 3; d++) {
        /* below the grid: the smallest size's time, so the rate falls in proportion */
        if (q[d] < c->ax[d][0]) {
            if (q[d] > 0) scale *= q[d] / c->ax[d][0];
            q[d] = c->ax[d][0];
        }
        bracket(c->ax[d], c->ax_n[d], q[d], &lo[d], &hi[d], &w[d]);
    }
    double acc = 0;
    for (int corner = 0; corner < 8; corner++) {
        double wt = 1;
        uint32_t id[3];
        for (int d = 0; d < 3; d++) {
            int up = (corner >> d) & 1;
            wt *= up ? w[d] : 1 - w[d];
            id[d] = up ? hi[d] : lo[d];
        }
        if (wt == 0) continue;
        acc += wt * c->grid_lr[grid_at(c, id[0], id[1], id[2])];
    }
    return exp(acc) * scale;
}

void calib_gemm_line(CalibLine *l, const Calib *c, int axis, double a, double b) {
    memset(l, 0, sizeof *l);
    l->axis = (uint8_t)axis;
    l->scale = 1.0;
    if (c->n_gemm == 0 || c->ax_n[0] == 0) {
        l->ready = 1;
        return;
    }
    double fixed[2] = {a, b};
    int dims[2], nd = 0;
    for (int d = 0; d < 3; d++)
        if (d != axis) dims[nd++] = d;
    uint32_t lo[2], hi[2];
    double w[2];
    for (int j = 0; j < 2; j++) {
        int d = dims[j];
        double q = fixed[j];
        if (q < c->ax[d][0]) {
            if (q > 0) l->scale *= q / c->ax[d][0];
            q = c->ax[d][0];
        }
        bracket(c->ax[d], c->ax_n[d], q, &lo[j], &hi[j], &w[j]);
    }
    for (uint32_t v = 0; v < c->ax_n[axis]; v++) {
        double acc = 0;
        for (int corner = 0; corner < 4; corner++) {
            double wt = 1;
            uint32_t id[3];
            id[axis] = v;
            for (int j = 0; j < 2; j++) {
                int up = (corner >> j) & 1;
                wt *= up ? w[j] : 1 - w[j];
                id[dims[j]] = up ? hi[j] : lo[j];
            }
            if (wt == 0) continue;
            acc += wt * c->grid_lr[grid_at(c, id[0], id[1], id[2])];
        }
        l->lr[v] = acc;
    }
    l->ready = 1;
}

double calib_line_rate(const CalibLine *l, const Calib *c, double x) {
    if (c->n_gemm == 0 || c->ax_n[0] == 0) return c->peak_flops;
    int d = l->axis;
    double scale = l->scale;
    if (x < c->ax[d][0]) {
        if (x > 0) scale *= x / c->ax[d][0];
        x = c->ax[d][0];
    }
    uint32_t lo, hi;
    double w;
    bracket(c->ax[d], c->ax_n[d], x, &lo, &hi, &w);
    double lr = w == 0 ? l->lr[lo] : (1 - w) * l->lr[lo] + w * l->lr[hi];
    return exp(lr) * scale;
}

/* Rate along one (dir, causal, hdim) curve [a, b) of the sorted rows. */
static double curve_rate(const CalibAttn *r, uint32_t a, uint32_t b, double len) {
    if (len <= r[a].len) return r[a].rate * (len > 0 ? len / r[a].len : 0); /* partial tiles */
    if (len >= r[b - 1].len) return r[b - 1].rate;
    uint32_t i = a;
    while (i + 1 < b && r[i + 1].len <= len) i++;
    double t = log(len / r[i].len) / log(r[i + 1].len / r[i].len);
    return r[i].rate * exp(t * log(r[i + 1].rate / r[i].rate));
}

double calib_attn_rate(const Calib *c, AttnDir dir, int causal, uint32_t hdim, double len) {
    const CalibAttn *r = c->attn;
    uint32_t n = c->n_attn, a = 0;
    causal = causal != 0;
    while (a < n && (r[a].dir != dir || r[a].causal != causal)) a++;
    if (a == n) return c->peak_flops; /* unvalidated table */
    /* curves of this (dir, causal): find the head dims bracketing hdim */
    uint32_t lo_a = a, lo_b = a, hi_a = n, hi_b = n, i = a;
    while (i < n && r[i].dir == dir && r[i].causal == causal) {
        uint32_t j = i;
        while (j < n && r[j].dir == dir && r[j].causal == causal && r[j].hdim == r[i].hdim) j++;
        if (r[i].hdim <= hdim || lo_b == a) lo_a = i, lo_b = j; /* largest hdim <= q (or the smallest) */
        if (r[i].hdim >= hdim && hi_a == n) hi_a = i, hi_b = j; /* smallest hdim >= q */
        i = j;
    }
    if (hi_a == n) hi_a = lo_a, hi_b = lo_b; /* above every curve */
    double rl = curve_rate(r, lo_a, lo_b, len);
    if (hi_a == lo_a || r[lo_a].hdim >= hdim) return rl;
    double rh = curve_rate(r, hi_a, hi_b, len);
    double t = log((double)hdim / r[lo_a].hdim) / log((double)r[hi_a].hdim / r[lo_a].hdim);
    return rl * exp(t * log(rh / rl));
}

double calib_norm_bw(const Calib *c, AttnDir dir, uint32_t hidden) {
    uint32_t a = 0, b;
    while (a < c->n_norm && c->norm[a].dir != dir) a++;
    for (b = a; b < c->n_norm && c->norm[b].dir == dir; b++) {}
    if (a == b) return dir == ATTN_BWD ? c->hbm_bw * 3.0 / 5.0 : c->hbm_bw; /* no rows: streaming */
    const CalibNorm *r = c->norm;
    if (hidden <= r[a].hidden) return r[a].bw;
    if (hidden >= r[b - 1].hidden) return r[b - 1].bw;
    uint32_t i = a;
    while (i + 1 < b && r[i + 1].hidden <= hidden) i++;
    double t = log((double)hidden / r[i].hidden) / log((double)r[i + 1].hidden / r[i].hidden);
    return r[i].bw * exp(t * log(r[i + 1].bw / r[i].bw));
}

/* ---- file I/O ------------------------------------------------------------------------- */

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Split s into at most max whitespace-separated words; returns the count (max + 1 when more). */
static int words(char *s, char **w, int max) {
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == max) return max + 1;
        w[n++] = t;
    }
    return n;
}

static OsStatus parse_gemm(Calib *c, char *s, const char *path, int line) {
    OsStatus st = OS_OK;
    char f[160];
    snprintf(f, sizeof f, "%s: line %d: gemm row", path, line);
    char *w[4];
    double v[4];
    if (words(s, w, 4) != 4) OS_FAIL(OS_ERR_FORMAT, f, NULL, "write: gemm <m> <n> <k> <FLOP/s>", "expected four numbers");
    for (int i = 0; i < 3; i++) OS_CHECK(os_parse_f64(&v[i], w[i], 1, 1e9, f));
    OS_CHECK(os_parse_f64(&v[3], w[3], 1e9, 1e17, f)); /* FLOP/s: a GPU's range, not any double */
    OS_CHECK(calib_add_gemm(c, v[0], v[1], v[2], v[3]));
fail:
    return st;
}

/* A row's pass word: 0 fwd, 1 bwd, -1 neither. */
static int pass_word(const char *w) { return !strcmp(w, "fwd") ? 0 : !strcmp(w, "bwd") ? 1 : -1; }

static OsStatus parse_attn(Calib *c, char *s, const char *path, int line) {
    OsStatus st = OS_OK;
    char f[160];
    snprintf(f, sizeof f, "%s: line %d: attn row", path, line);
    char *w[5];
    const char *form = "write: attn <fwd|bwd> <causal|full> <head dim> <length> <FLOP/s>";
    if (words(s, w, 5) != 5) OS_FAIL(OS_ERR_FORMAT, f, NULL, form, "expected five fields");
    int dir = pass_word(w[0]);
    int causal = !strcmp(w[1], "causal") ? 1 : !strcmp(w[1], "full") ? 0 : -1;
    if (dir < 0) OS_FAIL(OS_ERR_FORMAT, f, NULL, form, "'%s' is not fwd or bwd", w[0]);
    if (causal < 0) OS_FAIL(OS_ERR_FORMAT, f, NULL, form, "'%s' is not causal or full", w[1]);
    uint64_t hd;
    double len, rate;
    OS_CHECK(os_parse_u64(&hd, w[2], 1, 4096, f));
    OS_CHECK(os_parse_f64(&len, w[3], 1, 1e8, f));
    OS_CHECK(os_parse_f64(&rate, w[4], 1e9, 1e17, f));
    OS_CHECK(calib_add_attn(c, (AttnDir)dir, causal, (uint32_t)hd, len, rate));
fail:
    return st;
}

static OsStatus parse_norm(Calib *c, char *s, const char *path, int line) {
    OsStatus st = OS_OK;
    char f[160];
    snprintf(f, sizeof f, "%s: line %d: layernorm row", path, line);
    char *w[3];
    const char *form = "write: layernorm <fwd|bwd> <hidden> <bytes/s>";
    if (words(s, w, 3) != 3) OS_FAIL(OS_ERR_FORMAT, f, NULL, form, "expected three fields");
    int dir = pass_word(w[0]);
    if (dir < 0) OS_FAIL(OS_ERR_FORMAT, f, NULL, form, "'%s' is not fwd or bwd", w[0]);
    uint64_t hidden;
    double bw;
    OS_CHECK(os_parse_u64(&hidden, w[1], 1, 1000000, f));
    OS_CHECK(os_parse_f64(&bw, w[2], 1e6, 1e15, f));
    OS_CHECK(calib_add_norm(c, (AttnDir)dir, (uint32_t)hidden, bw));
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
        if (!strcmp(key, "kernel_overhead_s"))
            OS_FAIL(OS_ERR_FORMAT, f, NULL, "v2 tables price memory-bound kernels by bytes: give hbm_bw and kernel_launch_s",
                    "a v1 key");
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
    case CK_DEVICE:
    case CK_STACK:
    case CK_ATTN_KERNEL: {
        char *dst = k == CK_NAME ? c->name : k == CK_DEVICE ? c->device : k == CK_STACK ? c->stack : c->attn_kernel;
        size_t cap = k == CK_NAME ? sizeof c->name : k == CK_DEVICE ? sizeof c->device
                     : k == CK_STACK ? sizeof c->stack : sizeof c->attn_kernel;
        if (strlen(val) >= cap) OS_FAIL(OS_ERR_FORMAT, f, NULL, NULL, "longer than %zu characters", cap - 1);
        strcpy(dst, val);
        break;
    }
    case CK_PEAK: OS_CHECK(os_parse_f64(&c->peak_flops, val, 1e12, 1e17, f)); break;
    case CK_HBM: OS_CHECK(os_parse_f64(&c->hbm_bw, val, 1e6, 1e15, f)); break;
    case CK_LAUNCH: OS_CHECK(os_parse_f64(&c->kernel_launch_s, val, 0.0, 1e-2, f)); break;
    case CK_OVERLAP: OS_CHECK(os_parse_f64(&c->overlap_slowdown, val, 0.0, 0.999999, f)); break;
    case CK_INTRA:
    case CK_INTER: { /* bytes/s per direction per GPU: 0 = not measured, else a real link's range */
        double *bw = k == CK_INTRA ? &c->intra_bw : &c->inter_bw;
        OS_CHECK(os_parse_f64(bw, val, 0.0, 1e14, f));
        if (*bw != 0 && *bw < 1e8)
            OS_FAIL(OS_ERR_RANGE, f, NULL, "0 (not measured) or 1e8 ... 1e14 bytes/s", "%g bytes/s is no link", *bw);
        break;
    }
    case CK_CONV: OS_CHECK(os_parse_f64(&c->conv_frac, val, 1e-3, 1.0, f)); break;
    case CK_CE_EAGER: OS_CHECK(os_parse_f64(&c->ce_eager_bw, val, 0.0, 1e15, f)); break;
    case CK_METRIC_CE: OS_CHECK(os_parse_f64(&c->metric_ce, val, 0.0, 16.0, f)); break;
    case CK_GRAD_LAND: OS_CHECK(os_parse_f64(&c->grad_land_bytes, val, 0.0, 1024.0, f)); break;
    case CK_EARLY_STOP: {
        uint64_t v;
        OS_CHECK(os_parse_u64(&v, val, 0, 1, f));
        c->recompute_early_stop = (uint32_t)v;
        break;
    }
    case CK_GEMM_SUSTAINED: {
        char *w[4];
        const char *form = "write: gemm_sustained = <FLOP/s> <m> <n> <k> (0 = not measured)";
        int nw = words(val, w, 4);
        if (nw == 1 && !strcmp(w[0], "0")) break;
        if (nw != 4) OS_FAIL(OS_ERR_FORMAT, f, NULL, form, "expected four fields, got %d", nw);
        OS_CHECK(os_parse_f64(&c->gemm_sustained, w[0], 1e9, 1e17, f));
        for (int d = 0; d < 3; d++) OS_CHECK(os_parse_f64(&c->gemm_sustained_mnk[d], w[d + 1], 1, 1e9, f));
        break;
    }
    default: break;
    }
fail:
    return st;
}

OsStatus calib_load(Calib *out, const char *path) {
    OsStatus st = OS_OK;
    Calib *c = calloc(1, sizeof *c);
    int seen[CK_COUNT] = {0}, line = 0, magic = 0;
    char buf[1024], f[48];
    FILE *fp = NULL;
    ALLOC_CHECK(c);
    fp = fopen(path, "r");
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
            if (!strcmp(s, CALIB_MAGIC_V1))
                OS_FAIL(OS_ERR_FORMAT, path, f,
                        "re-run orchsim calibrate, or start from `orchsim calibrate --default -o FILE`",
                        "a v1 table: GEMMs keyed by FLOPs alone, one attention rate for both passes, no HBM "
                        "bandwidth; the cost model needs the v2 keys");
            if (strcmp(s, CALIB_MAGIC))
                OS_FAIL(OS_ERR_FORMAT, path, f, "is this a calibration file? (orchsim calibrate --out)",
                        "expected \"%s\" as the first line", CALIB_MAGIC);
            magic = 1;
            continue;
        }
        if (*s == '#') continue;
        if (!strncmp(s, "gemm", 4) && isspace((unsigned char)s[4])) {
            OS_CHECK(parse_gemm(c, s + 5, path, line));
            continue;
        }
        if (!strncmp(s, "attn", 4) && isspace((unsigned char)s[4])) {
            OS_CHECK(parse_attn(c, s + 5, path, line));
            continue;
        }
        if (!strncmp(s, "layernorm", 9) && isspace((unsigned char)s[9])) {
            OS_CHECK(parse_norm(c, s + 10, path, line));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq)
            OS_FAIL(OS_ERR_FORMAT, path, f, "lines are key = value, gemm <m> <n> <k> <rate> or attn ...",
                    "cannot read \"%.40s\"", s);
        *eq = '\0';
        OS_CHECK(parse_kv(c, seen, trim(s), trim(eq + 1), path, line));
    }
    if (ferror(fp)) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "read error");
    if (!magic) OS_FAIL(OS_ERR_FORMAT, path, NULL, NULL, "empty file");
    for (int k = 0; k < CK_COUNT; k++)
        if (CALIB_REQUIRED[k] && !seen[k]) {
            char fk[64];
            snprintf(fk, sizeof fk, "key \"%s\"", CALIB_KEYS[k]);
            OS_FAIL(OS_ERR_FORMAT, path, fk, "every v2 table gives it (see sim/README-models.md §5)",
                    "missing: the cost model never reads a missing figure as zero");
        }
    if (!seen[CK_NAME]) snprintf(c->name, sizeof c->name, "%s", path);
    OS_CHECK(calib_validate(c, path));
    *out = *c;
fail:
    if (fp) fclose(fp);
    free(c);
    return st;
}

OsStatus calib_save(const Calib *in, const char *path) {
    OsStatus st = OS_OK;
    OsOutFile of;
    int open = 0;
    Calib *c = malloc(sizeof *c);
    ALLOC_CHECK(c);
    *c = *in;
    OS_CHECK(calib_validate(c, c->name[0] ? c->name : "calibration"));
    if (strchr(c->name, '\n') || strchr(c->device, '\n') || strchr(c->stack, '\n') || strchr(c->attn_kernel, '\n'))
        OS_FAIL(OS_ERR_ARG, path, "name/device/stack/attn_kernel", NULL, "must be one line");
    OS_CHECK(os_outfile_open(&of, path, 1));
    open = 1;
    FILE *fp = of.fp;
    fprintf(fp, "%s\n# rates in FLOP/s; gemm m n k rate (C[m x n] = A[m x k] B[k x n]); "
                "attn fwd|bwd causal|full head_dim length rate (FlashAttention FLOP convention)\n", CALIB_MAGIC);
    fprintf(fp, "name = %s\ndevice = %s\n", c->name, c->device);
    if (c->stack[0]) fprintf(fp, "stack = %s\n", c->stack);
    if (c->attn_kernel[0]) fprintf(fp, "attn_kernel = %s\n", c->attn_kernel);
    fprintf(fp, "peak_flops = %.17g\nhbm_bw = %.17g\n", c->peak_flops, c->hbm_bw);
    fprintf(fp, "kernel_launch_s = %.17g\noverlap_slowdown = %.17g\n", c->kernel_launch_s, c->overlap_slowdown);
    fprintf(fp, "intra_bw = %.17g\ninter_bw = %.17g\n", c->intra_bw, c->inter_bw);
    if (c->conv_frac > 0) fprintf(fp, "conv = %.17g\n", c->conv_frac);
    if (c->ce_eager_bw > 0) fprintf(fp, "ce_eager_bw = %.17g\n", c->ce_eager_bw);
    if (c->metric_ce > 0) fprintf(fp, "train_metric_ce = %.17g\n", c->metric_ce);
    if (c->grad_land_bytes > 0) fprintf(fp, "grad_land_bytes = %.17g\n", c->grad_land_bytes);
    if (c->recompute_early_stop) fprintf(fp, "recompute_early_stop = %u\n", c->recompute_early_stop);
    if (c->gemm_sustained > 0)
        fprintf(fp, "gemm_sustained = %.17g %.17g %.17g %.17g\n", c->gemm_sustained, c->gemm_sustained_mnk[0],
                c->gemm_sustained_mnk[1], c->gemm_sustained_mnk[2]);
    for (uint32_t i = 0; i < c->n_meta; i++) fprintf(fp, "%s = %s\n", c->meta_key[i], c->meta_val[i]);
    for (uint32_t i = 0; i < c->n_gemm; i++)
        fprintf(fp, "gemm %.17g %.17g %.17g %.17g\n", c->gemm[i].m, c->gemm[i].n, c->gemm[i].k, c->gemm[i].rate);
    for (uint32_t i = 0; i < c->n_attn; i++)
        fprintf(fp, "attn %s %s %u %.17g %.17g\n", c->attn[i].dir ? "bwd" : "fwd", c->attn[i].causal ? "causal" : "full",
                c->attn[i].hdim, c->attn[i].len, c->attn[i].rate);
    for (uint32_t i = 0; i < c->n_norm; i++)
        fprintf(fp, "layernorm %s %u %.17g\n", c->norm[i].dir ? "bwd" : "fwd", c->norm[i].hidden, c->norm[i].bw);
    open = 0;
    OS_CHECK(os_outfile_commit(&of));
    free(c);
    return OS_OK;
fail:
    if (open) os_outfile_abort(&of);
    free(c);
    return st;
}
