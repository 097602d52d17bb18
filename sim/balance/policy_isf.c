/* policy_isf.c — "isf": OmniBal's ISF, pre-balancing on two costs at once (the first
 *   encoder phase's cost and the LLM cost), adapted to exactly D groups (one per rank).
 * Implements: balance_isf. Adaptation of REFERENCE.md "OmniBal ISF" (_random_groups +
 *   iter_random_groups): OmniBal packs into as many groups as it needs under fixed caps and
 *   then tunes the caps offline; we must produce exactly D groups, so
 *   - the caps are the per-rank means times (1 + ISF_SLACK), one per dimension;
 *   - each round shuffles the pool (seeded splitmix64 from opt->seed: deterministic) and
 *     first-fits every example into the lowest group with room in both dimensions;
 *   - examples that fit nowhere (OmniBal drops them; we cannot) go, largest first, to the
 *     group whose worse normalised load grows least;
 *   - a group is kept for the next round when it sits within ISF_SLACK of the mean in both
 *     dimensions (OmniBal keeps "full" groups); the others are emptied and re-packed;
 *   - the best round by max over both dimensions of max/mean is the answer.
 * Does not: search caps per dataset as OmniBal's test script does; balance later encoders. */
#include <math.h>

#include "sim/balance/part_internal.h"
#include "sim/balance/policy_internal.h"

#define ISF_SLACK 0.05 /* cap = mean * 1.05; tighter caps leave more to the leftover pass */
#define ISF_ROUNDS 16
#define ISF_NONE UINT32_MAX

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Normalised load of a group in one dimension (0 when the dimension is all zero). */
static inline double norm(double x, double mean) { return mean > 0.0 ? x / mean : 0.0; }

OsStatus balance_isf(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    uint32_t N = w->N, D = w->D;
    OS_CHECK(pol_validate(w, "isf"));
    OS_CHECK(POL_GROW(s->iv, s->iv_cap, N));
    OS_CHECK(POL_GROW(s->ic, s->ic_cap, N));
    OS_CHECK(POL_GROW(s->group, s->group_cap, N));
    OS_CHECK(POL_GROW(s->best, s->best_cap, N));
    OS_CHECK(POL_GROW(s->pool, s->pool_cap, N));
    OS_CHECK(POL_GROW(s->w, s->w_cap, N));
    OS_CHECK(POL_GROW(s->gv, s->gv_cap, D));
    OS_CHECK(POL_GROW(s->gc, s->gc_cap, D));
    OS_CHECK(POL_GROW(s->open, s->open_cap, D));
    OS_CHECK(POL_GROW(s->kept, s->kept_cap, D));
    double *v = s->iv, *c = s->ic, *gv = s->gv, *gc = s->gc;
    double V = 0.0, C = 0.0;
    for (uint32_t i = 0; i < N; i++) {
        v[i] = 0.0;
        c[i] = w->ex_cost[i];
        C += c[i];
    }
    for (uint32_t j = 0; j < w->M; j++)
        if (w->it_phase[j] == 0) v[w->it_example[j]] += w->it_cost[j];
    for (uint32_t i = 0; i < N; i++) V += v[i];
    double mv = V / D, mc = C / D;
    double capv = mv > 0.0 ? mv * (1.0 + ISF_SLACK) : INFINITY;
    double capc = mc > 0.0 ? mc * (1.0 + ISF_SLACK) : INFINITY;
    double best_score = INFINITY;
    uint32_t np = N;
    for (uint32_t i = 0; i < N; i++) s->pool[i] = i;
    for (uint32_t g = 0; g < D; g++) {
        s->kept[g] = 0;
        gv[g] = gc[g] = 0.0;
    }
    uint64_t rng = w->opt->seed;
    for (uint32_t round = 0; round < ISF_ROUNDS && np; round++) {
        for (uint32_t k = np; k > 1; k--) { /* Fisher-Yates */
            uint32_t r = (uint32_t)(splitmix64(&rng) % k);
            uint32_t t = s->pool[k - 1];
            s->pool[k - 1] = s->pool[r];
            s->pool[r] = t;
        }
        uint32_t no = 0;
        double minv = INFINITY, minc = INFINITY;
        for (uint32_t g = 0; g < D; g++)
            if (!s->kept[g]) {
                s->open[no++] = g;
                gv[g] = gc[g] = 0.0;
            }
        for (uint32_t k = 0; k < np; k++) {
            minv = fmin(minv, v[s->pool[k]]);
            minc = fmin(minc, c[s->pool[k]]);
        }
        /* First fit. Groups before `lo` cannot take even the smallest pool example in some
         * dimension, so skipping them changes nothing and avoids an O(N D) rescan. */
        uint32_t lo = 0, nl = 0;
        for (uint32_t k = 0; k < np; k++) {
            uint32_t i = s->pool[k], hit = ISF_NONE;
            while (lo < no && (gv[s->open[lo]] + minv > capv || gc[s->open[lo]] + minc > capc)) lo++;
            for (uint32_t q = lo; q < no; q++) {
                uint32_t g = s->open[q];
                if (gv[g] + v[i] <= capv && gc[g] + c[i] <= capc) {
                    hit = g;
                    break;
                }
            }
            if (hit == ISF_NONE) {
                s->pool[nl++] = i; /* leftovers compact into the pool's front (k >= nl) */
                continue;
            }
            s->group[i] = hit;
            gv[hit] += v[i];
            gc[hit] += c[i];
        }
        /* Leftovers, largest normalised size first, where the worse dimension grows least. */
        for (uint32_t k = 0; k < nl; k++) {
            uint32_t i = s->pool[k];
            s->w[k] = fmax(norm(v[i], mv), norm(c[i], mc));
        }
        OS_CHECK(part_sort_desc(s->ps, s->w, nl));
        for (uint32_t k = 0; k < nl; k++) {
            uint32_t i = s->pool[s->ps->idx[k]], bg = 0;
            double bs = INFINITY;
            for (uint32_t g = 0; g < D; g++) {
                double sc = fmax(norm(gv[g] + v[i], mv), norm(gc[g] + c[i], mc));
                if (sc < bs) {
                    bs = sc;
                    bg = g;
                }
            }
            s->group[i] = bg;
            gv[bg] += v[i];
            gc[bg] += c[i];
        }
        double xv = 0.0, xc = 0.0;
        for (uint32_t g = 0; g < D; g++) {
            xv = fmax(xv, gv[g]);
            xc = fmax(xc, gc[g]);
        }
        double score = fmax(norm(xv, mv), norm(xc, mc));
        if (score < best_score) {
            best_score = score;
            for (uint32_t i = 0; i < N; i++) s->best[i] = s->group[i];
        }
        /* Keep the groups near the mean in both dimensions; re-pack the rest. */
        uint32_t nk = 0;
        for (uint32_t g = 0; g < D; g++) {
            double nv = norm(gv[g], mv), nc = norm(gc[g], mc);
            s->kept[g] = (mv <= 0.0 || fabs(nv - 1.0) <= ISF_SLACK) && (mc <= 0.0 || fabs(nc - 1.0) <= ISF_SLACK);
            nk += s->kept[g];
        }
        np = 0;
        if (nk == D) break;
        for (uint32_t i = 0; i < N; i++)
            if (!s->kept[s->group[i]]) s->pool[np++] = i;
    }
    for (uint32_t i = 0; i < N; i++) out->home[i] = N ? s->best[i] : 0;
    pol_pre_finish(out, w);
fail:
    return st;
}
