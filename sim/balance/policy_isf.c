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
 * Does not: search caps per dataset as OmniBal's test script does; balance later encoders.
 * Cost: first fit and the leftover pass walk two min-trees over the groups' loads (pruned
 *   descents: the lowest open group that fits; branch and bound on the normalised score),
 *   O(log D) per example when the loads are spread, instead of scanning the D groups:
 *   balance_isf_ref keeps the scans, and tests check both give the same groups. */
#include <float.h>
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

/* ---- min-trees over the groups ------------------------------------------------------------
 * Node t of a tree over L leaves (L a power of two >= D) holds the least v-load and the least
 * c-load of the groups below it (t[t] and t[2L + t]); a missing or closed group holds
 * INFINITY. Both are lower bounds, and every test below is monotone in a load, so a subtree
 * whose bounds fail holds no group that passes: pruning never changes the answer. */
typedef struct {
    double *t; /* [4L] */
    uint32_t L;
} MinTree;

static void tree_set(MinTree *m, uint32_t g, double v, double c) {
    double *tv = m->t, *tc = m->t + 2 * m->L;
    uint32_t i = m->L + g;
    tv[i] = v;
    tc[i] = c;
    for (i >>= 1; i >= 1; i >>= 1) {
        tv[i] = fmin(tv[2 * i], tv[2 * i + 1]);
        tc[i] = fmin(tc[2 * i], tc[2 * i + 1]);
    }
}

static void tree_build(MinTree *m) {
    double *tv = m->t, *tc = m->t + 2 * m->L;
    for (uint32_t i = m->L - 1; i >= 1; i--) {
        tv[i] = fmin(tv[2 * i], tv[2 * i + 1]);
        tc[i] = fmin(tc[2 * i], tc[2 * i + 1]);
    }
}

/* The lowest group with gv + v <= capv and gc + c <= capc (ISF_NONE when none). */
static uint32_t tree_first_fit(const MinTree *m, uint32_t i, double v, double c, double capv, double capc) {
    const double *tv = m->t, *tc = m->t + 2 * m->L;
    if (!(tv[i] + v <= capv && tc[i] + c <= capc)) return ISF_NONE;
    if (i >= m->L) return i - m->L;
    uint32_t r = tree_first_fit(m, 2 * i, v, c, capv, capc);
    return r != ISF_NONE ? r : tree_first_fit(m, 2 * i + 1, v, c, capv, capc);
}

/* Branch and bound for the group whose worse normalised load after adding (v, c) is least,
 * ties to the lower group (as the linear scan's strict <). lo: the subtree's first group. */
typedef struct {
    double v, c, mv, mc, best;
    uint32_t bg;
} LeftSearch;

static inline double tree_bound(const MinTree *m, uint32_t i, const LeftSearch *q) {
    return fmax(norm(m->t[i] + q->v, q->mv), norm(m->t[2 * m->L + i] + q->c, q->mc));
}

static void tree_least(const MinTree *m, uint32_t i, uint32_t lo, uint32_t span, LeftSearch *q) {
    double lb = tree_bound(m, i, q);
    if (lb > q->best || (lb == q->best && lo > q->bg)) return;
    if (i >= m->L) { /* a leaf: its bound is its score */
        q->best = lb;
        q->bg = lo;
        return;
    }
    uint32_t h = span / 2;
    double ll = tree_bound(m, 2 * i, q), lr = tree_bound(m, 2 * i + 1, q);
    if (lr < ll) { /* the more promising side first: the bound tightens sooner */
        tree_least(m, 2 * i + 1, lo + h, h, q);
        tree_least(m, 2 * i, lo, h, q);
    } else {
        tree_least(m, 2 * i, lo, h, q);
        tree_least(m, 2 * i + 1, lo + h, h, q);
    }
}

static OsStatus isf_run(Plan *out, const StepWork *w, PolicyScratch *s, int ref) {
    OsStatus st = OS_OK;
    uint32_t N = w->N, D = w->D;
    OS_CHECK(pol_validate(w, "isf"));
    uint32_t L = 1;
    while (L < D) L *= 2;
    OS_CHECK(POL_GROW(s->ift, s->ift_cap, 4 * (size_t)L));
    OS_CHECK(POL_GROW(s->ilt, s->ilt_cap, 4 * (size_t)L));
    MinTree ff = {s->ift, L}, lt = {s->ilt, L};
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
    /* A zero dimension (all loads 0) never binds: DBL_MAX, not INFINITY, so that a closed
     * group's INFINITY in the first-fit tree still fails the test. */
    double capv = mv > 0.0 ? mv * (1.0 + ISF_SLACK) : DBL_MAX;
    double capc = mc > 0.0 ? mc * (1.0 + ISF_SLACK) : DBL_MAX;
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
        if (!ref) { /* first-fit tree: open groups (all empty now); closed ones never fit */
            for (uint32_t g = 0; g < L; g++) {
                int open = g < D && !s->kept[g];
                ff.t[L + g] = open ? 0.0 : INFINITY;
                ff.t[3 * L + g] = open ? 0.0 : INFINITY;
            }
            tree_build(&ff);
        }
        /* First fit. Groups before `lo` cannot take even the smallest pool example in some
         * dimension, so skipping them changes nothing and avoids an O(N D) rescan. */
        uint32_t lo = 0, nl = 0;
        for (uint32_t k = 0; k < np; k++) {
            uint32_t i = s->pool[k], hit = ISF_NONE;
            if (ref) {
                while (lo < no && (gv[s->open[lo]] + minv > capv || gc[s->open[lo]] + minc > capc)) lo++;
                for (uint32_t q = lo; q < no; q++) {
                    uint32_t g = s->open[q];
                    if (gv[g] + v[i] <= capv && gc[g] + c[i] <= capc) {
                        hit = g;
                        break;
                    }
                }
            } else {
                hit = tree_first_fit(&ff, 1, v[i], c[i], capv, capc);
            }
            if (hit == ISF_NONE) {
                s->pool[nl++] = i; /* leftovers compact into the pool's front (k >= nl) */
                continue;
            }
            s->group[i] = hit;
            gv[hit] += v[i];
            gc[hit] += c[i];
            if (!ref) tree_set(&ff, hit, gv[hit], gc[hit]);
        }
        if (!ref) { /* leftover tree: every group, kept ones included */
            for (uint32_t g = 0; g < L; g++) {
                lt.t[L + g] = g < D ? gv[g] : INFINITY;
                lt.t[3 * L + g] = g < D ? gc[g] : INFINITY;
            }
            tree_build(&lt);
        }
        /* Leftovers, largest normalised size first, where the worse dimension grows least. */
        for (uint32_t k = 0; k < nl; k++) {
            uint32_t i = s->pool[k];
            s->w[k] = fmax(norm(v[i], mv), norm(c[i], mc));
        }
        OS_CHECK(part_sort_desc(s->ps, s->w, nl));
        for (uint32_t k = 0; k < nl; k++) {
            uint32_t i = s->pool[s->ps->idx[k]], bg = 0;
            if (ref) {
                double bs = INFINITY;
                for (uint32_t g = 0; g < D; g++) {
                    double sc = fmax(norm(gv[g] + v[i], mv), norm(gc[g] + c[i], mc));
                    if (sc < bs) {
                        bs = sc;
                        bg = g;
                    }
                }
            } else {
                LeftSearch q = {v[i], c[i], mv, mc, INFINITY, 0};
                tree_least(&lt, 1, 0, L, &q);
                bg = q.bg;
            }
            s->group[i] = bg;
            gv[bg] += v[i];
            gc[bg] += c[i];
            if (!ref) tree_set(&lt, bg, gv[bg], gc[bg]);
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

OsStatus balance_isf(Plan *out, const StepWork *w, PolicyScratch *s) { return isf_run(out, w, s, 0); }

OsStatus balance_isf_ref(Plan *out, const StepWork *w, PolicyScratch *s) { return isf_run(out, w, s, 1); }
