/* policy_equal_count.c — "equal-count": the loader assigns examples by LPT on the LLM-phase
 *   cost with a per-rank count cap, as LLaVA's split_to_even_chunks does: every rank ends with
 *   floor(N/D) or ceil(N/D) examples (fixed micro-batch size data parallelism).
 * Implements: balance_equal_count. Examples by ex_cost descending (ties: lower example first),
 *   each to the least-loaded rank that still has room (ties: lower rank). A rank is full at
 *   ceil(N/D) examples, or at floor(N/D) once N mod D ranks have reached ceil(N/D); a full
 *   rank leaves the heap, which is LLaVA's "load = infinity". When D divides N this is exactly
 *   split_to_even_chunks; when it does not, LLaVA falls back to round-robin (indices[i::D])
 *   and we keep the greedy with the floor/ceil rule instead (say so when comparing).
 *   Items stay with their example; home = ex_rank (pre-balancing at the loader).
 * Does not: see the encoders or the PolicyOptions objective and caps (like lpt and kk).
 * Source: REFERENCE.md "LLaVA split_to_even_chunks". O(N log N + N log D): a radix sort, then
 *   a binary min-heap of the open ranks keyed (load, rank); closed ranks are dropped lazily
 *   when they reach the top. Its slow twin is part_brute_count (brute.c): every assignment
 *   that meets the counts. Worst case for a count-capped LPT: 4/3 - 1/(3D) of the optimum at
 *   N = 3D (Kellerer & Woeginger's modified LPT for 3-partitioning); tests measure the rest. */
#include <string.h>

#include "sim/balance/part_internal.h"
#include "sim/balance/policy_internal.h"

/* (load, rank) lexicographic: the exact order, no near-tie tolerance (partition.c's LPT has
 * one for its loser tree; here a heap of doubles keeps exact compares and stays O(log D)). */
static inline int ec_before(const double *load, uint32_t a, uint32_t b) {
    return load[a] < load[b] || (load[a] == load[b] && a < b);
}

static void ec_down(uint32_t *h, uint32_t n, const double *load, uint32_t i) {
    uint32_t x = h[i];
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= n) break;
        uint32_t c = l;
        if (l + 1 < n && ec_before(load, h[l + 1], h[l])) c = l + 1;
        if (!ec_before(load, h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void ec_pop(uint32_t *h, uint32_t *n, const double *load) {
    h[0] = h[--*n];
    if (*n) ec_down(h, *n, load, 0);
}

OsStatus balance_equal_count(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    OS_CHECK(pol_validate(w, "equal-count"));
    PartScratch *ps = s->ps;
    uint32_t N = w->N, D = w->D;
    OS_CHECK(part_sort_desc(ps, w->ex_cost, N)); /* checks every cost finite and >= 0 */
    OS_CHECK(part_bins(ps, D));
    double *load = ps->load; /* [D] seconds */
    uint32_t *cnt = ps->cnt; /* [D] examples */
    uint32_t *heap = ps->heap, hn = D;
    for (uint32_t r = 0; r < D; r++) {
        load[r] = 0.0;
        cnt[r] = 0;
        heap[r] = r; /* all loads 0: rank order is already a heap */
    }
    uint32_t q = N / D, rem = N % D, extras = 0; /* extras: ranks that reached q + 1 */
    for (uint32_t k = 0; k < N; k++) {
        uint32_t u = ps->idx[k], r;
        for (;;) {
            if (hn == 0) /* cannot happen: the open capacity always covers what is left */
                OS_FAIL(OS_ERR_INTERNAL, "equal-count", "ranks", "a balancing bug: report it",
                        "no rank has room for example %u (%u of %u placed)", u, k, N);
            r = heap[0];
            if (cnt[r] < q || (cnt[r] == q && extras < rem)) break;
            ec_pop(heap, &hn, load); /* full: load = infinity */
        }
        out->home[u] = r;
        load[r] += w->ex_cost[u];
        if (++cnt[r] == q + 1) extras++;
        if (cnt[r] == q + 1 || (cnt[r] == q && extras == rem))
            ec_pop(heap, &hn, load);
        else
            ec_down(heap, hn, load, 0);
    }
    pol_pre_finish(out, w);
fail:
    return st;
}
