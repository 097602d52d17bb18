/* hungarian.c — the assignment problem: Hungarian method and its exhaustive twin.
 * Implements: part_hungarian, O(n^3): rows are added one at a time and each is matched by a
 *   shortest augmenting path over reduced costs, with row/column potentials kept feasible
 *   (u[i] + v[j] <= cost[i][j]); part_assign_brute tries all n! permutations (n <= 9).
 * Does not: handle rectangular or infinite costs (pad the matrix yourself).
 * Source: Kuhn-Munkres with potentials (the classical shortest-augmenting-path form); the
 *   node-wise placement of post-node (OrchMLLM's node-wise rearrangement, REFERENCE.md). */
#include <math.h>
#include <string.h>

#include "sim/balance/part_internal.h"

OsStatus part_hungarian(uint32_t *perm, double *total, const double *cost, uint32_t n,
                        PartScratch *s) {
    OsStatus st = OS_OK;
    size_t m = (size_t)n + 1;
    OS_CHECK(PART_GROW(s->hu, s->hu_cap, m));
    OS_CHECK(PART_GROW(s->hv, s->hv_cap, m));
    OS_CHECK(PART_GROW(s->hmin, s->hmin_cap, m));
    OS_CHECK(PART_GROW(s->hp, s->hp_cap, m));
    OS_CHECK(PART_GROW(s->hway, s->hway_cap, m));
    OS_CHECK(PART_GROW(s->hused, s->hused_cap, m));
    for (size_t i = 0; i < (size_t)n * n; i++)
        if (!isfinite(cost[i]))
            OS_FAIL(OS_ERR_ARG, "assignment", "cost", "costs must be finite",
                    "cost[%zu][%zu] = %g", i / n, i % n, cost[i]);
    /* 1-based: column 0 is the virtual start of each augmenting path; p[j] = row on column j. */
    double *u = s->hu, *v = s->hv, *minv = s->hmin;
    uint32_t *p = s->hp, *way = s->hway;
    unsigned char *used = s->hused;
    for (size_t j = 0; j < m; j++) {
        u[j] = 0.0;
        v[j] = 0.0;
        p[j] = 0;
        way[j] = 0;
    }
    for (uint32_t i = 1; i <= n; i++) {
        p[0] = i;
        uint32_t j0 = 0;
        for (size_t j = 0; j < m; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            uint32_t i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            const double *row = cost + (size_t)(i0 - 1) * n;
            for (uint32_t j = 1; j <= n; j++) {
                if (used[j]) continue;
                double cur = row[j - 1] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (uint32_t j = 0; j <= n; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do { /* flip the path back to its start */
            uint32_t j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    double t = 0.0;
    for (uint32_t j = 1; j <= n; j++) perm[p[j] - 1] = j - 1;
    for (uint32_t r = 0; r < n; r++) t += cost[(size_t)r * n + perm[r]];
    *total = t;
fail:
    return st;
}

/* ---- slow twin ---------------------------------------------------------------------------- */

typedef struct {
    const double *cost;
    uint32_t n;
    uint32_t cur[9], best[9];
    double best_total;
} AssignSearch;

static void assign_rec(AssignSearch *a, uint32_t r, uint32_t used_mask, double acc) {
    if (r == a->n) {
        if (acc < a->best_total) { /* strict: the first optimum in lexicographic order stays */
            a->best_total = acc;
            memcpy(a->best, a->cur, sizeof a->cur);
        }
        return;
    }
    for (uint32_t c = 0; c < a->n; c++) {
        if (used_mask & (1u << c)) continue;
        a->cur[r] = c;
        assign_rec(a, r + 1, used_mask | (1u << c), acc + a->cost[(size_t)r * a->n + c]);
    }
}

OsStatus part_assign_brute(uint32_t *perm, double *total, const double *cost, uint32_t n) {
    OsStatus st = OS_OK;
    if (n > 9) OS_FAIL(OS_ERR_RANGE, "assignment", "n", "use part_hungarian", "%u rows is over the exhaustive limit of 9", n);
    AssignSearch a = {.cost = cost, .n = n, .best_total = INFINITY};
    assign_rec(&a, 0, 0, 0.0);
    if (n == 0) a.best_total = 0.0;
    for (uint32_t r = 0; r < n; r++) perm[r] = a.best[r];
    /* Re-sum in row order, as part_hungarian does, so equal assignments give equal totals. */
    double t = 0.0;
    for (uint32_t r = 0; r < n; r++) t += cost[(size_t)r * n + perm[r]];
    *total = t;
fail:
    return st;
}
