/* partition.c — scratch, the shared radix sort, LPT (with capacities), sorted round-robin,
 * the padded-batch greedy and the lower bound. KK, Hungarian and the exhaustive twins live in
 * kk.c, hungarian.c and brute.c. See partition.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/balance/part_internal.h"

OsStatus part_scratch_create(PartScratch **out) {
    OsStatus st = OS_OK;
    PartScratch *s = calloc(1, sizeof *s);
    ALLOC_CHECK(s);
    *out = s;
fail:
    return st;
}

void part_scratch_destroy(PartScratch *s) {
    if (!s) return;
    free(s->idx);
    free(s->idx2);
    free(s->key);
    free(s->key2);
    free(s->pairs);
    free(s->lt_k);
    free(s->heap);
    free(s->pos);
    free(s->cnt);
    free(s->load);
    free(s->used);
    free(s->st);
    free(s->kheap);
    free(s->next);
    free(s->pool[0]);
    free(s->pool[1]);
    free(s->ktmp);
    free(s->hu);
    free(s->hv);
    free(s->hmin);
    free(s->hp);
    free(s->hway);
    free(s->hused);
    free(s);
}

uint32_t part_last_fail_unit(const PartScratch *s) { return s->fail_unit; }

/* ---- sorting -------------------------------------------------------------------------- */

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)
#define RADIX_PASSES 3 /* 33 bits: below them, ties are finished by comparison */
#define RUN_INSERTION 64

static int pair_cmp(const void *a, const void *b) {
    const PartPair *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sort idx[lo, hi) (with key[]) by (key, idx): stable within a run the radix left tied. */
static OsStatus finish_run(PartScratch *s, uint32_t lo, uint32_t hi) {
    OsStatus st = OS_OK;
    uint64_t *k = s->key;
    uint32_t *ix = s->idx;
    if (hi - lo <= RUN_INSERTION) {
        for (uint32_t i = lo + 1; i < hi; i++) {
            uint64_t kk = k[i];
            uint32_t u = ix[i], j = i;
            while (j > lo && k[j - 1] > kk) {
                k[j] = k[j - 1];
                ix[j] = ix[j - 1];
                j--;
            }
            k[j] = kk;
            ix[j] = u;
        }
        goto fail;
    }
    OS_CHECK(PART_GROW(s->pairs, s->pairs_cap, hi - lo));
    for (uint32_t i = lo; i < hi; i++) s->pairs[i - lo] = (PartPair){k[i], ix[i]};
    qsort(s->pairs, hi - lo, sizeof *s->pairs, pair_cmp);
    for (uint32_t i = lo; i < hi; i++) {
        k[i] = s->pairs[i - lo].key;
        ix[i] = s->pairs[i - lo].idx;
    }
fail:
    return st;
}

OsStatus part_sort_u64(PartScratch *s, const uint64_t *key, uint32_t n) {
    OsStatus st = OS_OK;
    OS_CHECK(PART_GROW(s->idx, s->idx_cap, n));
    OS_CHECK(PART_GROW(s->idx2, s->idx2_cap, n));
    OS_CHECK(PART_GROW(s->key2, s->key2_cap, n));
    if (key != s->key) {
        OS_CHECK(PART_GROW(s->key, s->key_cap, n));
        memcpy(s->key, key, (size_t)n * sizeof *key);
    }
    for (uint32_t i = 0; i < n; i++) s->idx[i] = i;
    if (n < 2) goto fail;
    uint64_t diff = 0;
    for (uint32_t i = 1; i < n; i++) diff |= s->key[i] ^ s->key[0];
    if (!diff) goto fail; /* all equal: index order is the answer */
    int hb = 63 - __builtin_clzll(diff);       /* highest bit that varies */
    int lo = hb + 1 - RADIX_PASSES * RADIX_BITS; /* lowest bit the radix looks at */
    if (lo < 0) lo = 0;
    if (n < RUN_INSERTION) {
        OS_CHECK(finish_run(s, 0, n));
        goto fail;
    }
    /* LSD radix over bits [lo, hb]: all histograms in one pass (counts do not depend on order). */
    static _Thread_local uint32_t count[RADIX_PASSES][RADIX_SIZE];
    memset(count, 0, sizeof count);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t k = s->key[i] >> lo;
        for (int p = 0; p < RADIX_PASSES; p++) count[p][(k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1)]++;
    }
    uint64_t *ka = s->key, *kb = s->key2;
    uint32_t *ia = s->idx, *ib = s->idx2;
    for (int p = 0; p < RADIX_PASSES; p++) {
        int shift = lo + p * RADIX_BITS;
        if (count[p][(ka[0] >> shift) & (RADIX_SIZE - 1)] == n) continue; /* digit constant */
        uint32_t sum = 0;
        for (uint32_t d = 0; d < RADIX_SIZE; d++) {
            uint32_t c = count[p][d];
            count[p][d] = sum;
            sum += c;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t d = (uint32_t)((ka[i] >> shift) & (RADIX_SIZE - 1));
            uint32_t o = count[p][d]++;
            kb[o] = ka[i];
            ib[o] = ia[i];
        }
        uint64_t *kt = ka;
        ka = kb;
        kb = kt;
        uint32_t *it = ia;
        ia = ib;
        ib = it;
    }
    if (ia != s->idx) { /* result sits in the second buffers: swap them with the first */
        s->idx2 = s->idx;
        s->idx = ia;
        size_t c = s->idx_cap;
        s->idx_cap = s->idx2_cap;
        s->idx2_cap = c;
        s->key2 = s->key;
        s->key = ka;
        c = s->key_cap;
        s->key_cap = s->key2_cap;
        s->key2_cap = c;
    }
    if (lo > 0) /* bits below lo: finish runs that tie on [lo, hb] */
        for (uint32_t i = 0; i < n;) {
            uint32_t j = i + 1;
            uint64_t h = s->key[i] >> lo;
            while (j < n && (s->key[j] >> lo) == h) j++;
            if (j - i > 1) OS_CHECK(finish_run(s, i, j));
            i = j;
        }
fail:
    return st;
}

OsStatus part_sort_desc(PartScratch *s, const double *w, uint32_t n) {
    OsStatus st = OS_OK;
    OS_CHECK(PART_GROW(s->key, s->key_cap, n));
    for (uint32_t i = 0; i < n; i++) {
        if (!(w[i] >= 0.0) || !isfinite(w[i])) {
            char f[40];
            snprintf(f, sizeof f, "unit %u", i);
            OS_FAIL(OS_ERR_ARG, "partition", f, "unit costs must be finite and >= 0",
                    "weight %g is not a finite non-negative number", w[i]);
        }
        uint64_t b = 0;
        double x = w[i] + 0.0; /* -0.0 -> +0.0 */
        memcpy(&b, &x, sizeof b);
        /* Non-negative IEEE doubles order like their bit patterns; complementing turns the
         * ascending radix sort into descending weight, and stability keeps lower index first. */
        s->key[i] = ~b;
    }
    OS_CHECK(part_sort_u64(s, s->key, n));
fail:
    return st;
}

OsStatus part_bins(PartScratch *s, uint32_t D) {
    OsStatus st = OS_OK;
    OS_CHECK(PART_GROW(s->lt_k, s->lt_k_cap, D));
    OS_CHECK(PART_GROW(s->heap, s->heap_cap, D));
    OS_CHECK(PART_GROW(s->pos, s->pos_cap, D));
    OS_CHECK(PART_GROW(s->cnt, s->cnt_cap, D));
    OS_CHECK(PART_GROW(s->load, s->load_cap, D));
    OS_CHECK(PART_GROW(s->used, s->used_cap, D));
fail:
    return st;
}

double part_max_load(const uint32_t *bin, const double *w, uint32_t n, uint32_t D, double *load) {
    for (uint32_t b = 0; b < D; b++) load[b] = 0.0;
    for (uint32_t i = 0; i < n; i++) load[bin[i]] += w[i];
    double mx = 0.0;
    for (uint32_t b = 0; b < D; b++) mx = load[b] > mx ? load[b] : mx;
    return mx;
}

double part_lower_bound(const double *w, uint32_t n, uint32_t D) {
    double sum = 0.0, mx = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        sum += w[i];
        mx = w[i] > mx ? w[i] : mx;
    }
    double avg = D ? sum / D : sum;
    return avg > mx ? avg : mx;
}

/* ---- the least-loaded bin: a loser (tournament) tree ------------------------------------
 * LPT and the padded greedy only ever raise the key of the current minimum, which is what a
 * loser tree does best: the update replays the matches on the fixed path leaf -> root, and
 * the addresses do not depend on the comparisons (a heap's sift-down picks the next address
 * from each comparison: a dependent load per level). The implicit layout works for any D:
 * internal nodes 1 .. D-1, leaf of bin b at D + b, parent p / 2.
 * One entry is one uint64: the load's IEEE bits (loads are >= 0, so integer order is numeric
 * order) with the low ceil(log2 D) mantissa bits replaced by the bin. A match is then one
 * integer min/max, and ties go to the lower bin as documented; the price is that loads
 * within 2^-(52 - log2 D) of each other (1e-12 relative at D = 2560) count as tied. The
 * loads themselves are summed exactly in load[]. */

typedef struct {
    uint64_t mask; /* low bits holding the bin */
} LtCode;

static inline LtCode lt_code(uint32_t D) {
    uint32_t bits = D > 1 ? 32u - (uint32_t)__builtin_clz(D - 1) : 0u;
    return (LtCode){bits ? (((uint64_t)1 << bits) - 1) : 0};
}

static inline uint64_t lt_key(LtCode c, double load, uint32_t b) {
    uint64_t x;
    load += 0.0; /* -0.0 -> +0.0 */
    memcpy(&x, &load, sizeof x);
    return (x & ~c.mask) | b;
}

static inline uint32_t lt_winner(LtCode c, const uint64_t *tk) { return (uint32_t)(tk[0] & c.mask); }

static inline uint32_t bin_before(double ka, uint32_t ba, double kb, uint32_t bb) {
    return (uint32_t)(ka < kb) | ((uint32_t)(ka == kb) & (uint32_t)(ba < bb));
}

/* Build over key[0 .. D) in O(D); win: [D] scratch. */
static void lt_build(uint64_t *tk, LtCode c, const double *key, uint32_t D, uint32_t *win) {
    if (D == 1) {
        tk[0] = lt_key(c, key[0], 0);
        return;
    }
    for (uint32_t i = D - 1; i >= 1; i--) {
        uint32_t l = 2 * i, r = 2 * i + 1;
        uint32_t x = l >= D ? l - D : win[l], y = r >= D ? r - D : win[r];
        uint64_t kx = lt_key(c, key[x], x), ky = lt_key(c, key[y], y);
        win[i] = kx < ky ? x : y;
        tk[i] = kx < ky ? ky : kx;
    }
    tk[0] = lt_key(c, key[win[1]], win[1]);
}

/* The winner (bin b) now has load kd: replay its matches up to the root. */
static inline void lt_replay(uint64_t *tk, LtCode c, uint32_t D, uint32_t b, double kd) {
    uint64_t k = lt_key(c, kd, b);
    for (uint32_t p = (D + b) >> 1; p >= 1; p >>= 1) {
        uint64_t lk = tk[p];
        tk[p] = lk < k ? k : lk; /* the larger stays as the loser */
        k = lk < k ? lk : k;
    }
    tk[0] = k;
}

/* ---- LPT ------------------------------------------------------------------------------ */

OsStatus part_lpt(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D,
                  const uint64_t *size, const uint64_t *cap, PartScratch *s) {
    OsStatus st = OS_OK;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "partition", "D", NULL, "LPT needs at least one bin");
    if (cap && !size) OS_FAIL(OS_ERR_ARG, "partition", "size", NULL, "capacities given without sizes");
    OS_CHECK(part_bins(s, D));
    OS_CHECK(part_sort_desc(s, w, n));
    double *load = s->load;
    uint64_t *used = s->used;
    for (uint32_t b = 0; b < D; b++) {
        load[b] = 0.0;
        used[b] = 0;
    }
    LtCode code = lt_code(D);
    lt_build(s->lt_k, code, load, D, s->pos);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t u = s->idx[k];
        uint32_t b = lt_winner(code, s->lt_k);
        uint64_t sz = size ? size[u] : 0;
        uint64_t wb = ~s->key[k]; /* the sorted key is the weight's bits: no gather of w[u] */
        double wu;
        memcpy(&wu, &wb, sizeof wu);
        if (cap && sz > cap[b] - used[b]) {
            /* The least-loaded bin is full for this unit: an O(D) scan for the least-loaded
             * bin that still fits, and an O(D) rebuild (a loser tree only updates its winner
             * cheaply). Only taken when capacities bind. */
            uint32_t best = UINT32_MAX;
            for (uint32_t c = 0; c < D; c++)
                if (sz <= cap[c] - used[c] && (best == UINT32_MAX || bin_before(load[c], c, load[best], best)))
                    best = c;
            if (best == UINT32_MAX) {
                char f[40];
                snprintf(f, sizeof f, "unit %u", u);
                s->fail_unit = u;
                uint64_t mx = 0;
                for (uint32_t c = 0; c < D; c++) mx = cap[c] > mx ? cap[c] : mx;
                OS_FAIL(OS_ERR_RANGE, "partition", f, "raise the per-rank capacity or split the unit",
                        "size %llu fits no bin (capacity %llu per bin)", (unsigned long long)sz,
                        (unsigned long long)mx);
            }
            bin[u] = best;
            load[best] += wu;
            used[best] += sz;
            lt_build(s->lt_k, code, load, D, s->pos);
            continue;
        }
        bin[u] = b;
        load[b] += wu;
        used[b] += sz;
        lt_replay(s->lt_k, code, D, b, load[b]);
    }
    double mx = 0.0;
    for (uint32_t b = 0; b < D; b++) mx = load[b] > mx ? load[b] : mx;
    *max_load = mx;
fail:
    return st;
}

/* ---- sorted round-robin ---------------------------------------------------------------- */

OsStatus part_sorted_rr(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D,
                        PartScratch *s) {
    OsStatus st = OS_OK;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "partition", "D", NULL, "round-robin needs at least one bin");
    OS_CHECK(part_bins(s, D));
    OS_CHECK(part_sort_desc(s, w, n));
    for (uint32_t r = 0; r < n; r++) bin[s->idx[r]] = r % D;
    *max_load = part_max_load(bin, w, n, D, s->load);
fail:
    return st;
}

/* ---- padded batches --------------------------------------------------------------------- */

/* Units go in decreasing length, so the first unit of a bin fixes its max length m and every
 * later one costs m more: a bin holding c units "bids" (c + 1) * m for the next. An empty
 * bin would cost only len <= m, so the first D units open one bin each. */
OsStatus part_padded(uint32_t *bin, double *max_load, const uint32_t *len, uint32_t n, uint32_t D,
                     PartScratch *s) {
    OsStatus st = OS_OK;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "partition", "D", NULL, "padded greedy needs at least one bin");
    OS_CHECK(part_bins(s, D));
    OS_CHECK(PART_GROW(s->key, s->key_cap, n));
    for (uint32_t i = 0; i < n; i++) s->key[i] = ~(uint64_t)len[i];
    OS_CHECK(part_sort_u64(s, s->key, n));
    uint64_t *m = s->used;  /* [D] max length in the bin */
    uint32_t *c = s->cnt;   /* [D] units in the bin */
    for (uint32_t b = 0; b < D; b++) {
        m[b] = 0;
        c[b] = 0;
    }
    uint32_t k = 0;
    for (; k < n && k < D; k++) {
        uint32_t u = s->idx[k];
        bin[u] = k;
        m[k] = len[u];
        c[k] = 1;
    }
    if (k < n) {
        double *next = s->load; /* [D] key: the bin's load after one more unit */
        for (uint32_t b = 0; b < D; b++) next[b] = 2.0 * (double)m[b];
        LtCode code = lt_code(D);
        lt_build(s->lt_k, code, next, D, s->pos);
        for (; k < n; k++) {
            uint32_t u = s->idx[k];
            uint32_t b = lt_winner(code, s->lt_k);
            bin[u] = b;
            c[b]++;
            lt_replay(s->lt_k, code, D, b, (double)(c[b] + 1) * (double)m[b]);
        }
    }
    double mx = 0.0;
    for (uint32_t b = 0; b < D; b++) {
        double l = (double)c[b] * (double)m[b];
        mx = l > mx ? l : mx;
    }
    *max_load = mx;
fail:
    return st;
}
