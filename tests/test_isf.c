/* test_isf.c — the isf policy's cap search and repair (sim/balance/policy_isf.c) against
 * OmniBal's own ISF as published (REFERENCE.md "OmniBal ISF": _random_groups +
 * iter_random_groups, its cap found by bisection so the groups fit on D ranks), on the
 * one-dimensional inputs of bench_balance (LLM cost only, a heavy tail), plus hand cases for
 * the repair pass. The OmniBal twin below is the slow, obvious baseline: what it reaches, isf
 * must reach too, with no rank left empty. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/balance/policy_internal.h"
#include "sim/policy.h"

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* bench_balance's unit lengths: 64..4063, one in ten four times longer */
static double rnd_len(void) {
    uint32_t l = 64 + (uint32_t)(rnd() % 4000);
    return rnd() % 10 == 0 ? 4.0 * l : (double)l;
}

typedef struct {
    uint32_t *drawn, *tok;
    double *cost;
    uint64_t *bytes;
    PolicyOptions opt;
    StepWork w;
} Step1D;

static void step_1d(Step1D *s, uint32_t D, uint32_t per, uint64_t seed) {
    uint32_t N = D * per;
    rng_state = seed;
    s->drawn = malloc(N * sizeof *s->drawn);
    s->tok = malloc(N * sizeof *s->tok);
    s->cost = malloc(N * sizeof *s->cost);
    s->bytes = calloc(N, sizeof *s->bytes);
    for (uint32_t i = 0; i < N; i++) {
        s->drawn[i] = i / per;
        s->cost[i] = rnd_len();
        s->tok[i] = (uint32_t)s->cost[i];
    }
    s->opt = (PolicyOptions){.objective = OBJ_LINEAR, .seed = seed};
    s->w = (StepWork){.D = D, .P = 1, .N = N, .M = 0, .dp_per_node = 8, .drawn = s->drawn, .ex_cost = s->cost,
                      .ex_tokens = s->tok, .ex_bytes = s->bytes, .opt = &s->opt};
}

static void step_free(Step1D *s) {
    free(s->drawn);
    free(s->tok);
    free(s->cost);
    free(s->bytes);
}

static double lower_bound(const double *x, uint32_t n, uint32_t D) {
    double tot = 0, mx = 0;
    for (uint32_t i = 0; i < n; i++) {
        tot += x[i];
        mx = fmax(mx, x[i]);
    }
    return fmax(tot / D, mx);
}

/* ---- OmniBal's ISF, one dimension (token_num), as published -------------------------------- */

/* _random_groups: shuffle, then pack in order while the sum stays <= cap (a new group when it
 * would not); oversize samples are dropped. Returns the group count; grp[i] = group of i. */
static uint32_t omni_random_groups(uint32_t *grp, double *load, const uint32_t *idx, uint32_t n, const double *x,
                                   double cap, uint64_t *seed, uint32_t first, uint32_t *order) {
    memcpy(order, idx, n * sizeof *order);
    for (uint32_t k = n; k > 1; k--) {
        rng_state = *seed;
        uint32_t r = (uint32_t)(rnd() % k);
        *seed = rng_state;
        uint32_t t = order[k - 1];
        order[k - 1] = order[r];
        order[r] = t;
    }
    uint32_t g = first;
    double sum = 0;
    int open = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        if (x[i] > cap) {
            grp[i] = UINT32_MAX; /* dropped */
            continue;
        }
        if (open && sum + x[i] > cap) {
            load[g++] = sum;
            sum = 0;
            open = 0;
        }
        grp[i] = g;
        sum += x[i];
        open = 1;
    }
    if (open) load[g++] = sum;
    return g;
}

/* iter_random_groups: keep "full" groups (sum >= thresh), re-pack the rest, iter times. */
static uint32_t omni_isf(uint32_t *grp, double *load, const double *x, uint32_t n, double cap, double thresh,
                         int iters, uint64_t seed, uint32_t *idx, uint32_t *order, uint32_t *remap) {
    for (uint32_t i = 0; i < n; i++) idx[i] = i;
    uint32_t ng = omni_random_groups(grp, load, idx, n, x, cap, &seed, 0, order);
    for (int it = 0; it < iters; it++) {
        uint32_t nk = 0, np = 0;
        for (uint32_t g = 0; g < ng; g++) remap[g] = load[g] >= thresh ? nk++ : UINT32_MAX;
        double *kl = malloc((ng + 1) * sizeof *kl);
        for (uint32_t g = 0; g < ng; g++)
            if (remap[g] != UINT32_MAX) kl[remap[g]] = load[g];
        for (uint32_t i = 0; i < n; i++) {
            if (grp[i] == UINT32_MAX) continue;
            if (remap[grp[i]] != UINT32_MAX) grp[i] = remap[grp[i]];
            else idx[np++] = i;
        }
        memcpy(load, kl, nk * sizeof *load);
        free(kl);
        ng = omni_random_groups(grp, load, idx, np, x, cap, &seed, nk, order);
    }
    return ng;
}

/* The bisected cap: the least cap whose packing fits on D ranks; returns max/LB of that
 * packing (fewer groups than D leave ranks empty: load 0). */
static double omni_best(const double *x, uint32_t n, uint32_t D, uint64_t seed, uint32_t *empty) {
    uint32_t *grp = malloc(n * sizeof *grp), *idx = malloc(n * sizeof *idx), *order = malloc(n * sizeof *order),
             *remap = malloc((n + 1) * sizeof *remap);
    double *load = malloc((n + 1) * sizeof *load);
    double lb = lower_bound(x, n, D), lo = lb, hi = 4 * lb, best = INFINITY;
    for (int b = 0; b < 40; b++) {
        double cap = 0.5 * (lo + hi);
        uint32_t ng = omni_isf(grp, load, x, n, cap, 0.99 * cap, 8, seed, idx, order, remap);
        int dropped = 0;
        for (uint32_t i = 0; i < n; i++) dropped |= grp[i] == UINT32_MAX;
        if (ng <= D && !dropped) {
            hi = cap;
            double mx = 0;
            for (uint32_t g = 0; g < ng; g++) mx = fmax(mx, load[g]);
            if (mx / lb < best) {
                best = mx / lb;
                *empty = D - ng;
            }
        } else {
            lo = cap;
        }
    }
    free(grp);
    free(idx);
    free(order);
    free(remap);
    free(load);
    return best;
}

static PolicyScratch *S;
static void setup(void) {
    os_clear_error();
    cr_assert_eq(policy_scratch_create(&S), OS_OK);
}
static void teardown(void) { policy_scratch_destroy(S); }
TestSuite(isf, .init = setup, .fini = teardown);

/* isf's max/LB and empty ranks on a step. */
static double isf_quality(const StepWork *w, uint32_t *empty, int ref) {
    Plan p = {0};
    p.home = calloc(w->N + 1, sizeof(uint32_t));
    p.ex_rank = calloc(w->N + 1, sizeof(uint32_t));
    p.it_rank = calloc(1, sizeof(uint32_t));
    p.hierarchical = -1;
    cr_assert_eq((ref ? balance_isf_ref : balance_isf)(&p, w, S), OS_OK, "%s", os_last_error());
    cr_assert_eq(plan_check(&p, w, "isf"), OS_OK, "%s", os_last_error());
    double *load = calloc(w->D, sizeof *load);
    uint32_t *cnt = calloc(w->D, sizeof *cnt);
    for (uint32_t i = 0; i < w->N; i++) {
        load[p.ex_rank[i]] += w->ex_cost[i];
        cnt[p.ex_rank[i]]++;
    }
    double mx = 0;
    *empty = 0;
    for (uint32_t r = 0; r < w->D; r++) {
        mx = fmax(mx, load[r]);
        *empty += cnt[r] == 0;
    }
    free(load);
    free(cnt);
    free(p.home);
    free(p.ex_rank);
    free(p.it_rank);
    return mx / lower_bound(w->ex_cost, w->N, w->D);
}

Test(isf, not_worse_than_omnibal_on_one_dimension) {
    uint32_t shapes[][2] = {{8, 16}, {64, 16}, {64, 8}, {256, 16}, {512, 8}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            Step1D s;
            step_1d(&s, shapes[k][0], shapes[k][1], 100 * k + seed);
            uint32_t e_omni = 0, e_isf = 0;
            double omni = omni_best(s.cost, s.w.N, s.w.D, seed, &e_omni);
            double ours = isf_quality(&s.w, &e_isf, 0);
            cr_assert_eq(e_isf, 0u, "D=%u per=%u seed %llu: %u empty ranks", shapes[k][0], shapes[k][1],
                         (unsigned long long)seed, e_isf);
            cr_assert_leq(ours, omni + 1e-9, "D=%u per=%u seed %llu: isf max/LB %.4f, OmniBal ISF %.4f", shapes[k][0],
                          shapes[k][1], (unsigned long long)seed, ours, omni);
            cr_log_info("D=%u per=%u seed %llu: isf %.4f  omnibal %.4f (empty %u)", shapes[k][0], shapes[k][1],
                        (unsigned long long)seed, ours, omni, e_omni);
            step_free(&s);
        }
}

/* The scan twin gives the same groups after the search and the repair. */
Test(isf, search_and_repair_match_scan_twin) {
    for (uint64_t seed = 1; seed <= 4; seed++) {
        Step1D s;
        step_1d(&s, 24 + 8 * (uint32_t)seed, 5, seed);
        uint32_t e1, e2;
        double a = isf_quality(&s.w, &e1, 0), b = isf_quality(&s.w, &e2, 1);
        cr_assert_eq(a, b);
        cr_assert_eq(e1, e2);
        step_free(&s);
    }
}

/* Hand case for the repair: 4 ranks, examples 10, 1, 1, 1, 1 (mean 3.5, LB 10): a packing
 * under any cap >= 10 can leave ranks empty; after repair every rank holds one, and the 10
 * sits alone (max = LB exactly). */
Test(isf, repair_fills_empty_ranks) {
    uint32_t drawn[5] = {0, 0, 1, 2, 3}, tok[5] = {10, 1, 1, 1, 1};
    double cost[5] = {10, 1, 1, 1, 1};
    uint64_t bytes[5] = {0};
    PolicyOptions opt = {.objective = OBJ_LINEAR, .seed = 3};
    StepWork w = {.D = 4, .P = 1, .N = 5, .M = 0, .dp_per_node = 4, .drawn = drawn, .ex_cost = cost,
                  .ex_tokens = tok, .ex_bytes = bytes, .opt = &opt};
    uint32_t empty = 9;
    double q = isf_quality(&w, &empty, 0);
    cr_assert_eq(empty, 0u);
    cr_assert_float_eq(q, 1.0, 1e-12, "max/LB %g", q);
}
