/* test_partition.c — partition.h: hand-computed cases, invariants, and each fast algorithm
 * against its exhaustive twin (LPT/KK vs part_brute, Hungarian vs part_assign_brute). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/balance/partition.h"
#include "base/status.h"

static PartScratch *S;

static void setup(void) {
    os_clear_error();
    cr_assert_eq(part_scratch_create(&S), OS_OK);
}
static void teardown(void) { part_scratch_destroy(S); }

TestSuite(partition, .init = setup, .fini = teardown);

/* Deterministic generator for the random cases (splitmix64). */
static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rndu(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* Bins valid, loads recomputed, sum conserved; returns the max load. */
static double check_bins(const uint32_t *bin, const double *w, uint32_t n, uint32_t D) {
    double *load = calloc(D, sizeof *load);
    double total = 0.0, sum = 0.0, mx = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_lt(bin[i], D, "unit %u in bin %u of %u", i, bin[i], D);
        load[bin[i]] += w[i];
        total += w[i];
    }
    for (uint32_t b = 0; b < D; b++) {
        sum += load[b];
        mx = load[b] > mx ? load[b] : mx;
    }
    cr_assert_float_eq(sum, total, 1e-9 * (1.0 + total));
    free(load);
    return mx;
}

static const double CLASSIC[5] = {8, 7, 6, 5, 4}; /* sum 30, optimum 15 = {8,7} {6,5,4} */

Test(partition, lpt_classic_by_hand) {
    /* 8->b0, 7->b1, 6->b1 (7<8), 5->b0 (8<13), 4->b0 (13=13, lower bin): {8,5,4}=17, {7,6}=13 */
    uint32_t bin[5];
    double mx;
    cr_assert_eq(part_lpt(bin, &mx, CLASSIC, 5, 2, NULL, NULL, S), OS_OK);
    uint32_t want[5] = {0, 1, 1, 0, 0};
    cr_assert_arr_eq(bin, want, sizeof want);
    cr_assert_float_eq(mx, 17.0, 1e-12);
}

Test(partition, kk_classic_by_hand) {
    /* Differencing: {8,0}+{7,0} -> {8,7} (spread 1); {6,0}+{5,0} -> {6,5} (1);
     * {4,0} (spread 4) + {8,7} (spread 1, older) -> {4+7, 0+8} = {11,8} (3);
     * {11,8} + {6,5} -> {11+5, 8+6} = {16,14}. So KK = 16: better than LPT's 17, above 15. */
    uint32_t bin[5];
    double mx;
    cr_assert_eq(part_kk(bin, &mx, CLASSIC, 5, 2, S), OS_OK);
    cr_assert_float_eq(mx, 16.0, 1e-12);
    cr_assert_float_eq(check_bins(bin, CLASSIC, 5, 2), 16.0, 1e-12);
    /* 16 = {7,4,5} (units 1, 4, 3), 14 = {8,6} (units 0, 2). */
    cr_assert_eq(bin[1], bin[4]);
    cr_assert_eq(bin[1], bin[3]);
    cr_assert_eq(bin[0], bin[2]);
    cr_assert_neq(bin[0], bin[1]);
}

Test(partition, brute_classic_by_hand) {
    uint32_t bin[5];
    double mx;
    cr_assert_eq(part_brute(bin, &mx, CLASSIC, 5, 2), OS_OK);
    cr_assert_float_eq(mx, 15.0, 1e-12);
    cr_assert_eq(bin[0], bin[1]); /* {8,7} together, {6,5,4} together */
    cr_assert_eq(bin[2], bin[3]);
    cr_assert_eq(bin[2], bin[4]);
    double w2[5] = {3, 3, 2, 2, 2}; /* LPT gives 7 ({3,2,2} {3,2}); optimum {3,3} {2,2,2} = 6 */
    cr_assert_eq(part_brute(bin, &mx, w2, 5, 2), OS_OK);
    cr_assert_float_eq(mx, 6.0, 1e-12);
    cr_assert_eq(part_lpt(bin, &mx, w2, 5, 2, NULL, NULL, S), OS_OK);
    cr_assert_float_eq(mx, 7.0, 1e-12);
}

Test(partition, sorted_rr_by_hand) {
    /* sorted 8,7,6,5,4 dealt b0,b1,b0,b1,b0: {8,6,4}=18, {7,5}=12 */
    uint32_t bin[5];
    double mx;
    double w[5] = {4, 8, 5, 7, 6};
    cr_assert_eq(part_sorted_rr(bin, &mx, w, 5, 2, S), OS_OK);
    uint32_t want[5] = {0, 0, 1, 1, 0};
    cr_assert_arr_eq(bin, want, sizeof want);
    cr_assert_float_eq(mx, 18.0, 1e-12);
}

Test(partition, padded_by_hand) {
    /* lens 10, 9 open bins 0, 1; 3: bids 2*10=20 vs 2*9=18 -> b1 (18); 2: 20 vs 3*9=27 -> b0 (20) */
    uint32_t len[4] = {3, 10, 2, 9}, bin[4];
    double mx;
    cr_assert_eq(part_padded(bin, &mx, len, 4, 2, S), OS_OK);
    uint32_t want[4] = {1, 0, 0, 1};
    cr_assert_arr_eq(bin, want, sizeof want);
    cr_assert_float_eq(mx, 20.0, 1e-12);
}

Test(partition, padded_never_below_bound_random) {
    rng_state = 7;
    for (int t = 0; t < 200; t++) {
        uint32_t n = 1 + rnd() % 40, D = 1 + rnd() % 6, len[40], bin[40];
        uint32_t mxl = 0;
        for (uint32_t i = 0; i < n; i++) {
            len[i] = (uint32_t)(rnd() % 1000);
            mxl = len[i] > mxl ? len[i] : mxl;
        }
        double mx;
        cr_assert_eq(part_padded(bin, &mx, len, n, D, S), OS_OK);
        uint32_t cnt[6] = {0}, m[6] = {0};
        for (uint32_t i = 0; i < n; i++) {
            cr_assert_lt(bin[i], D);
            cnt[bin[i]]++;
            m[bin[i]] = len[i] > m[bin[i]] ? len[i] : m[bin[i]];
        }
        double want = 0.0;
        for (uint32_t b = 0; b < D; b++) want = fmax(want, (double)cnt[b] * m[b]);
        cr_assert_float_eq(mx, want, 1e-9);
        /* some bin holds the longest unit and at least ceil(n / D) units somewhere */
        cr_assert_geq(mx, (double)mxl);
    }
}

Test(partition, lpt_and_kk_vs_brute_random_small) {
    rng_state = 42;
    for (int t = 0; t < 400; t++) {
        uint32_t n = 1 + rnd() % 10, D = 2 + rnd() % 3, bl[10], bk[10], bb[10];
        double w[10], ml, mk, mb;
        for (uint32_t i = 0; i < n; i++) w[i] = (t % 2) ? (double)(1 + rnd() % 20) : 0.1 + rndu();
        cr_assert_eq(part_lpt(bl, &ml, w, n, D, NULL, NULL, S), OS_OK);
        cr_assert_eq(part_kk(bk, &mk, w, n, D, S), OS_OK);
        cr_assert_eq(part_brute(bb, &mb, w, n, D), OS_OK);
        double lb = part_lower_bound(w, n, D), eps = 1e-9;
        cr_assert_float_eq(check_bins(bl, w, n, D), ml, eps);
        cr_assert_float_eq(check_bins(bk, w, n, D), mk, eps);
        cr_assert_float_eq(check_bins(bb, w, n, D), mb, eps);
        cr_assert_geq(mb, lb - eps);
        cr_assert_geq(ml, mb - eps, "LPT %g below the optimum %g", ml, mb);
        cr_assert_geq(mk, mb - eps, "KK %g below the optimum %g", mk, mb);
        /* Graham's bound for LPT: <= (4/3 - 1/(3D)) OPT */
        cr_assert_leq(ml, (4.0 / 3.0 - 1.0 / (3.0 * D)) * mb + eps, "LPT %g vs OPT %g, D %u", ml, mb, D);
    }
}

Test(partition, large_invariants_and_determinism) {
    rng_state = 3;
    uint32_t n = 20000, D = 512;
    double *w = malloc(n * sizeof *w);
    uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    for (uint32_t i = 0; i < n; i++) {
        double len = 64 + (double)(rnd() % 4000);
        w[i] = 1e-6 * len + 1e-10 * len * len; /* a*len + c*len^2 */
    }
    double lb = part_lower_bound(w, n, D), mx = 0, mx2 = 0, mxw = 0;
    for (uint32_t i = 0; i < n; i++) mxw = fmax(mxw, w[i]);
    cr_assert_eq(part_lpt(a, &mx, w, n, D, NULL, NULL, S), OS_OK);
    cr_assert_float_eq(check_bins(a, w, n, D), mx, 1e-9);
    cr_assert_leq(mx, lb + mxw + 1e-12); /* LPT: max <= mean + largest */
    cr_assert_eq(part_lpt(b, &mx2, w, n, D, NULL, NULL, S), OS_OK);
    cr_assert_arr_eq(a, b, n * sizeof *a);
    cr_assert_eq(part_kk(a, &mx, w, n, D, S), OS_OK);
    cr_assert_float_eq(check_bins(a, w, n, D), mx, 1e-9);
    cr_assert_geq(mx, lb - 1e-12);
    cr_assert_leq(mx, lb + mxw + 1e-12);
    cr_assert_eq(part_kk(b, &mx2, w, n, D, S), OS_OK);
    cr_assert_arr_eq(a, b, n * sizeof *a);
    cr_assert_eq(part_sorted_rr(a, &mx, w, n, D, S), OS_OK);
    cr_assert_float_eq(check_bins(a, w, n, D), mx, 1e-9);
    free(w);
    free(a);
    free(b);
}

Test(partition, kk_more_bins_than_units) {
    double w[3] = {5, 1, 3};
    uint32_t bin[3];
    double mx;
    cr_assert_eq(part_kk(bin, &mx, w, 3, 5, S), OS_OK);
    cr_assert_float_eq(mx, 5.0, 1e-12);
    cr_assert_neq(bin[0], bin[1]);
    cr_assert_neq(bin[0], bin[2]);
    cr_assert_neq(bin[1], bin[2]);
}

Test(partition, lpt_capacity_redirects) {
    /* 10 -> b0 (size 1); 1 -> b1 (size 5); next 1: least loaded b1 is full (5+5 > 6), b0 fits */
    double w[3] = {10, 1, 1};
    uint64_t size[3] = {1, 5, 5}, cap[2] = {6, 6};
    uint32_t bin[3];
    double mx;
    cr_assert_eq(part_lpt(bin, &mx, w, 3, 2, size, cap, S), OS_OK);
    uint32_t want[3] = {0, 1, 0};
    cr_assert_arr_eq(bin, want, sizeof want);
    cr_assert_float_eq(mx, 11.0, 1e-12);
}

Test(partition, lpt_capacity_impossible_names_unit) {
    /* 5 -> b0, 4 -> b1, then 3 fits neither (5+3 > 6, 4+3 > 6) */
    double w[3] = {5, 4, 3};
    uint64_t size[3] = {5, 4, 3}, cap[2] = {6, 6};
    uint32_t bin[3];
    double mx;
    cr_assert_eq(part_lpt(bin, &mx, w, 3, 2, size, cap, S), OS_ERR_RANGE);
    cr_assert_eq(part_last_fail_unit(S), 2u);
    cr_assert(strstr(os_last_error(), "unit 2") != NULL, "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "capacity 6") != NULL, "%s", os_last_error());
}

Test(partition, bad_input_rejected) {
    double w[2] = {1, -1};
    uint32_t bin[2];
    double mx;
    cr_assert_eq(part_lpt(bin, &mx, w, 2, 2, NULL, NULL, S), OS_ERR_ARG);
    os_clear_error();
    cr_assert_eq(part_lpt(bin, &mx, w, 1, 0, NULL, NULL, S), OS_ERR_ARG);
    os_clear_error();
    double big[17] = {0};
    uint32_t b17[17];
    cr_assert_eq(part_brute(b17, &mx, big, 17, 2), OS_ERR_RANGE);
}

Test(partition, hungarian_by_hand) {
    /* rows 0..2: best 0->1 (1), 1->0 (2), 2->2 (2) = 5 */
    double c[9] = {4, 1, 3, 2, 0, 5, 3, 2, 2};
    uint32_t perm[3];
    double tot;
    cr_assert_eq(part_hungarian(perm, &tot, c, 3, S), OS_OK);
    uint32_t want[3] = {1, 0, 2};
    cr_assert_arr_eq(perm, want, sizeof want);
    cr_assert_float_eq(tot, 5.0, 1e-12);
}

Test(partition, hungarian_vs_brute_random) {
    rng_state = 11;
    for (int t = 0; t < 300; t++) {
        uint32_t n = 1 + rnd() % 8, p1[8], p2[8];
        double c[64], t1, t2;
        for (uint32_t i = 0; i < n * n; i++) c[i] = (t % 3 == 0) ? (double)(rnd() % 5) : rndu() * 100 - 30;
        cr_assert_eq(part_hungarian(p1, &t1, c, n, S), OS_OK);
        cr_assert_eq(part_assign_brute(p2, &t2, c, n), OS_OK);
        cr_assert_float_eq(t1, t2, 1e-9, "n %u: hungarian %g brute %g", n, t1, t2);
        unsigned seen = 0;
        for (uint32_t r = 0; r < n; r++) {
            cr_assert_lt(p1[r], n);
            seen |= 1u << p1[r];
        }
        cr_assert_eq(seen, (1u << n) - 1, "not a permutation");
    }
}

Test(partition, hungarian_large_beats_identity) {
    rng_state = 5;
    uint32_t n = 150;
    double *c = malloc((size_t)n * n * sizeof *c), tot, id = 0.0;
    uint32_t *p = malloc(n * sizeof *p);
    for (uint32_t i = 0; i < n * n; i++) c[i] = rndu();
    for (uint32_t i = 0; i < n; i++) id += c[(size_t)i * n + i];
    cr_assert_eq(part_hungarian(p, &tot, c, n, S), OS_OK);
    cr_assert_leq(tot, id);
    /* no single swap of two rows' columns improves an optimum */
    for (uint32_t a = 0; a < n; a += 7)
        for (uint32_t b = a + 1; b < n; b += 5) {
            double now = c[(size_t)a * n + p[a]] + c[(size_t)b * n + p[b]];
            double sw = c[(size_t)a * n + p[b]] + c[(size_t)b * n + p[a]];
            cr_assert_geq(sw, now - 1e-9);
        }
    free(c);
    free(p);
}

/* ---- the shared sort and LPT against naive twins --------------------------------------------- */

#include "sim/balance/part_internal.h"

static void check_sorted(PartScratch *s, const uint64_t *key, uint32_t n) {
    unsigned char *seen = calloc(n, 1);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t u = s->idx[i];
        cr_assert_lt(u, n);
        cr_assert_eq(seen[u], 0);
        seen[u] = 1;
        cr_assert_eq(s->key[i], key[u], "sorted keys travel with their units");
        if (i) {
            uint32_t v = s->idx[i - 1];
            cr_assert(key[v] < key[u] || (key[v] == key[u] && v < u), "order at %u", i);
        }
    }
    free(seen);
}

Test(partition, radix_sort_all_key_shapes) {
    rng_state = 17;
    uint32_t n = 5000;
    uint64_t *key = malloc(n * sizeof *key);
    for (int shape = 0; shape < 5; shape++) {
        for (uint32_t i = 0; i < n; i++) {
            switch (shape) {
            case 0: key[i] = rnd(); break;                      /* all 64 bits vary */
            case 1: key[i] = rnd() % 7; break;                  /* few values, long ties */
            case 2: key[i] = ~(uint64_t)(rnd() % 100000); break; /* lengths, high bits constant */
            case 3: { /* doubles 1 + k 2^-40: equal on the top 33 varying bits -> comparison runs */
                double d = 1.0 + (double)(rnd() % 4000) * ldexp(1.0, -40);
                memcpy(&key[i], &d, sizeof d);
                break;
            }
            default: key[i] = 42; break; /* all equal */
            }
        }
        cr_assert_eq(part_sort_u64(S, key, n), OS_OK);
        check_sorted(S, key, n);
    }
    free(key);
}

/* Naive LPT: units by (weight desc, index), each to the least-loaded bin by linear scan. */
static double lpt_naive(uint32_t *bin, const double *w, uint32_t n, uint32_t D) {
    uint32_t *ord = malloc(n * sizeof *ord);
    double *load = calloc(D, sizeof *load), mx = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = i;
        while (j > 0 && w[ord[j - 1]] < w[i]) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = i;
    }
    for (uint32_t k = 0; k < n; k++) {
        uint32_t u = ord[k], b = 0;
        for (uint32_t c = 1; c < D; c++)
            if (load[c] < load[b]) b = c;
        bin[u] = b;
        load[b] += w[u];
    }
    for (uint32_t b = 0; b < D; b++) mx = fmax(mx, load[b]);
    free(ord);
    free(load);
    return mx;
}

Test(partition, lpt_matches_naive_twin) {
    /* Integer weights: loads are exact, so the fast path must make the very same choices. */
    rng_state = 23;
    uint32_t n = 3000, *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double *w = malloc(n * sizeof *w);
    uint32_t Ds[] = {1, 2, 7, 37, 64, 1000};
    for (size_t t = 0; t < sizeof Ds / sizeof Ds[0]; t++) {
        for (uint32_t i = 0; i < n; i++) w[i] = (double)(1 + rnd() % 500);
        double m1, m2 = lpt_naive(b, w, n, Ds[t]);
        cr_assert_eq(part_lpt(a, &m1, w, n, Ds[t], NULL, NULL, S), OS_OK);
        cr_assert_arr_eq(a, b, n * sizeof *a, "D = %u", Ds[t]);
        cr_assert_float_eq(m1, m2, 1e-9);
    }
    free(a);
    free(b);
    free(w);
}

Test(partition, kk_many_shapes_valid) {
    /* Many (n, D) mixes: partial and full partitions, overlapping merges, pool compaction. */
    rng_state = 29;
    uint32_t bin[600];
    double w[600];
    for (int t = 0; t < 300; t++) {
        uint32_t n = 1 + (uint32_t)(rnd() % 600), D = 1 + (uint32_t)(rnd() % 80);
        for (uint32_t i = 0; i < n; i++) w[i] = (t % 3 == 0) ? (double)(rnd() % 4) : 1e-3 * (double)(1 + rnd() % 100000);
        double mx;
        cr_assert_eq(part_kk(bin, &mx, w, n, D, S), OS_OK);
        cr_assert_float_eq(check_bins(bin, w, n, D), mx, 1e-9);
        cr_assert_geq(mx, part_lower_bound(w, n, D) - 1e-9);
    }
}

Test(partition, kk_matches_dense_twin) {
    /* part_kk's sparse, in-place merges against the dense twin: the same bins, exactly. Shapes
     * cover partial partitions (n < D), absorbs with long fronts and backs (the gap path),
     * zero weights and ties, and enough merges to compact the pool. */
    rng_state = 71;
    uint32_t *a = malloc(3000 * sizeof *a), *b = malloc(3000 * sizeof *b);
    double *w = malloc(3000 * sizeof *w);
    for (int t = 0; t < 60; t++) {
        uint32_t n = 1 + (uint32_t)(rnd() % (t < 50 ? 400 : 3000)), D = 1 + (uint32_t)(rnd() % (t < 50 ? 40 : 300));
        for (uint32_t i = 0; i < n; i++) {
            uint32_t len = 64 + (uint32_t)(rnd() % 4000);
            w[i] = t % 4 == 0 ? (double)(rnd() % 3) : 1e-6 * len + 2e-10 * (double)len * len;
        }
        double m1, m2;
        cr_assert_eq(part_kk(a, &m1, w, n, D, S), OS_OK);
        cr_assert_eq(part_kk_ref(b, &m2, w, n, D), OS_OK);
        cr_assert_arr_eq(a, b, n * sizeof *a, "n %u D %u: bins differ from the twin", n, D);
        cr_assert_eq(m1, m2);
    }
    free(a);
    free(b);
    free(w);
}
