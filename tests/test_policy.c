/* test_policy.c — policy.h: the registry, plan_check, the oracle, every policy's invariants on
 * random steps, hand cases for the pre-balancers, caps, reassembly, and node-wise placement
 * against its exhaustive twin. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/balance/policy_internal.h" /* white box: the slow twins */
#include "sim/policy.h"

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- a synthetic step --------------------------------------------------------------------- */

typedef struct {
    uint32_t *drawn, *ex_tokens, *it_example, *it_len;
    uint8_t *it_phase;
    double *ex_cost, *it_cost;
    uint64_t *ex_bytes, *it_in, *it_out;
    PolicyOptions opt;
    StepWork w;
} Gen;

/* D ranks x per_rank examples, 0-3 items each over P-1 encoders; costs a*len + c*len^2. */
static void gen_step(Gen *g, uint32_t D, uint32_t per_rank, uint32_t P, uint32_t dpn, uint64_t seed) {
    memset(g, 0, sizeof *g);
    rng_state = seed;
    uint32_t N = D * per_rank, M = 0, cap = N * 3;
    g->drawn = malloc(N * sizeof(uint32_t));
    g->ex_tokens = malloc(N * sizeof(uint32_t));
    g->ex_cost = malloc(N * sizeof(double));
    g->ex_bytes = malloc(N * sizeof(uint64_t));
    g->it_example = malloc(cap * sizeof(uint32_t) + 4);
    g->it_len = malloc(cap * sizeof(uint32_t) + 4);
    g->it_phase = malloc(cap + 1);
    g->it_cost = malloc(cap * sizeof(double) + 8);
    g->it_in = malloc(cap * sizeof(uint64_t) + 8);
    g->it_out = malloc(cap * sizeof(uint64_t) + 8);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t text = 32 + (uint32_t)(rnd() % 2000), S = text;
        uint32_t k = P > 1 ? (uint32_t)(rnd() % 4) : 0;
        for (uint32_t q = 0; q < k; q++) {
            uint32_t len = 64 + (uint32_t)(rnd() % 4000);
            if (rnd() % 10 == 0) len *= 4; /* a heavy tail */
            g->it_example[M] = i;
            g->it_phase[M] = (uint8_t)(rnd() % (P - 1));
            g->it_len[M] = len;
            g->it_cost[M] = 1e-6 * len + 2e-10 * (double)len * len;
            g->it_in[M] = (uint64_t)len * 588;
            g->it_out[M] = (uint64_t)((len + 3) / 4) * 8192;
            S += (len + 3) / 4;
            M++;
        }
        g->drawn[i] = i / per_rank;
        g->ex_tokens[i] = S;
        g->ex_cost[i] = 2e-6 * S + 1e-10 * (double)S * S;
        g->ex_bytes[i] = (uint64_t)text * 4;
    }
    g->opt = (PolicyOptions){.objective = OBJ_COST, .seed = 1};
    g->w = (StepWork){.D = D, .P = P, .N = N, .M = M, .dp_per_node = dpn, .drawn = g->drawn,
                      .ex_cost = g->ex_cost, .ex_tokens = g->ex_tokens, .ex_bytes = g->ex_bytes,
                      .it_example = g->it_example, .it_phase = g->it_phase, .it_cost = g->it_cost,
                      .it_len = g->it_len, .it_in_bytes = g->it_in, .it_out_bytes = g->it_out,
                      .opt = &g->opt};
}

static void gen_free(Gen *g) {
    free(g->drawn);
    free(g->ex_tokens);
    free(g->ex_cost);
    free(g->ex_bytes);
    free(g->it_example);
    free(g->it_len);
    free(g->it_phase);
    free(g->it_cost);
    free(g->it_in);
    free(g->it_out);
}

static void plan_alloc(Plan *p, const StepWork *w) {
    p->home = calloc(w->N + 1, sizeof(uint32_t));
    p->ex_rank = calloc(w->N + 1, sizeof(uint32_t));
    p->it_rank = calloc(w->M + 1, sizeof(uint32_t));
    p->hierarchical = -1;
}
static void plan_free(Plan *p) {
    free(p->home);
    free(p->ex_rank);
    free(p->it_rank);
}

static PolicyScratch *S;
static void setup(void) {
    os_clear_error();
    cr_assert_eq(policy_scratch_create(&S), OS_OK);
}
static void teardown(void) { policy_scratch_destroy(S); }
TestSuite(policy, .init = setup, .fini = teardown);

static OsStatus run(const char *name, Plan *p, const StepWork *w) {
    const Policy *pol = policy_find(name);
    cr_assert_not_null(pol, "policy %s", name);
    return pol->fn(p, w, S);
}

/* Per-rank load of one phase (phase P-1 = LLM). load: [D]. Returns the max. */
static double phase_loads(double *load, const Plan *p, const StepWork *w, uint32_t phase) {
    memset(load, 0, w->D * sizeof *load);
    if (phase + 1 == w->P)
        for (uint32_t i = 0; i < w->N; i++) load[p->ex_rank[i]] += w->ex_cost[i];
    else
        for (uint32_t j = 0; j < w->M; j++)
            if (w->it_phase[j] == phase) load[p->it_rank[j]] += w->it_cost[j];
    double mx = 0;
    for (uint32_t r = 0; r < w->D; r++) mx = fmax(mx, load[r]);
    return mx;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- registry ------------------------------------------------------------------------------- */

Test(policy, registry) {
    const char *want[] = {"none", "sorted", "lpt", "kk", "equal-count", "isf", "post", "post-enc", "post-node"};
    cr_assert_eq(policy_count(), 9u);
    for (uint32_t i = 0; i < 9; i++) {
        const Policy *p = policy_find(want[i]);
        cr_assert_not_null(p, "%s", want[i]);
        cr_assert_not_null(p->fn);
        cr_assert(p->desc && *p->desc);
        for (uint32_t j = 0; j < policy_count(); j++)
            if (j != i) cr_assert_str_neq(policy_at(i)->name, policy_at(j)->name);
    }
    cr_assert_null(policy_at(9));
    cr_assert_null(policy_find("bogus"));
    cr_assert_str_eq(policy_suggest("pots"), "post");
    cr_assert_str_eq(policy_suggest("lpq"), "lpt");
    cr_assert_str_eq(policy_suggest("post_node"), "post-node");
    cr_assert_null(policy_suggest("zzzzzzzzzz"));
    cr_assert_eq(policy_find("post")->kind, POLICY_POST);
    cr_assert_eq(policy_find("isf")->kind, POLICY_PRE);
    cr_assert_eq(policy_find("equal-count")->kind, POLICY_PRE);
    cr_assert_str_eq(policy_suggest("equal_count"), "equal-count");
}

/* ---- every policy: valid, deterministic, above the oracle ----------------------------------- */

Test(policy, all_valid_deterministic_above_oracle) {
    uint32_t shapes[][4] = {{4, 6, 3, 2}, {16, 8, 3, 4}, {64, 4, 2, 8}, {8, 5, 1, 4}, {6, 3, 4, 0}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        Gen g;
        gen_step(&g, shapes[sh][0], shapes[sh][1], shapes[sh][2], shapes[sh][3], 100 + sh);
        double *load = malloc(g.w.D * sizeof *load);
        for (uint32_t k = 0; k < policy_count(); k++) {
            const Policy *pol = policy_at(k);
            Plan a, b;
            plan_alloc(&a, &g.w);
            plan_alloc(&b, &g.w);
            cr_assert_eq(pol->fn(&a, &g.w, S), OS_OK, "%s: %s", pol->name, os_last_error());
            cr_assert_eq(pol->fn(&b, &g.w, S), OS_OK, "%s: %s", pol->name, os_last_error());
            cr_assert_eq(plan_check(&a, &g.w, pol->name), OS_OK, "%s: %s", pol->name, os_last_error());
            cr_assert_arr_eq(a.home, b.home, g.w.N * sizeof(uint32_t), "%s not deterministic", pol->name);
            cr_assert_arr_eq(a.ex_rank, b.ex_rank, g.w.N * sizeof(uint32_t), "%s", pol->name);
            if (g.w.M) cr_assert_arr_eq(a.it_rank, b.it_rank, g.w.M * sizeof(uint32_t), "%s", pol->name);
            cr_assert(a.hierarchical == 0 || a.hierarchical == 1);
            cr_assert_eq(a.hierarchical, !strcmp(pol->name, "post-node"), "%s", pol->name);
            for (uint32_t ph = 0; ph < g.w.P; ph++)
                cr_assert_geq(phase_loads(load, &a, &g.w, ph), policy_oracle_phase(&g.w, ph) * (1 - 1e-12),
                              "%s phase %u below the oracle", pol->name, ph);
            plan_free(&a);
            plan_free(&b);
        }
        free(load);
        gen_free(&g);
    }
}

Test(policy, oracle_by_hand) {
    Gen g;
    gen_step(&g, 2, 2, 2, 0, 1);
    /* overwrite the LLM costs: {1, 1, 1, 5} into 2 ranks -> max(8/2, 5) = 5 */
    double c[4] = {1, 1, 1, 5};
    memcpy(g.ex_cost, c, sizeof c);
    cr_assert_float_eq(policy_oracle_phase(&g.w, 1), 5.0, 1e-12);
    c[3] = 1; /* {1,1,1,1} -> 2 */
    memcpy(g.ex_cost, c, sizeof c);
    cr_assert_float_eq(policy_oracle_phase(&g.w, 1), 2.0, 1e-12);
    gen_free(&g);
}

/* ---- pre-balancers by hand ------------------------------------------------------------------- */

static void text_only(Gen *g, const double *cost, const uint32_t *tokens, uint32_t N, uint32_t D) {
    gen_step(g, D, N / D, 1, 0, 9);
    for (uint32_t i = 0; i < N; i++) {
        g->ex_cost[i] = cost[i];
        g->ex_tokens[i] = tokens[i];
    }
}

Test(policy, sorted_by_hand) {
    /* tokens 5, 9, 1, 7 -> sorted 9 (ex 1), 7 (ex 3), 5 (ex 0), 1 (ex 2) dealt 0, 1, 0, 1 */
    double c[4] = {1, 1, 1, 1};
    uint32_t t[4] = {5, 9, 1, 7};
    Gen g;
    text_only(&g, c, t, 4, 2);
    Plan p;
    plan_alloc(&p, &g.w);
    cr_assert_eq(run("sorted", &p, &g.w), OS_OK);
    uint32_t want[4] = {0, 0, 1, 1};
    cr_assert_arr_eq(p.home, want, sizeof want);
    cr_assert_arr_eq(p.ex_rank, want, sizeof want);
    plan_free(&p);
    gen_free(&g);
}

Test(policy, lpt_and_kk_by_hand) {
    /* LLM costs 8, 7, 6, 5, 4 + a 0 into 2 ranks: LPT {8,5,4,0} {7,6}; KK 16 vs 14 */
    double c[6] = {8, 7, 6, 5, 4, 0};
    uint32_t t[6] = {1, 1, 1, 1, 1, 1};
    Gen g;
    text_only(&g, c, t, 6, 2);
    Plan p;
    plan_alloc(&p, &g.w);
    double load[2];
    cr_assert_eq(run("lpt", &p, &g.w), OS_OK);
    uint32_t want[6] = {0, 1, 1, 0, 0, 1}; /* the 0 goes to the least-loaded rank 1 (13 < 17) */
    cr_assert_arr_eq(p.home, want, sizeof want);
    cr_assert_float_eq(phase_loads(load, &p, &g.w, 0), 17.0, 1e-12);
    cr_assert_eq(run("kk", &p, &g.w), OS_OK);
    cr_assert_float_eq(phase_loads(load, &p, &g.w, 0), 16.0, 1e-12);
    cr_assert_eq(run("none", &p, &g.w), OS_OK); /* drawn: {8,7,6} {5,4,0} */
    cr_assert_float_eq(phase_loads(load, &p, &g.w, 0), 21.0, 1e-12);
    plan_free(&p);
    gen_free(&g);
}

/* ---- post-balancing ---------------------------------------------------------------------------- */

Test(policy, post_never_worse_than_none_per_phase) {
    for (uint64_t seed = 1; seed <= 12; seed++) {
        Gen g;
        uint32_t D = 2 + (uint32_t)(seed % 5) * 3;
        gen_step(&g, D, 1 + (uint32_t)(seed % 6), 3, 2, seed);
        Plan pn, pp;
        plan_alloc(&pn, &g.w);
        plan_alloc(&pp, &g.w);
        double *load = malloc(D * sizeof *load);
        cr_assert_eq(run("none", &pn, &g.w), OS_OK);
        cr_assert_eq(run("post", &pp, &g.w), OS_OK);
        for (uint32_t ph = 0; ph < g.w.P; ph++) {
            double a = phase_loads(load, &pn, &g.w, ph), b = phase_loads(load, &pp, &g.w, ph);
            cr_assert_leq(b, a * (1 + 1e-12), "seed %llu phase %u: post %g none %g",
                          (unsigned long long)seed, ph, b, a);
        }
        for (uint32_t i = 0; i < g.w.N; i++) cr_assert_eq(pp.home[i], g.drawn[i]);
        free(load);
        plan_free(&pn);
        plan_free(&pp);
        gen_free(&g);
    }
}

Test(policy, post_enc_and_post_node_match_post_loads) {
    Gen g;
    gen_step(&g, 16, 8, 3, 4, 77);
    Plan pp, pe, pn;
    plan_alloc(&pp, &g.w);
    plan_alloc(&pe, &g.w);
    plan_alloc(&pn, &g.w);
    cr_assert_eq(run("post", &pp, &g.w), OS_OK);
    cr_assert_eq(run("post-enc", &pe, &g.w), OS_OK);
    cr_assert_eq(run("post-node", &pn, &g.w), OS_OK, "%s", os_last_error());
    double a[16], b[16], c[16];
    for (uint32_t ph = 0; ph < g.w.P; ph++) {
        double ma = phase_loads(a, &pp, &g.w, ph);
        phase_loads(b, &pe, &g.w, ph);
        double mc = phase_loads(c, &pn, &g.w, ph);
        qsort(a, 16, sizeof *a, cmp_dbl);
        qsort(b, 16, sizeof *b, cmp_dbl);
        for (uint32_t r = 0; r < 16; r++)
            if (ph + 1 < g.w.P) cr_assert_float_eq(a[r], b[r], 1e-12, "phase %u", ph);
        /* post-node trades at most 1% of post's max load per phase for locality (PN_TOL) */
        cr_assert_leq(mc, ma * 1.01 + 1e-15, "phase %u: post-node max %g, post %g", ph, mc, ma);
    }
    for (uint32_t i = 0; i < g.w.N; i++) cr_assert_eq(pe.ex_rank[i], g.drawn[i]);
    /* Encoder phases: the same bins, so post-node moves no more inter-node bytes than post. */
    for (uint32_t ph = 0; ph + 1 < g.w.P; ph++) {
        uint64_t xp = 0, xn = 0;
        for (uint32_t j = 0; j < g.w.M; j++) {
            if (g.it_phase[j] != ph) continue;
            uint32_t home = g.drawn[g.it_example[j]];
            if (pp.it_rank[j] / 4 != home / 4) xp += g.it_in[j];
            if (pn.it_rank[j] / 4 != home / 4) xn += g.it_in[j];
        }
        cr_assert_leq(xn, xp, "phase %u: post-node %llu inter bytes > post %llu", ph,
                      (unsigned long long)xn, (unsigned long long)xp);
    }
    plan_free(&pp);
    plan_free(&pe);
    plan_free(&pn);
    gen_free(&g);
}

Test(policy, objectives_run_and_check) {
    BalanceObjective objs[] = {OBJ_LINEAR, OBJ_QUADRATIC, OBJ_PADDED};
    for (size_t k = 0; k < 3; k++) {
        Gen g;
        gen_step(&g, 8, 6, 3, 4, 500 + k);
        g.opt.objective = objs[k];
        Plan p, n;
        plan_alloc(&p, &g.w);
        plan_alloc(&n, &g.w);
        cr_assert_eq(run("post", &p, &g.w), OS_OK);
        cr_assert_eq(run("none", &n, &g.w), OS_OK);
        cr_assert_eq(plan_check(&p, &g.w, "post"), OS_OK, "%s", os_last_error());
        if (objs[k] == OBJ_QUADRATIC) { /* balanced on len^2: never worse than drawn on len^2 */
            double lp[8] = {0}, ln[8] = {0}, mp = 0, mn = 0;
            for (uint32_t j = 0; j < g.w.M; j++)
                if (g.it_phase[j] == 0) {
                    double l = g.it_len[j];
                    lp[p.it_rank[j]] += l * l;
                    ln[n.it_rank[j]] += l * l;
                }
            for (int r = 0; r < 8; r++) {
                mp = fmax(mp, lp[r]);
                mn = fmax(mn, ln[r]);
            }
            cr_assert_leq(mp, mn);
        }
        plan_free(&p);
        plan_free(&n);
        gen_free(&g);
    }
}

Test(policy, caps_respected_and_impossible_named) {
    Gen g;
    gen_step(&g, 8, 8, 2, 4, 31);
    uint64_t tot = 0, mx = 0, ttok = 0, mxt = 0;
    for (uint32_t j = 0; j < g.w.M; j++) {
        tot += g.it_len[j];
        mx = g.it_len[j] > mx ? g.it_len[j] : mx;
    }
    for (uint32_t i = 0; i < g.w.N; i++) {
        ttok += g.ex_tokens[i];
        mxt = g.ex_tokens[i] > mxt ? g.ex_tokens[i] : mxt;
    }
    uint64_t cap_e = tot / 8 + tot / 8 / 5, cap_l = ttok / 8 + ttok / 8 / 5; /* mean + 20% */
    cap_e = cap_e > mx ? cap_e : mx;
    cap_l = cap_l > mxt ? cap_l : mxt;
    g.opt.cap_enc_positions = cap_e;
    g.opt.cap_llm_tokens = cap_l;
    const char *pols[] = {"post", "post-node"};
    for (int k = 0; k < 2; k++) {
        Plan p;
        plan_alloc(&p, &g.w);
        cr_assert_eq(run(pols[k], &p, &g.w), OS_OK, "%s: %s", pols[k], os_last_error());
        cr_assert_eq(plan_check(&p, &g.w, pols[k]), OS_OK, "%s", os_last_error());
        uint64_t used[8] = {0}, ut[8] = {0};
        for (uint32_t j = 0; j < g.w.M; j++) used[p.it_rank[j]] += g.it_len[j];
        for (uint32_t i = 0; i < g.w.N; i++) ut[p.ex_rank[i]] += g.ex_tokens[i];
        for (int r = 0; r < 8; r++) {
            cr_assert_leq(used[r], cap_e);
            cr_assert_leq(ut[r], cap_l);
        }
        plan_free(&p);
    }
    Plan p;
    plan_alloc(&p, &g.w);
    g.opt.cap_enc_positions = mx - 1; /* the longest item fits nowhere */
    cr_assert_eq(run("post", &p, &g.w), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "item ") != NULL, "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "encoder cap") != NULL, "%s", os_last_error());
    os_clear_error();
    g.opt.cap_enc_positions = 0;
    g.opt.cap_llm_tokens = mxt - 1;
    cr_assert_eq(run("post", &p, &g.w), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "example ") != NULL, "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "LLM cap") != NULL, "%s", os_last_error());
    /* a plan that breaks a cap the policy honors is caught */
    os_clear_error();
    g.opt.cap_llm_tokens = 0;
    cr_assert_eq(run("post", &p, &g.w), OS_OK);
    g.opt.cap_llm_tokens = mxt - 1;
    cr_assert_eq(plan_check(&p, &g.w, "post"), OS_ERR_INTERNAL);
    plan_free(&p);
    gen_free(&g);
}

Test(policy, plan_check_catches_bad_plans) {
    Gen g;
    gen_step(&g, 4, 3, 2, 2, 5);
    Plan p;
    plan_alloc(&p, &g.w);
    cr_assert_eq(run("lpt", &p, &g.w), OS_OK);
    cr_assert_eq(plan_check(&p, &g.w, "lpt"), OS_OK);
    p.ex_rank[3] = 4;
    cr_assert_eq(plan_check(&p, &g.w, "lpt"), OS_ERR_INTERNAL);
    cr_assert(strstr(os_last_error(), "example 3") != NULL, "%s", os_last_error());
    os_clear_error();
    p.ex_rank[3] = (p.home[3] + 1) % 4; /* in range, but a pre policy moved it after the loader */
    cr_assert_eq(plan_check(&p, &g.w, "lpt"), OS_ERR_INTERNAL);
    os_clear_error();
    cr_assert_eq(run("post", &p, &g.w), OS_OK);
    p.home[0] = (g.drawn[0] + 1) % 4; /* post must keep home = drawn */
    cr_assert_eq(plan_check(&p, &g.w, "post"), OS_ERR_INTERNAL);
    plan_free(&p);
    gen_free(&g);
}

Test(policy, reassembly_items_follow_their_example) {
    Gen g;
    gen_step(&g, 8, 6, 3, 4, 8);
    const char *pols[] = {"post", "post-enc", "post-node", "lpt", "isf"};
    for (int k = 0; k < 5; k++) {
        Plan p;
        plan_alloc(&p, &g.w);
        cr_assert_eq(run(pols[k], &p, &g.w), OS_OK);
        /* Route every encoder output to its example's LLM rank, in item order. */
        uint32_t D = g.w.D, M = g.w.M, *cnt = calloc(D + 1, sizeof *cnt), *list = malloc((M + 1) * sizeof *list);
        for (uint32_t j = 0; j < M; j++) cnt[p.ex_rank[g.it_example[j]] + 1]++;
        for (uint32_t r = 0; r < D; r++) cnt[r + 1] += cnt[r];
        uint32_t *cur = malloc((D + 1) * sizeof *cur);
        memcpy(cur, cnt, (D + 1) * sizeof *cur);
        for (uint32_t j = 0; j < M; j++) list[cur[p.ex_rank[g.it_example[j]]]++] = j;
        /* On ex_rank, the example's items appear exactly once each, in order. */
        uint32_t j0 = 0;
        for (uint32_t i = 0; i < g.w.N; i++) {
            uint32_t r = p.ex_rank[i], next = j0;
            while (next < M && g.it_example[next] == i) next++;
            uint32_t seen = j0;
            for (uint32_t q = cnt[r]; q < cnt[r + 1]; q++)
                if (g.it_example[list[q]] == i) cr_assert_eq(list[q], seen++, "%s example %u", pols[k], i);
            cr_assert_eq(seen, next, "%s example %u: %u of %u items", pols[k], i, seen - j0, next - j0);
            j0 = next;
        }
        free(cnt);
        free(cur);
        free(list);
        plan_free(&p);
    }
    gen_free(&g);
}

Test(policy, isf_balances_both_dimensions) {
    Gen g;
    gen_step(&g, 16, 8, 2, 8, 21);
    Plan pi, pn, p2;
    plan_alloc(&pi, &g.w);
    plan_alloc(&pn, &g.w);
    plan_alloc(&p2, &g.w);
    cr_assert_eq(run("isf", &pi, &g.w), OS_OK);
    cr_assert_eq(run("isf", &p2, &g.w), OS_OK);
    cr_assert_arr_eq(pi.home, p2.home, g.w.N * sizeof(uint32_t));
    cr_assert_eq(run("none", &pn, &g.w), OS_OK);
    double l[16];
    double vi = phase_loads(l, &pi, &g.w, 0), vn = phase_loads(l, &pn, &g.w, 0);
    double ci = phase_loads(l, &pi, &g.w, 1), cn = phase_loads(l, &pn, &g.w, 1);
    double ov = policy_oracle_phase(&g.w, 0), oc = policy_oracle_phase(&g.w, 1);
    cr_assert_lt(fmax(vi / ov, ci / oc), fmax(vn / ov, cn / oc), "isf %g/%g none %g/%g", vi / ov,
                 ci / oc, vn / ov, cn / oc);
    g.opt.seed = 2;
    cr_assert_eq(run("isf", &p2, &g.w), OS_OK);
    cr_assert_eq(plan_check(&p2, &g.w, "isf"), OS_OK);
    plan_free(&pi);
    plan_free(&pn);
    plan_free(&p2);
    gen_free(&g);
}

/* ---- node-wise placement ------------------------------------------------------------------- */

typedef struct {
    uint32_t n, *bin, *src;
    uint64_t *bytes;
} Units;

static void units_random(Units *u, uint32_t n, uint32_t D, uint64_t max_bytes) {
    u->n = n;
    u->bin = malloc(n * sizeof *u->bin);
    u->src = malloc(n * sizeof *u->src);
    u->bytes = malloc(n * sizeof *u->bytes);
    for (uint32_t k = 0; k < n; k++) {
        u->bin[k] = (uint32_t)(rnd() % D);
        u->src[k] = (uint32_t)(rnd() % D);
        u->bytes[k] = 1 + rnd() % max_bytes;
    }
}
static void units_free(Units *u) {
    free(u->bin);
    free(u->src);
    free(u->bytes);
}

static void assert_bijection(const uint32_t *rob, uint32_t D) {
    unsigned char *seen = calloc(D, 1);
    for (uint32_t b = 0; b < D; b++) {
        cr_assert_lt(rob[b], D);
        cr_assert_eq(seen[rob[b]], 0, "rank %u used twice", rob[b]);
        seen[rob[b]] = 1;
    }
    free(seen);
}

Test(policy, node_place_exact_vs_brute) {
    rng_state = 99;
    uint32_t shapes[][2] = {{4, 2}, {4, 2}, {6, 3}, {8, 4}, {8, 2}, {4, 4}};
    for (int t = 0; t < 60; t++) {
        uint32_t D = shapes[t % 6][0], g = shapes[t % 6][1];
        Units u;
        units_random(&u, 2 * D + (uint32_t)(rnd() % (2 * D)), D, 100000);
        uint32_t r1[8], r2[8], id[8];
        for (uint32_t b = 0; b < D; b++) id[b] = b;
        cr_assert_eq(policy_node_place(r1, u.bin, u.src, u.bytes, u.n, D, g, NODE_PLACE_EXACT, S), OS_OK,
                     "%s", os_last_error());
        cr_assert_eq(policy_node_place_brute(r2, u.bin, u.src, u.bytes, u.n, D, g), OS_OK);
        assert_bijection(r1, D);
        uint64_t e1, a1, e2, a2, e0, a0;
        policy_node_bytes(&e1, &a1, r1, u.bin, u.src, u.bytes, u.n, g);
        policy_node_bytes(&e2, &a2, r2, u.bin, u.src, u.bytes, u.n, g);
        policy_node_bytes(&e0, &a0, id, u.bin, u.src, u.bytes, u.n, g);
        cr_assert_eq(e1, e2, "D %u g %u: inter %llu vs brute %llu", D, g, (unsigned long long)e1,
                     (unsigned long long)e2);
        cr_assert_eq(a1, a2, "D %u g %u: intra %llu vs brute %llu", D, g, (unsigned long long)a1,
                     (unsigned long long)a2);
        cr_assert_leq(e1, e0);
        /* hierarchical: never above the identity mapping, never below the optimum */
        cr_assert_eq(policy_node_place(r1, u.bin, u.src, u.bytes, u.n, D, g, NODE_PLACE_HIER, S), OS_OK);
        assert_bijection(r1, D);
        policy_node_bytes(&e1, &a1, r1, u.bin, u.src, u.bytes, u.n, g);
        cr_assert_leq(e1, e0);
        cr_assert_geq(e1, e2);
        units_free(&u);
    }
}

Test(policy, node_place_by_hand_2x2) {
    /* 2 nodes x 2 GPUs. Bin 0 holds 100 B from rank 3, bin 1 50 B from rank 2, bin 2 70 B from
     * rank 0, bin 3 10 B from rank 1 + 5 B from rank 3. Optimum: bin 0 -> 3, bin 1 -> 2,
     * bin 2 -> 0, bin 3 -> 1: only the 5 B (rank 3 -> 1) cross nodes, nothing moves in-node. */
    uint32_t bin[5] = {0, 1, 2, 3, 3}, src[5] = {3, 2, 0, 1, 3}, r[4];
    uint64_t by[5] = {100, 50, 70, 10, 5}, e, a;
    uint32_t want[4] = {3, 2, 0, 1};
    NodePlaceMode modes[] = {NODE_PLACE_EXACT, NODE_PLACE_HIER, NODE_PLACE_AUTO};
    for (int m = 0; m < 3; m++) {
        cr_assert_eq(policy_node_place(r, bin, src, by, 5, 4, 2, modes[m], S), OS_OK);
        cr_assert_arr_eq(r, want, sizeof want, "mode %d", m);
        policy_node_bytes(&e, &a, r, bin, src, by, 5, 2);
        cr_assert_eq(e, 5u);
        cr_assert_eq(a, 0u);
    }
    uint32_t id[4] = {0, 1, 2, 3}; /* identity: 100 + 50 + 70 + 10 cross nodes; the 5 stay */
    policy_node_bytes(&e, &a, id, bin, src, by, 5, 2);
    cr_assert_eq(e, 230u);
    cr_assert_eq(a, 0u);
}

Test(policy, node_place_hier_large) {
    rng_state = 1234;
    uint32_t D = 512, g = 8;
    /* Random sources: nothing to gain from the structure, but never worse than identity. */
    Units u;
    units_random(&u, 16 * D, D, 1u << 20);
    uint32_t *r = malloc(D * sizeof *r), *id = malloc(D * sizeof *id);
    for (uint32_t b = 0; b < D; b++) id[b] = b;
    cr_assert_eq(policy_node_place(r, u.bin, u.src, u.bytes, u.n, D, g, NODE_PLACE_AUTO, S), OS_OK);
    assert_bijection(r, D);
    uint64_t e, a, e0, a0;
    policy_node_bytes(&e, &a, r, u.bin, u.src, u.bytes, u.n, g);
    policy_node_bytes(&e0, &a0, id, u.bin, u.src, u.bytes, u.n, g);
    cr_assert_leq(e, e0);
    /* Planted structure: bin b's units all live on rank pi(b): placing b on pi(b) moves nothing,
     * and the hierarchical path must find it. */
    uint32_t *pi = malloc(D * sizeof *pi);
    for (uint32_t b = 0; b < D; b++) pi[b] = b;
    for (uint32_t b = D; b > 1; b--) {
        uint32_t k = (uint32_t)(rnd() % b), t = pi[b - 1];
        pi[b - 1] = pi[k];
        pi[k] = t;
    }
    for (uint32_t k = 0; k < u.n; k++) u.src[k] = pi[u.bin[k]];
    cr_assert_eq(policy_node_place(r, u.bin, u.src, u.bytes, u.n, D, g, NODE_PLACE_HIER, S), OS_OK);
    policy_node_bytes(&e, &a, r, u.bin, u.src, u.bytes, u.n, g);
    cr_assert_eq(e, 0u);
    cr_assert_eq(a, 0u);
    free(pi);
    free(r);
    free(id);
    units_free(&u);
}

Test(policy, node_place_rejects_bad_shapes) {
    uint32_t bin[1] = {0}, src[1] = {0}, r[6];
    uint64_t by[1] = {1};
    cr_assert_eq(policy_node_place(r, bin, src, by, 1, 6, 4, NODE_PLACE_AUTO, S), OS_ERR_ARG);
    os_clear_error();
    src[0] = 7;
    cr_assert_eq(policy_node_place(r, bin, src, by, 1, 6, 3, NODE_PLACE_AUTO, S), OS_ERR_ARG);
}

/* ---- the fast paths against their slow twins ---------------------------------------------- */

Test(policy, isf_matches_scan_twin) {
    /* isf's min-tree first fit and branch-and-bound leftovers against the linear scans: the
     * same groups, on D that are and are not powers of two, with and without encoder work. */
    uint32_t shapes[][4] = {{1, 5, 2, 0}, {3, 7, 2, 0}, {16, 8, 3, 4}, {24, 6, 2, 8}, {100, 4, 2, 8},
                            {64, 16, 3, 8}, {10, 5, 1, 0}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            Gen g;
            gen_step(&g, shapes[sh][0], shapes[sh][1], shapes[sh][2], shapes[sh][3], 900 + 10 * sh + seed);
            g.opt.seed = seed;
            Plan a, b;
            plan_alloc(&a, &g.w);
            plan_alloc(&b, &g.w);
            cr_assert_eq(balance_isf(&a, &g.w, S), OS_OK, "%s", os_last_error());
            cr_assert_eq(balance_isf_ref(&b, &g.w, S), OS_OK, "%s", os_last_error());
            cr_assert_arr_eq(a.home, b.home, g.w.N * sizeof(uint32_t), "shape %zu seed %llu", sh,
                             (unsigned long long)seed);
            plan_free(&a);
            plan_free(&b);
            gen_free(&g);
        }
}

Test(policy, node_balance_matches_scan_twin) {
    /* pol_node_balance's heaps and radix sorts against linear scans and insertion sorts. */
    rng_state = 4242;
    uint32_t shapes[][2] = {{8, 2}, {16, 4}, {24, 8}, {32, 8}, {8, 8}, {12, 3}};
    for (int t = 0; t < 48; t++) {
        uint32_t D = shapes[t % 6][0], g = shapes[t % 6][1], n = D * (1 + (uint32_t)(rnd() % 10));
        uint32_t np = 0, *home = malloc(n * sizeof *home), *pu = malloc(3 * n * sizeof *pu),
                 *ps = malloc(3 * n * sizeof *ps), *r1 = malloc(n * sizeof *r1), *r2 = malloc(n * sizeof *r2);
        uint64_t *pb = malloc(3 * n * sizeof *pb), *size = malloc(n * sizeof *size), tot_sz = 0, mx_sz = 0;
        double *w = malloc(n * sizeof *w), tot = 0, mx = 0;
        for (uint32_t u = 0; u < n; u++) {
            uint32_t len = 64 + (uint32_t)(rnd() % 4000);
            w[u] = t % 5 == 0 ? (double)(rnd() % 3) : 1e-6 * len + 2e-10 * (double)len * len;
            size[u] = len;
            home[u] = (uint32_t)(u * D / n) ^ (uint32_t)(t % 3 == 0 ? rnd() % 2 : 0);
            home[u] %= D;
            for (uint32_t k = 0, c = 1 + (uint32_t)(rnd() % 3); k < c; k++, np++) {
                pu[np] = u;
                ps[np] = k == 0 ? home[u] : (uint32_t)(rnd() % D);
                pb[np] = rnd() % 5 == 0 ? 0 : 1 + rnd() % 100000;
            }
            tot += w[u];
            mx = fmax(mx, w[u]);
            tot_sz += len;
            mx_sz = len > mx_sz ? len : mx_sz;
        }
        uint64_t cap = t % 4 == 1 ? tot_sz / D + tot_sz / D / 4 + mx_sz : 0;
        NodeBalIn in = {.n = n, .np = np, .D = D, .g = g, .w = w, .size = size, .cap = cap, .home = home,
                        .piece_unit = pu, .piece_src = ps, .piece_bytes = pb,
                        .bound = fmax(tot / D, mx) * (1.0 + 0.02 * (double)(t % 3))};
        double m1, m2;
        int ok1, ok2;
        cr_assert_eq(pol_node_balance(r1, &m1, &ok1, &in, S), OS_OK, "%s", os_last_error());
        cr_assert_eq(pol_node_balance_ref(r2, &m2, &ok2, &in, S), OS_OK, "%s", os_last_error());
        cr_assert_eq(ok1, ok2, "t %d", t);
        cr_assert(ok1 || cap, "t %d: no cap, yet no packing", t);
        /* The fast path given the LPT order (as post-node passes post's): same answer. The
         * order here by hand: load descending, ties lower unit first (an insertion sort). */
        uint32_t *ord = malloc(n * sizeof *ord), *r3 = malloc(n * sizeof *r3);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = i;
            while (j > 0 && w[ord[j - 1]] < w[i]) {
                ord[j] = ord[j - 1];
                j--;
            }
            ord[j] = i;
        }
        NodeBalIn in3 = in;
        in3.order = ord;
        double m3;
        int ok3;
        cr_assert_eq(pol_node_balance(r3, &m3, &ok3, &in3, S), OS_OK, "%s", os_last_error());
        cr_assert_eq(ok3, ok2, "t %d", t);
        if (ok3) {
            cr_assert_arr_eq(r3, r2, n * sizeof *r3, "t %d: ranks with the given order differ", t);
            cr_assert_eq(m3, m2);
        }
        free(ord);
        free(r3);
        if (ok1) {
            cr_assert_arr_eq(r1, r2, n * sizeof *r1, "t %d D %u g %u: ranks differ from the twin", t, D, g);
            cr_assert_eq(m1, m2);
            double *load = calloc(D, sizeof *load);
            uint64_t *used = calloc(D, sizeof *used);
            for (uint32_t u = 0; u < n; u++) {
                cr_assert_lt(r1[u], D);
                load[r1[u]] += w[u];
                used[r1[u]] += size[u];
            }
            double lm = 0;
            for (uint32_t r = 0; r < D; r++) {
                lm = fmax(lm, load[r]);
                if (cap) cr_assert_leq(used[r], cap, "t %d rank %u over the cap", t, r);
            }
            cr_assert_float_eq(lm, m1, 1e-12 * (1 + m1));
            free(load);
            free(used);
        }
        free(home);
        free(pu);
        free(ps);
        free(r1);
        free(r2);
        free(pb);
        free(size);
        free(w);
    }
}

/* ---- post-node: locality -------------------------------------------------------------------- */

/* Bytes of the step's forward moves that cross nodes (replay's byte lists: encoder inputs
 * home -> it_rank, embeddings it_rank -> ex_rank, text home -> ex_rank; node = rank / g). */
static uint64_t inter_bytes(const Plan *p, const Gen *g, uint32_t gpn) {
    uint64_t x = 0;
    for (uint32_t i = 0; i < g->w.N; i++)
        if (p->home[i] / gpn != p->ex_rank[i] / gpn) x += g->ex_bytes[i];
    for (uint32_t j = 0; j < g->w.M; j++) {
        uint32_t e = g->it_example[j], h = p->home[e], r = p->it_rank[j], z = p->ex_rank[e];
        if (h / gpn != r / gpn) x += g->it_in[j];
        if (r / gpn != z / gpn) x += g->it_out[j];
    }
    return x;
}

Test(policy, post_node_fewer_inter_bytes_and_near_post_loads) {
    uint32_t shapes[][4] = {{16, 8, 3, 4}, {32, 6, 3, 8}, {64, 4, 2, 8}, {24, 12, 3, 4}, {16, 3, 2, 2}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            Gen g;
            uint32_t D = shapes[sh][0], gpn = shapes[sh][3];
            gen_step(&g, D, shapes[sh][1], shapes[sh][2], gpn, 7000 + 10 * sh + seed);
            Plan pp, pn, p2;
            plan_alloc(&pp, &g.w);
            plan_alloc(&pn, &g.w);
            plan_alloc(&p2, &g.w);
            cr_assert_eq(run("post", &pp, &g.w), OS_OK);
            cr_assert_eq(run("post-node", &pn, &g.w), OS_OK, "%s", os_last_error());
            cr_assert_eq(run("post-node", &p2, &g.w), OS_OK);
            cr_assert_eq(plan_check(&pn, &g.w, "post-node"), OS_OK, "%s", os_last_error());
            cr_assert_arr_eq(pn.ex_rank, p2.ex_rank, g.w.N * sizeof(uint32_t));
            if (g.w.M) cr_assert_arr_eq(pn.it_rank, p2.it_rank, g.w.M * sizeof(uint32_t));
            uint64_t xp = inter_bytes(&pp, &g, gpn), xn = inter_bytes(&pn, &g, gpn);
            cr_assert_leq(xn, xp, "shape %zu seed %llu: post-node %llu inter bytes > post %llu", sh,
                          (unsigned long long)seed, (unsigned long long)xn, (unsigned long long)xp);
            double *la = malloc(D * sizeof *la), *lb = malloc(D * sizeof *lb);
            for (uint32_t ph = 0; ph < g.w.P; ph++) {
                double ma = phase_loads(la, &pp, &g.w, ph), mb = phase_loads(lb, &pn, &g.w, ph);
                cr_assert_leq(mb, ma * 1.01 + 1e-15, "shape %zu phase %u: %g vs post %g", sh, ph, mb, ma);
                /* conservation: the phase's total work is unchanged */
                double sa = 0, sb = 0;
                for (uint32_t r = 0; r < D; r++) sa += la[r], sb += lb[r];
                cr_assert_float_eq(sa, sb, 1e-9 * (1 + sa));
            }
            free(la);
            free(lb);
            plan_free(&pp);
            plan_free(&pn);
            plan_free(&p2);
            gen_free(&g);
        }
}

Test(policy, post_node_moves_nothing_across_balanced_nodes) {
    /* 2 nodes x 2 ranks, 2 examples per rank, one image each; example and item costs alike:
     * rank 0 {5, 3}, rank 1 {1, 1} | rank 2 {4, 4}, rank 3 {1, 1}. Each node carries 10 = the
     * mean, but its ranks do not (8 vs 2), so post rebalances: its LPT gives bins
     * {5}{4}{4}{3} then the 1s, max 5, sending the 4s of node 1 to node 0's rank 1 and the 3
     * of node 0 to node 1. Node-wise, each node packs its own {5,3,1,1} / {4,4,1,1} into 5 + 5:
     * the same max, and not a byte crosses nodes. */
    Gen g;
    gen_step(&g, 4, 2, 2, 2, 5);
    double c[8] = {5, 3, 1, 1, 4, 4, 1, 1};
    for (uint32_t i = 0; i < 8; i++) {
        g.ex_cost[i] = c[i];
        g.ex_tokens[i] = 100;
        g.ex_bytes[i] = 10;
        g.it_example[i] = i;
        g.it_phase[i] = 0;
        g.it_len[i] = 64;
        g.it_cost[i] = c[i];
        g.it_in[i] = 100;
        g.it_out[i] = 50;
    }
    g.w.M = 8;
    Plan pp, pn;
    plan_alloc(&pp, &g.w);
    plan_alloc(&pn, &g.w);
    cr_assert_eq(run("post", &pp, &g.w), OS_OK);
    cr_assert_eq(run("post-node", &pn, &g.w), OS_OK, "%s", os_last_error());
    cr_assert_eq(plan_check(&pn, &g.w, "post-node"), OS_OK, "%s", os_last_error());
    cr_assert_gt(inter_bytes(&pp, &g, 2), 0u, "post should cross nodes here");
    cr_assert_eq(inter_bytes(&pn, &g, 2), 0u);
    double l[4];
    for (uint32_t ph = 0; ph < 2; ph++) {
        cr_assert_float_eq(phase_loads(l, &pp, &g.w, ph), 5.0, 1e-12);
        cr_assert_float_eq(phase_loads(l, &pn, &g.w, ph), 5.0, 1e-12);
    }
    for (uint32_t i = 0; i < 8; i++) cr_assert_eq(pn.ex_rank[i] / 2, g.drawn[i] / 2, "example %u", i);
    plan_free(&pp);
    plan_free(&pn);
    gen_free(&g);
}

/* ---- equal-count (LLaVA split_to_even_chunks) against its exhaustive twin ------------------ */

/* brute.c: the optimum over the assignments with floor/ceil(n/D) units per bin. Declared here:
 * it is the twin of balance_equal_count, and neither has a public header. */
OsStatus part_brute_count(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D);

/* A step of N examples (any N, not only multiples of D) with encoder items, drawn
 * round-robin-ish by gen_step: gen_step's D x ceil(N/D) step cut to its first N examples. */
static void gen_n(Gen *g, uint32_t D, uint32_t N, uint64_t seed) {
    gen_step(g, D, (N + D - 1) / D, 2, 0, seed);
    uint32_t M = 0;
    while (M < g->w.M && g->it_example[M] < N) M++; /* items are in example order */
    g->w.N = N;
    g->w.M = M;
}

/* Counts floor/ceil, items with their example, home = LLM rank; returns the max LLM load. */
static double check_equal_count(const Plan *p, const StepWork *w) {
    uint32_t *cnt = calloc(w->D, sizeof *cnt), q = w->N / w->D;
    double *load = malloc(w->D * sizeof *load);
    cr_assert_eq(plan_check(p, w, "equal-count"), OS_OK, "%s", os_last_error());
    for (uint32_t i = 0; i < w->N; i++) {
        cr_assert_eq(p->home[i], p->ex_rank[i], "example %u", i);
        cnt[p->ex_rank[i]]++;
    }
    uint32_t ceil_ranks = 0;
    for (uint32_t r = 0; r < w->D; r++) {
        cr_assert(cnt[r] == q || cnt[r] == q + 1, "rank %u holds %u examples (N %u, D %u)", r, cnt[r], w->N, w->D);
        ceil_ranks += cnt[r] == q + 1;
    }
    cr_assert_eq(ceil_ranks, w->N % w->D);
    for (uint32_t j = 0; j < w->M; j++) cr_assert_eq(p->it_rank[j], p->ex_rank[w->it_example[j]], "item %u", j);
    cr_assert_eq(p->hierarchical, 0);
    double mx = phase_loads(load, p, w, w->P - 1);
    free(cnt);
    free(load);
    return mx;
}

Test(policy, equal_count_by_hand) {
    /* LLM costs 10, 1, 1, 1 into 2 ranks: lpt puts all three 1s beside nothing ({10} {1,1,1});
     * with two examples each: 10 -> r0, 1 -> r1, 1 -> r1 (full), 1 -> r0 (the only room). */
    double c[4] = {10, 1, 1, 1};
    uint32_t t[4] = {1, 1, 1, 1};
    Gen g;
    text_only(&g, c, t, 4, 2);
    Plan p;
    plan_alloc(&p, &g.w);
    cr_assert_eq(run("lpt", &p, &g.w), OS_OK);
    uint32_t lpt[4] = {0, 1, 1, 1};
    cr_assert_arr_eq(p.home, lpt, sizeof lpt);
    cr_assert_eq(run("equal-count", &p, &g.w), OS_OK, "%s", os_last_error());
    uint32_t want[4] = {0, 1, 1, 0};
    cr_assert_arr_eq(p.home, want, sizeof want);
    cr_assert_float_eq(check_equal_count(&p, &g.w), 11.0, 1e-12);
    plan_free(&p);
    gen_free(&g);
    /* N = 5, D = 2: one rank may hold 3. Costs 10, 1, 1, 1, 1 (equal costs: lower example
     * first): 10 -> r0; ex 1 -> r1; ex 2 -> r1 (1 < 10; r1 at 2 = floor, the extra still free);
     * ex 3 -> r1 (2 < 10, now 3: the extra is taken); ex 4 -> r0. */
    double c5[6] = {10, 1, 1, 1, 1, 0};
    uint32_t t5[6] = {1, 1, 1, 1, 1, 1};
    gen_n(&g, 2, 5, 9);
    memcpy(g.ex_cost, c5, 5 * sizeof *c5);
    memcpy(g.ex_tokens, t5, 5 * sizeof *t5);
    plan_alloc(&p, &g.w);
    cr_assert_eq(run("equal-count", &p, &g.w), OS_OK, "%s", os_last_error());
    uint32_t want5[5] = {0, 1, 1, 1, 0};
    cr_assert_arr_eq(p.home, want5, sizeof want5);
    cr_assert_float_eq(check_equal_count(&p, &g.w), 11.0, 1e-12);
    plan_free(&p);
    gen_free(&g);
    /* ties: equal costs go to ranks 0, 1, 2, 0, 1, 2 (lower example first, lower rank first) */
    double c6[6] = {2, 2, 2, 2, 2, 2};
    uint32_t t6[6] = {1, 1, 1, 1, 1, 1};
    text_only(&g, c6, t6, 6, 3);
    plan_alloc(&p, &g.w);
    cr_assert_eq(run("equal-count", &p, &g.w), OS_OK);
    uint32_t want6[6] = {0, 1, 2, 0, 1, 2};
    cr_assert_arr_eq(p.home, want6, sizeof want6);
    plan_free(&p);
    gen_free(&g);
    /* The bound is tight at N = 3D (LPT's classic instance padded with zeros): D = 2,
     * {3,3,2,2,2,0}: {3,2,2} = 7 against {3,3,0} {2,2,2} = 6, 7/6 = 4/3 - 1/6; D = 3,
     * {5,5,4,4,3,3,3,0,0}: {5,3,3} = 11 against {5,4,0} {5,4,0} {3,3,3} = 9, 11/9 = 4/3 - 1/9. */
    static const double tight2[6] = {3, 3, 2, 2, 2, 0}, tight3[9] = {5, 5, 4, 4, 3, 3, 3, 0, 0};
    static const struct {
        const double *c;
        uint32_t N, D;
        double got, opt;
    } tight[] = {{tight2, 6, 2, 7, 6}, {tight3, 9, 3, 11, 9}};
    for (size_t k = 0; k < 2; k++) {
        uint32_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, bin[9];
        double opt = 0;
        text_only(&g, tight[k].c, ones, tight[k].N, tight[k].D);
        plan_alloc(&p, &g.w);
        cr_assert_eq(run("equal-count", &p, &g.w), OS_OK);
        cr_assert_float_eq(check_equal_count(&p, &g.w), tight[k].got, 1e-12);
        cr_assert_eq(part_brute_count(bin, &opt, tight[k].c, tight[k].N, tight[k].D), OS_OK);
        cr_assert_float_eq(opt, tight[k].opt, 1e-12);
        cr_assert_float_eq(tight[k].got / opt, 4.0 / 3.0 - 1.0 / (3.0 * tight[k].D), 1e-12);
        plan_free(&p);
        gen_free(&g);
    }
}

Test(policy, equal_count_vs_brute_random_small) {
    /* (D, largest N): D^N <= 2^22 for the exhaustive twin */
    static const uint32_t shapes[][2] = {{1, 6}, {2, 12}, {3, 10}, {4, 9}, {5, 8}, {6, 7}, {8, 6}};
    double worst = 1.0;
    uint64_t seed = 1;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        uint32_t D = shapes[sh][0];
        for (uint32_t N = 1; N <= shapes[sh][1]; N++) {
            int reps = D == 1 ? 1 : N >= 9 ? 4 : 12;
            for (int rep = 0; rep < reps; rep++, seed++) {
                Gen g;
                gen_n(&g, D, N, seed);
                int kind = (int)(seed % 4);
                for (uint32_t i = 0; i < N; i++) { /* gen_step's a*S + c*S^2, small integers (ties), a heavy tail */
                    if (kind == 1) g.ex_cost[i] = (double)(rnd() % 10);
                    if (kind == 2) g.ex_cost[i] = (double)(1 + rnd() % 1000);
                    if (kind == 3) g.ex_cost[i] = (rnd() % 5 ? 1.0 : 40.0) * (double)(1 + rnd() % 7);
                }
                Plan a, b;
                plan_alloc(&a, &g.w);
                plan_alloc(&b, &g.w);
                cr_assert_eq(run("equal-count", &a, &g.w), OS_OK, "%s", os_last_error());
                cr_assert_eq(run("equal-count", &b, &g.w), OS_OK);
                cr_assert_arr_eq(a.home, b.home, N * sizeof *a.home, "not deterministic");
                double mx = check_equal_count(&a, &g.w);
                uint32_t bin[16];
                double opt = 0;
                cr_assert_eq(part_brute_count(bin, &opt, g.ex_cost, N, D), OS_OK, "%s", os_last_error());
                /* the twin's answer meets the counts and is no worse than the policy's */
                uint32_t cnt[16] = {0};
                for (uint32_t i = 0; i < N; i++) cnt[bin[i]]++;
                for (uint32_t r = 0; r < D; r++) cr_assert(cnt[r] == N / D || cnt[r] == N / D + 1);
                double eps = 1e-12 * (1 + opt);
                cr_assert_geq(mx, opt - eps, "policy %g below the exhaustive optimum %g", mx, opt);
                cr_assert_leq(mx, (4.0 / 3.0 - 1.0 / (3.0 * D)) * opt + eps,
                              "D %u N %u kind %d: equal-count %g vs optimum %g", D, N, kind, mx, opt);
                if (opt > 0) worst = fmax(worst, mx / opt);
                plan_free(&a);
                plan_free(&b);
                gen_free(&g);
            }
        }
    }
    cr_assert_lt(worst, 4.0 / 3.0);
}

Test(policy, equal_count_large_counts_and_balance) {
    /* N not a multiple of D, and D > N: counts hold, the load stays near LPT's */
    uint32_t cases[][2] = {{64, 1000}, {256, 4099}, {16, 7}, {2560, 20480}, {4, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Gen g;
        gen_n(&g, cases[k][0], cases[k][1], 77 + k);
        Plan p, l;
        plan_alloc(&p, &g.w);
        plan_alloc(&l, &g.w);
        cr_assert_eq(run("equal-count", &p, &g.w), OS_OK, "%s", os_last_error());
        cr_assert_eq(run("lpt", &l, &g.w), OS_OK);
        double mx = check_equal_count(&p, &g.w);
        double *load = malloc(g.w.D * sizeof *load);
        double ml = phase_loads(load, &l, &g.w, g.w.P - 1), lb = policy_oracle_phase(&g.w, g.w.P - 1);
        free(load);
        cr_assert_geq(mx, lb * (1 - 1e-12));
        if (g.w.N >= 4 * g.w.D) cr_assert_leq(mx, 1.05 * ml, "D %u N %u: %g vs lpt %g", g.w.D, g.w.N, mx, ml);
        plan_free(&p);
        plan_free(&l);
        gen_free(&g);
    }
}

/* Max over ranks of a phase's load measured as the objective counts it: additive weights, or
 * count x longest unit under padding. */
static double objective_max(const Plan *p, const StepWork *w, uint32_t phase, BalanceObjective obj) {
    double *load = calloc(w->D, sizeof *load), mx = 0;
    uint32_t *cnt = calloc(w->D, sizeof *cnt), *lmax = calloc(w->D, sizeof *lmax);
    uint32_t n = phase + 1 == w->P ? w->N : w->M;
    for (uint32_t u = 0; u < n; u++) {
        int llm = phase + 1 == w->P;
        if (!llm && w->it_phase[u] != phase) continue;
        uint32_t r = llm ? p->ex_rank[u] : p->it_rank[u], len = llm ? w->ex_tokens[u] : w->it_len[u];
        double c = llm ? w->ex_cost[u] : w->it_cost[u];
        load[r] += obj == OBJ_COST ? c : obj == OBJ_QUADRATIC ? (double)len * len : (double)len;
        cnt[r]++;
        if (len > lmax[r]) lmax[r] = len;
    }
    for (uint32_t r = 0; r < w->D; r++) mx = fmax(mx, obj == OBJ_PADDED ? (double)cnt[r] * lmax[r] : load[r]);
    free(load);
    free(cnt);
    free(lmax);
    return mx;
}

/* Under every objective — padded too, whose bins are not additive — post-node keeps post's
 * max load (within 1%; padded: never above it) and sends fewer bytes across nodes: at most
 * half of post's over the shapes below. */
Test(policy, post_node_keeps_its_locality_under_every_objective) {
    const BalanceObjective objs[] = {OBJ_COST, OBJ_LINEAR, OBJ_QUADRATIC, OBJ_PADDED};
    uint32_t shapes[][4] = {{16, 8, 3, 4}, {32, 6, 3, 8}, {64, 8, 2, 8}};
    for (size_t o = 0; o < 4; o++)
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            uint64_t xp_sum = 0, xn_sum = 0;
            for (uint64_t seed = 1; seed <= 3; seed++) {
                Gen g;
                uint32_t D = shapes[sh][0], gpn = shapes[sh][3];
                gen_step(&g, D, shapes[sh][1], shapes[sh][2], gpn, 9100 + 10 * sh + seed);
                g.opt.objective = objs[o];
                Plan pp, pn;
                plan_alloc(&pp, &g.w);
                plan_alloc(&pn, &g.w);
                cr_assert_eq(run("post", &pp, &g.w), OS_OK, "%s", os_last_error());
                cr_assert_eq(run("post-node", &pn, &g.w), OS_OK, "%s", os_last_error());
                cr_assert_eq(plan_check(&pn, &g.w, "post-node"), OS_OK, "%s", os_last_error());
                for (uint32_t ph = 0; ph < g.w.P; ph++) {
                    double ma = objective_max(&pp, &g.w, ph, objs[o]), mb = objective_max(&pn, &g.w, ph, objs[o]);
                    double tol = objs[o] == OBJ_PADDED ? 0.0 : 0.01;
                    cr_assert_leq(mb, ma * (1 + tol) + 1e-12, "objective %zu shape %zu phase %u: %g vs post %g", o, sh, ph,
                                  mb, ma);
                }
                xp_sum += inter_bytes(&pp, &g, gpn);
                xn_sum += inter_bytes(&pn, &g, gpn);
                plan_free(&pp);
                plan_free(&pn);
                gen_free(&g);
            }
            cr_assert_leq(2 * xn_sum, xp_sum, "objective %zu shape %zu: post-node %llu inter bytes, post %llu", o, sh,
                          (unsigned long long)xn_sum, (unsigned long long)xp_sum);
        }
}
