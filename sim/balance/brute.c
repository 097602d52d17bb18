/* brute.c — exhaustive optimum of k-way partitioning: the slow twin of LPT and KK.
 * Implements: part_brute, a depth-first search over bins for units in decreasing weight.
 *   Pruning: a unit opens at most one empty bin (empty bins are interchangeable); a branch
 *   whose bin load would reach the best max so far is cut; the search stops at the lower
 *   bound max(sum/D, max w). Starts from the greedy (LPT) answer so cuts bite at once.
 * Does not: scale (n <= 16, D <= 16); tests and tiny inputs only (STYLE habit 6). */
#include <string.h>

#include "sim/balance/part_internal.h"

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
