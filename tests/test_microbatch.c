/* test_microbatch.c — microbatch.h: the budget count by hand, against its O(n^2) twin and
 * against optimal bin packing; Karmarkar-Karp micro-batches by hand and against the exhaustive
 * twin (the LPT bound, the end placement, non-empty groups, determinism); the drawn-order
 * split against a copy of replay's pack_microbatches rule. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "sim/balance/partition.h"
#include "sim/microbatch.h"

static MbScratch *S;
static PartScratch *PS;
static void setup(void) {
    os_clear_error();
    cr_assert_eq(mb_scratch_create(&S), OS_OK);
    cr_assert_eq(part_scratch_create(&PS), OS_OK);
}
static void teardown(void) {
    mb_scratch_destroy(S);
    part_scratch_destroy(PS);
}
TestSuite(microbatch, .init = setup, .fini = teardown);

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t count(const uint32_t *tok, uint32_t n, uint64_t budget) {
    uint32_t c = 0;
    cr_assert_eq(mb_count_for_budget(&c, tok, n, budget, S), OS_OK, "%s", os_last_error());
    return c;
}

/* ---- the count for a token budget -------------------------------------------------------- */

Test(microbatch, count_by_hand) {
    uint32_t a[] = {6, 6, 6}; /* ceil(18/10) = 2, but no two fit together: 3 */
    cr_assert_eq(count(a, 3, 10), 3u);
    cr_assert_eq(mb_count_for_budget_ref(a, 3, 10), 3u);
    uint32_t b[] = {5, 5, 5, 5}; /* exactly 2 x 10 */
    cr_assert_eq(count(b, 4, 10), 2u);
    uint32_t c[] = {4, 4, 4, 3, 3, 2}; /* FFD: {4,4,2} {4,3,3}: 2 = ceil(20/10) */
    cr_assert_eq(count(c, 6, 10), 2u);
    uint32_t d[] = {11, 3}; /* 11 alone, 3 in one more: 2 */
    cr_assert_eq(count(d, 2, 10), 2u);
    uint32_t e[] = {25}; /* ceil(25/10) = 3, but one sequence is one micro-batch */
    cr_assert_eq(count(e, 1, 10), 1u);
    uint32_t f[] = {25, 1, 1}; /* ceil(27/10) = 3 > FFD's 1 + 1: 3 */
    cr_assert_eq(count(f, 3, 10), 3u);
    uint32_t g[] = {0, 0, 0};
    cr_assert_eq(count(g, 3, 10), 1u);
    cr_assert_eq(count(a, 3, 0), 1u, "no budget: one micro-batch");
    cr_assert_eq(count(NULL, 0, 10), 1u, "no sequences: one (empty) micro-batch");
    uint32_t h[] = {7, 7, 7, 7, 7, 7, 3, 3, 3}; /* sum 51, budget 20: ceil 3; FFD {7,7,3}x3: 3 */
    cr_assert_eq(count(h, 9, 20), 3u);
    uint32_t k[] = {9, 9, 9, 9, 9, 9}; /* ceil(54/20) = 3; FFD {9,9} x 3: 3 */
    cr_assert_eq(count(k, 6, 20), 3u);
    uint32_t m[] = {11, 11, 11}; /* ceil(33/20) = 2, FFD 3 */
    cr_assert_eq(count(m, 3, 20), 3u);
}

Test(microbatch, count_matches_scan_twin) {
    rng_state = 7;
    uint32_t *tok = malloc(3000 * sizeof *tok);
    for (int rep = 0; rep < 300; rep++) {
        uint32_t n = 1 + (uint32_t)(rnd() % (rep < 250 ? 60 : 3000));
        uint32_t maxlen = 1 + (uint32_t)(rnd() % 9000);
        for (uint32_t i = 0; i < n; i++) tok[i] = (uint32_t)(rnd() % (maxlen + 1));
        uint64_t budget = 1 + rnd() % (2ull * maxlen + 10);
        uint32_t c = count(tok, n, budget), r = mb_count_for_budget_ref(tok, n, budget);
        cr_assert_eq(c, r, "rep %d n %u budget %llu: %u vs twin %u", rep, n, (unsigned long long)budget, c, r);
        uint64_t sum = 0;
        for (uint32_t i = 0; i < n; i++) sum += tok[i];
        uint64_t lb = sum / budget + (sum % budget != 0);
        cr_assert_geq(c, 1u);
        cr_assert_leq(c, n);
        cr_assert(c >= lb || c == n || c == MB_MAX, "below ceil(sum / budget)");
    }
    free(tok);
}

/* Every sequence fits: the count is first-fit decreasing's, never below the optimal packing
 * and within FFD's tight bound 11/9 OPT + 6/9 (Dosa 2007). OPT by exhaustive partitioning:
 * the fewest bins whose optimal max load stays within the budget. */
Test(microbatch, count_vs_optimal_packing) {
    rng_state = 11;
    int above = 0;
    for (int rep = 0; rep < 250; rep++) {
        uint32_t n = 1 + (uint32_t)(rnd() % 9);
        uint32_t tok[9];
        double w[9];
        uint64_t budget = 10 + rnd() % 40;
        for (uint32_t i = 0; i < n; i++) {
            tok[i] = 1 + (uint32_t)(rnd() % budget);
            w[i] = tok[i];
        }
        uint32_t opt = 0, bin[9];
        for (uint32_t k = 1; k <= n && !opt; k++) {
            double mx;
            cr_assert_eq(part_brute(bin, &mx, w, n, k), OS_OK);
            if (mx <= (double)budget) opt = k;
        }
        uint32_t c = count(tok, n, budget);
        cr_assert_geq(c, opt, "rep %d: %u micro-batches, a packing needs %u", rep, c, opt);
        cr_assert_leq(9.0 * c, 11.0 * opt + 6.0, "rep %d: FFD %u vs OPT %u", rep, c, opt);
        above += c > opt;
    }
    cr_assert_lt(above, 250, "FFD is optimal on most tiny cases");
}

/* ---- Karmarkar-Karp micro-batches ---------------------------------------------------------- */

/* Checks every sequence has a position in [0, M), every position is used when n >= M, the two
 * smallest groups sit at the ends and workload rises to a peak then falls. gw: [M] out. */
static void check_layout(double *gw, const uint16_t *mb_of, const double *work, uint32_t n, uint32_t M) {
    uint32_t cnt[4096] = {0};
    for (uint32_t k = 0; k < M; k++) gw[k] = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_lt(mb_of[i], M, "sequence %u at %u of %u", i, mb_of[i], M);
        gw[mb_of[i]] += work[i];
        cnt[mb_of[i]]++;
    }
    if (n >= M)
        for (uint32_t k = 0; k < M; k++) cr_assert_gt(cnt[k], 0u, "micro-batch %u of %u empty (n %u)", k, M, n);
    if (M < 2) return;
    double lo1 = INFINITY, lo2 = INFINITY; /* the two smallest */
    for (uint32_t k = 0; k < M; k++) {
        if (gw[k] < lo1) {
            lo2 = lo1;
            lo1 = gw[k];
        } else if (gw[k] < lo2) {
            lo2 = gw[k];
        }
    }
    double e0 = fmin(gw[0], gw[M - 1]), e1 = fmax(gw[0], gw[M - 1]);
    cr_assert(e0 == lo1 && e1 == lo2, "ends %g, %g are not the two smallest %g, %g", gw[0], gw[M - 1], lo1, lo2);
    uint32_t k = 0;
    while (k + 1 < M && gw[k + 1] >= gw[k]) k++;
    while (k + 1 < M && gw[k + 1] <= gw[k]) k++;
    cr_assert_eq(k, M - 1, "workload not rising then falling (breaks after position %u of %u)", k, M);
}

Test(microbatch, kk_by_hand) {
    /* KK on {8,7,6,5,4} into 2 (test_partition's classic): {7,5,4} = 16 and {8,6} = 14.
     * Ascending g0 = {8,6}, g1 = {7,5,4}: positions 0 and 1. */
    double w[5] = {8, 7, 6, 5, 4};
    uint16_t mb[5];
    cr_assert_eq(mb_partition_kk(mb, w, 5, 2, S), OS_OK, "%s", os_last_error());
    uint16_t want[5] = {0, 1, 0, 1, 1};
    cr_assert_arr_eq(mb, want, sizeof want);
    /* n = M: one sequence each; ascending 1 (seq 1), 1.5 (3), 3 (0), 4 (2), 5 (4) laid out
     * g0 g2 g4 g3 g1 = 1, 3, 5, 4, 1.5. */
    double v[5] = {3, 1, 4, 1.5, 5};
    cr_assert_eq(mb_partition_kk(mb, v, 5, 5, S), OS_OK);
    uint16_t want5[5] = {1, 0, 3, 4, 2};
    cr_assert_arr_eq(mb, want5, sizeof want5);
    /* ties on workload: the group holding the lower sequence first */
    double t[4] = {2, 2, 2, 2};
    cr_assert_eq(mb_partition_kk(mb, t, 4, 4, S), OS_OK);
    uint16_t want4[4] = {0, 3, 1, 2};
    cr_assert_arr_eq(mb, want4, sizeof want4);
    /* M = 1: everything in micro-batch 0 */
    cr_assert_eq(mb_partition_kk(mb, w, 5, 1, S), OS_OK);
    for (int i = 0; i < 5; i++) cr_assert_eq(mb[i], 0);
}

Test(microbatch, kk_fewer_sequences_than_micro_batches) {
    /* n < M: the empty micro-batches (workload 0) are the smallest, so they take the ends. */
    double w[3] = {5, 1, 3};
    uint16_t mb[3];
    double gw[6];
    cr_assert_eq(mb_partition_kk(mb, w, 3, 6, S), OS_OK);
    check_layout(gw, mb, w, 3, 6);
    cr_assert_float_eq(gw[0], 0.0, 0);
    cr_assert_float_eq(gw[5], 0.0, 0);
    cr_assert_eq(mb_partition_kk(mb, w, 0, 4, S), OS_OK, "no sequences");
}

Test(microbatch, kk_rejects_bad_input) {
    double w[3] = {1, 2, 3};
    uint16_t mb[3];
    cr_assert_eq(mb_partition_kk(mb, w, 3, 0, S), OS_ERR_ARG);
    os_clear_error();
    cr_assert_eq(mb_partition_kk(mb, w, 3, MB_MAX + 1, S), OS_ERR_ARG);
    os_clear_error();
    w[1] = -1;
    cr_assert_eq(mb_partition_kk(mb, w, 3, 2, S), OS_ERR_ARG);
    os_clear_error();
    w[1] = NAN;
    cr_assert_eq(mb_partition_kk(mb, w, 3, 2, S), OS_ERR_ARG);
    os_clear_error();
    cr_assert_eq(mb_partition_brute(mb, &w[0], w, 11, 2), OS_ERR_RANGE);
}

/* The KK groups are part_kk's partition, only renumbered. */
static void assert_same_groups(const uint16_t *mb, const uint32_t *bin, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            cr_assert_eq(mb[i] == mb[j], bin[i] == bin[j], "sequences %u, %u", i, j);
}

Test(microbatch, kk_vs_brute_random_small) {
    rng_state = 42;
    double worst = 1.0;
    for (int rep = 0; rep < 400; rep++) {
        uint32_t M = 2 + (uint32_t)(rnd() % 4); /* 2..5 */
        uint32_t nmax = M == 2 ? 10 : M == 3 ? 9 : M == 4 ? 8 : 7;
        uint32_t n = 1 + (uint32_t)(rnd() % nmax);
        double w[10];
        int kind = rep % 4;
        for (uint32_t i = 0; i < n; i++) {
            /* workloads a*s + s^2 of lengths 1..4096 (a = 4096), small integers (ties), a heavy tail */
            double s = (double)(1 + rnd() % 4096);
            w[i] = kind == 0 ? 4096.0 * s + s * s : kind == 1 ? (double)(rnd() % 10) : kind == 2 ? (double)(1 + rnd() % 1000)
                                                                                                : (rnd() % 5 ? 1.0 : 50.0) * (1 + rnd() % 7);
        }
        uint16_t mk[10], mb[10], mk2[10];
        double gk[16], gb[16], opt = 0, opt2 = 0;
        uint32_t bin[10];
        cr_assert_eq(mb_partition_kk(mk, w, n, M, S), OS_OK, "%s", os_last_error());
        cr_assert_eq(mb_partition_kk(mk2, w, n, M, S), OS_OK);
        cr_assert_arr_eq(mk, mk2, n * sizeof *mk, "not deterministic");
        cr_assert_eq(mb_partition_brute(mb, &opt, w, n, M), OS_OK, "%s", os_last_error());
        cr_assert_eq(part_brute(bin, &opt2, w, n, M), OS_OK);
        cr_assert_float_eq(opt, opt2, 1e-9 * (1 + opt), "two exhaustive searches disagree");
        check_layout(gk, mk, w, n, M);
        check_layout(gb, mb, w, n, M);
        double mxk = 0, mxb = 0;
        for (uint32_t k = 0; k < M; k++) {
            mxk = fmax(mxk, gk[k]);
            mxb = fmax(mxb, gb[k]);
        }
        cr_assert_float_eq(mxb, opt, 1e-9 * (1 + opt));
        double eps = 1e-9 * (1 + opt);
        cr_assert_leq(mxk, (4.0 / 3.0 - 1.0 / (3.0 * M)) * opt + eps, "rep %d: KK %g vs OPT %g, M %u n %u", rep, mxk,
                      opt, M, n);
        cr_assert_geq(mxk, opt - eps);
        double kkmax;
        cr_assert_eq(part_kk(bin, &kkmax, w, n, M, PS), OS_OK);
        cr_assert_float_eq(kkmax, mxk, 1e-9 * (1 + mxk));
        assert_same_groups(mk, bin, n);
        if (opt > 0) worst = fmax(worst, mxk / opt);
    }
    cr_assert_lt(worst, 4.0 / 3.0);
}

Test(microbatch, kk_large_and_scratch_reuse) {
    rng_state = 5;
    uint32_t n = 20000;
    double *w = malloc(n * sizeof *w);
    uint16_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double *gw = malloc(4096 * sizeof *gw);
    for (uint32_t i = 0; i < n; i++) {
        double s = (double)(16 + rnd() % 8192);
        w[i] = 4096.0 * s + s * s;
    }
    uint32_t Ms[] = {1, 2, 7, 64, 333, 4096};
    for (size_t t = 0; t < sizeof Ms / sizeof Ms[0]; t++) {
        cr_assert_eq(mb_partition_kk(a, w, n, Ms[t], S), OS_OK, "%s", os_last_error());
        check_layout(gw, a, w, n, Ms[t]);
        /* a fresh scratch gives the same answer as the warm one */
        MbScratch *f = NULL;
        cr_assert_eq(mb_scratch_create(&f), OS_OK);
        cr_assert_eq(mb_partition_kk(b, w, n, Ms[t], f), OS_OK);
        mb_scratch_destroy(f);
        cr_assert_arr_eq(a, b, n * sizeof *a, "M %u", Ms[t]);
        double tot = 0, mx = 0;
        for (uint32_t k = 0; k < Ms[t]; k++) {
            tot += gw[k];
            mx = fmax(mx, gw[k]);
        }
        /* ~5 sequences per micro-batch at M = 4096: KK lands 2.1% above the mean there */
        cr_assert_leq(mx, (Ms[t] <= 333 ? 1.005 : 1.05) * tot / Ms[t] + 1e-9 * tot, "M %u: max %g vs mean %g", Ms[t],
                      mx, tot / Ms[t]);
    }
    free(w);
    free(a);
    free(b);
    free(gw);
}

/* ---- drawn order --------------------------------------------------------------------------- */

Test(microbatch, fixed_by_hand) {
    uint16_t mb[10];
    cr_assert_eq(mb_partition_fixed(mb, 10, 3), 4u);
    uint16_t want[10] = {0, 0, 0, 1, 1, 1, 2, 2, 2, 3};
    cr_assert_arr_eq(mb, want, sizeof want);
    cr_assert_eq(mb_partition_fixed(mb, 10, 0), 1u);
    for (int i = 0; i < 10; i++) cr_assert_eq(mb[i], 0);
    cr_assert_eq(mb_partition_fixed(mb, 0, 3), 1u);
    cr_assert_eq(mb_partition_fixed(mb, 6, 6), 1u);
    cr_assert_eq(mb_partition_fixed(mb, 6, 100), 1u);
    uint32_t n = 2 * MB_MAX + 5;
    uint16_t *big = malloc(n * sizeof *big);
    cr_assert_eq(mb_partition_fixed(big, n, 1), MB_MAX);
    for (uint32_t i = 0; i < n; i++) cr_assert_eq(big[i], i < MB_MAX ? i : MB_MAX - 1, "sequence %u", i);
    free(big);
    uint32_t tok[6] = {4, 4, 4, 12, 1, 1}; /* budget 10: {4,4} {4} {12} {1,1} */
    uint16_t want_b[6] = {0, 0, 1, 2, 3, 3};
    cr_assert_eq(mb_partition_drawn(mb, tok, 6, 0, 10), 4u);
    cr_assert_arr_eq(mb, want_b, sizeof want_b);
    cr_assert_eq(mb_partition_drawn(mb, tok, 6, 1, 10), 6u); /* one per micro-batch */
    for (int i = 0; i < 6; i++) cr_assert_eq(mb[i], i);
    cr_assert_eq(mb_partition_drawn(mb, tok, 6, 2, 10), 4u);
    cr_assert_arr_eq(mb, want_b, sizeof want_b);
}

/* replay.c's pack_microbatches (before micro-batch policies), copied as the pinned reference:
 * all ranks in one pass over the examples in index order. Returns the step's count. */
static uint32_t pack_ref(uint16_t *ex_mb, const uint32_t *rank, const uint32_t *tokens, uint32_t N, uint32_t D,
                         uint32_t mb, uint64_t budget) {
    uint32_t *next = calloc(D, sizeof *next), *cnt = calloc(D, sizeof *cnt), MB = 1;
    uint64_t *tok = calloc(D, sizeof *tok);
    if (mb == 0 && budget == 0) {
        memset(ex_mb, 0, N * sizeof *ex_mb);
        goto done;
    }
    for (uint32_t i = 0; i < N; i++) {
        uint32_t r = rank[i];
        uint64_t t = tokens[i];
        int full = cnt[r] > 0 && ((mb && cnt[r] >= mb) || (budget && tok[r] + t > budget));
        if (full && next[r] + 1 < 4096) next[r]++, cnt[r] = 0, tok[r] = 0;
        ex_mb[i] = (uint16_t)next[r];
        cnt[r]++;
        tok[r] += t;
        if (next[r] + 1 > MB) MB = next[r] + 1;
    }
done:
    free(next);
    free(cnt);
    free(tok);
    return MB;
}

Test(microbatch, drawn_matches_replay_rule) {
    rng_state = 3;
    uint32_t Nmax = 20000;
    uint32_t *rank = malloc(Nmax * sizeof *rank), *tok = malloc(Nmax * sizeof *tok), *idx = malloc(Nmax * sizeof *idx),
             *sub = malloc(Nmax * sizeof *sub);
    uint16_t *want = malloc(Nmax * sizeof *want), *got = malloc(Nmax * sizeof *got), *part = malloc(Nmax * sizeof *part);
    for (int rep = 0; rep < 60; rep++) {
        uint32_t D = 1 + (uint32_t)(rnd() % 8), N = rep == 59 ? Nmax : (uint32_t)(rnd() % 400);
        uint32_t mb = (uint32_t)(rnd() % 6);
        uint64_t budget = rep % 3 == 0 ? 0 : 1 + rnd() % 5000;
        if (rep == 59) mb = 1, budget = 0, D = 2; /* past the cap of 4096 per rank */
        for (uint32_t i = 0; i < N; i++) {
            rank[i] = (uint32_t)(rnd() % D);
            tok[i] = 1 + (uint32_t)(rnd() % 3000);
        }
        uint32_t MB = pack_ref(want, rank, tok, N, D, mb, budget), got_mb = 1;
        for (uint32_t r = 0; r < D; r++) { /* gather rank r's examples in index order, split, scatter */
            uint32_t m = 0;
            for (uint32_t i = 0; i < N; i++)
                if (rank[i] == r) {
                    idx[m] = i;
                    sub[m++] = tok[i];
                }
            uint32_t c = mb_partition_drawn(part, sub, m, mb, budget);
            if (c > got_mb) got_mb = c;
            for (uint32_t k = 0; k < m; k++) got[idx[k]] = part[k];
            if (budget == 0) {
                uint32_t c2 = mb_partition_fixed(part, m, mb);
                cr_assert_eq(c2, c);
                for (uint32_t k = 0; k < m; k++) cr_assert_eq(part[k], got[idx[k]]);
            }
        }
        cr_assert_arr_eq(got, want, N * sizeof *got, "rep %d: D %u N %u mb %u budget %llu", rep, D, N, mb,
                         (unsigned long long)budget);
        if (mb || budget) cr_assert_eq(got_mb, MB, "rep %d", rep);
    }
    free(rank);
    free(tok);
    free(idx);
    free(sub);
    free(want);
    free(got);
    free(part);
}
