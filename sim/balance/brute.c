/* brute.c — exhaustive optimum of k-way partitioning: the slow twin of LPT and KK.
 * Implements: part_brute, a depth-first search over bins for units in decreasing weight.
 *   Pruning: a unit opens at most one empty bin (empty bins are interchangeable); a branch
 *   whose bin load would reach the best max so far is cut; the search stops at the lower
 *   bound max(sum/D, max w). Starts from the greedy (LPT) answer so cuts bite at once.
 *   Also the twins of the equal-count policy (part_brute_count) and of Karmarkar-Karp
 *   micro-batches (mb_partition_brute, microbatch.h): plain enumeration of every assignment.
 * Does not: scale (n <= 16, D <= 16); tests and tiny inputs only (STYLE habit 6). */
#include <string.h>

#include "sim/balance/part_internal.h"
#include "sim/microbatch.h"

#define BRUTE_MAX 16

typedef struct {
    const double *w;  /* [n] in search order (decreasing) */
    uint32_t n, D;
    double load[BRUTE_MAX];
    uint32_t count[BRUTE_MAX];
    uint32_t cur[BRUTE_MAX], best[BRUTE_MAX];
    double best_max, lb;
    int done;
} BruteSearch;

static void brute_rec(BruteSearch *b, uint32_t k, double cur_max) {
    if (b->done) return;
    if (k == b->n) {
        if (cur_max < b->best_max) {
            b->best_max = cur_max;
            memcpy(b->best, b->cur, sizeof b->cur);
            if (b->best_max <= b->lb) b->done = 1;
        }
        return;
    }
    int opened = 0;
    for (uint32_t d = 0; d < b->D; d++) {
        if (b->count[d] == 0) {
            if (opened) continue;
            opened = 1;
        }
        double nl = b->load[d] + b->w[k];
        if (nl >= b->best_max) continue;
        b->load[d] = nl;
        b->count[d]++;
        b->cur[k] = d;
        brute_rec(b, k + 1, nl > cur_max ? nl : cur_max);
        b->load[d] -= b->w[k];
        b->count[d]--;
        if (b->done) return;
    }
}

OsStatus part_brute(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D) {
    OsStatus st = OS_OK;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "partition", "D", NULL, "needs at least one bin");
    if (n > BRUTE_MAX || D > BRUTE_MAX)
        OS_FAIL(OS_ERR_RANGE, "partition", "n", "use part_lpt or part_kk",
                "%u units into %u bins is over the exhaustive limit of %d", n, D, BRUTE_MAX);
    uint32_t order[BRUTE_MAX] = {0};
    double ws[BRUTE_MAX] = {0};
    for (uint32_t i = 0; i < n; i++) {
        if (!(w[i] >= 0.0) || w[i] > 1e300)
            OS_FAIL(OS_ERR_ARG, "partition", "weight", NULL, "unit %u has weight %g", i, w[i]);
        uint32_t j = i; /* insertion sort, decreasing weight, stable */
        while (j > 0 && w[order[j - 1]] < w[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (uint32_t i = 0; i < n; i++) ws[i] = w[order[i]];
    BruteSearch b = {.w = ws, .n = n, .D = D};
    b.lb = part_lower_bound(ws, n, D);
    /* Greedy start (LPT): the answer when nothing strictly better exists. */
    double gl[BRUTE_MAX] = {0};
    double gmax = 0.0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t m = 0;
        for (uint32_t d = 1; d < D; d++)
            if (gl[d] < gl[m]) m = d;
        gl[m] += ws[k];
        b.best[k] = m;
        gmax = gl[m] > gmax ? gl[m] : gmax;
    }
    b.best_max = gmax;
    if (n > 0 && gmax > b.lb) brute_rec(&b, 0, 0.0);
    for (uint32_t k = 0; k < n; k++) bin[order[k]] = b.best[k];
    double load[BRUTE_MAX];
    *max_load = part_max_load(bin, w, n, D, load);
fail:
    return st;
}

/* ---- equal-count: the slow twin of the "equal-count" policy ------------------------------- */

/* Exhaustive optimum of max bin load over the assignments in which every bin holds
 * floor(n/D) or ceil(n/D) units (so exactly n mod D bins hold the ceiling): all D^n
 * assignments in odometer order (unit 0 the fastest digit), the first optimum kept.
 * n <= 12, D <= 16 and D^n <= 2^24, else OS_ERR_RANGE. Tests only (declared where they use it: it is
 * the twin of balance_equal_count, which has no public header). */
OsStatus part_brute_count(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D);
OsStatus part_brute_count(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D) {
    OsStatus st = OS_OK;
    enum { CNT_MAX = 12 };
    if (D == 0) OS_FAIL(OS_ERR_ARG, "partition", "D", NULL, "needs at least one bin");
    uint64_t space = 1;
    for (uint32_t i = 0; i < n && space <= (1u << 24); i++) space *= D;
    if (n > CNT_MAX || D > BRUTE_MAX || space > (1u << 24))
        OS_FAIL(OS_ERR_RANGE, "partition", "n", "use balance_equal_count",
                "%u units into %u bins is over the exhaustive limit", n, D);
    for (uint32_t i = 0; i < n; i++)
        if (!(w[i] >= 0.0) || w[i] > 1e300)
            OS_FAIL(OS_ERR_ARG, "partition", "weight", NULL, "unit %u has weight %g", i, w[i]);
    uint32_t q = n / D, cur[CNT_MAX] = {0};
    double best = -1.0;
    for (uint64_t a = 0; a < space; a++) {
        if (a) /* next assignment: odometer increment */
            for (uint32_t i = 0; i < n && ++cur[i] == D; i++) cur[i] = 0;
        double load[BRUTE_MAX] = {0};
        uint32_t cnt[BRUTE_MAX] = {0};
        double mx = 0.0;
        int ok = 1;
        for (uint32_t i = 0; i < n; i++) {
            load[cur[i]] += w[i];
            cnt[cur[i]]++;
        }
        for (uint32_t d = 0; d < D; d++) {
            if (cnt[d] != q && cnt[d] != q + 1) ok = 0;
            mx = load[d] > mx ? load[d] : mx;
        }
        if (!ok || (best >= 0.0 && mx >= best)) continue;
        best = mx;
        memcpy(bin, cur, n * sizeof *bin);
    }
    *max_load = best < 0.0 ? 0.0 : best;
fail:
    return st;
}

/* ---- micro-batches: the slow twin of mb_partition_kk -------------------------------------- */

OsStatus mb_partition_brute(uint16_t *mb_of, double *max_work, const double *work, uint32_t n,
                            uint32_t M) {
    OsStatus st = OS_OK;
    enum { MBB_N = 10, MBB_M = 16 };
    if (M < 1) OS_FAIL(OS_ERR_ARG, "microbatch", "M", NULL, "needs at least one micro-batch");
    uint64_t space = 1;
    for (uint32_t i = 0; i < n && space <= (1u << 24); i++) space *= M;
    if (n > MBB_N || M > MBB_M || space > (1u << 24))
        OS_FAIL(OS_ERR_RANGE, "microbatch", "n", "use mb_partition_kk",
                "%u sequences into %u micro-batches is over the exhaustive limit", n, M);
    for (uint32_t i = 0; i < n; i++)
        if (!(work[i] >= 0.0) || work[i] > 1e300)
            OS_FAIL(OS_ERR_ARG, "microbatch", "work", NULL, "sequence %u has workload %g", i, work[i]);
    uint32_t cur[MBB_N] = {0}, best[MBB_N] = {0};
    double opt = -1.0;
    for (uint64_t a = 0; a < space; a++) {
        if (a)
            for (uint32_t i = 0; i < n && ++cur[i] == M; i++) cur[i] = 0;
        double g[MBB_M] = {0}, mx = 0.0;
        uint32_t c[MBB_M] = {0}, empty = 0;
        for (uint32_t i = 0; i < n; i++) {
            g[cur[i]] += work[i];
            c[cur[i]]++;
        }
        for (uint32_t k = 0; k < M; k++) {
            mx = g[k] > mx ? g[k] : mx;
            empty += c[k] == 0;
        }
        /* n >= M: every micro-batch holds a sequence (the optimum is the same: workloads are
         * >= 0, so moving one into an empty group never raises the max) */
        if ((n >= M && empty) || (opt >= 0.0 && mx >= opt)) continue;
        opt = mx;
        memcpy(best, cur, sizeof best);
    }
    /* The end placement by plain scans: pick groups smallest first (workload, then lowest
     * sequence, empty groups after non-empty ones of equal workload), alternately at the
     * front and at the back. */
    double gw[MBB_M] = {0};
    uint32_t gmin[MBB_M], pos[MBB_M];
    unsigned char taken[MBB_M] = {0};
    for (uint32_t k = 0; k < M; k++) gmin[k] = n + k;
    for (uint32_t i = n; i-- > 0;) gmin[best[i]] = i;
    for (uint32_t i = 0; i < n; i++) gw[best[i]] += work[i]; /* index order, as mb_partition_kk */
    uint32_t front = 0, back = M - 1;
    for (uint32_t j = 0; j < M; j++) {
        uint32_t pick = MBB_M;
        for (uint32_t k = 0; k < M; k++)
            if (!taken[k] && (pick == MBB_M || gw[k] < gw[pick] || (gw[k] == gw[pick] && gmin[k] < gmin[pick])))
                pick = k;
        taken[pick] = 1;
        pos[pick] = j % 2 == 0 ? front++ : back--;
    }
    for (uint32_t i = 0; i < n; i++) mb_of[i] = (uint16_t)pos[best[i]];
    *max_work = opt < 0.0 ? 0.0 : opt;
fail:
    return st;
}
