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
#define RADIX_PASSES 6 /* 6 x 11 >= 64 */

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
    if (n < 48) { /* insertion sort: stable, and cheaper than six histograms for tiny n */
        for (uint32_t i = 1; i < n; i++) {
            uint32_t u = s->idx[i];
            uint64_t k = s->key[u];
            uint32_t j = i;
            while (j > 0 && s->key[s->idx[j - 1]] > k) {
                s->idx[j] = s->idx[j - 1];
                j--;
            }
            s->idx[j] = u;
        }
        goto fail;
    }
    /* LSD radix: all six histograms in one pass (digit counts do not depend on order). */
    static _Thread_local uint32_t count[RADIX_PASSES][RADIX_SIZE];
    memset(count, 0, sizeof count);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t k = s->key[i];
        for (int p = 0; p < RADIX_PASSES; p++) count[p][(k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1)]++;
    }
    uint64_t *ka = s->key, *kb = s->key2;
    uint32_t *ia = s->idx, *ib = s->idx2;
    for (int p = 0; p < RADIX_PASSES; p++) {
        int shift = p * RADIX_BITS;
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

/* ---- a min-heap of bins keyed (key[b], b) ------------------------------------------------ */

static inline int bin_less(const double *key, uint32_t a, uint32_t b) {
    return key[a] < key[b] || (key[a] == key[b] && a < b);
}

/* The bin at heap position i got a larger key: move it down. */
static void heap_down(uint32_t *heap, uint32_t *pos, const double *key, uint32_t D, uint32_t i) {
    uint32_t b = heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= D) break;
        uint32_t c = l;
        if (l + 1 < D && bin_less(key, heap[l + 1], heap[l])) c = l + 1;
        if (!bin_less(key, heap[c], b)) break;
        heap[i] = heap[c];
        pos[heap[i]] = i;
        i = c;
    }
    heap[i] = b;
    pos[b] = i;
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
    /* All loads are 0, so bins in index order already form a valid heap. */
    for (uint32_t b = 0; b < D; b++) {
        load[b] = 0.0;
        used[b] = 0;
        s->heap[b] = b;
        s->pos[b] = b;
    }
    for (uint32_t k = 0; k < n; k++) {
        uint32_t u = s->idx[k];
        uint32_t b = s->heap[0];
        uint64_t sz = size ? size[u] : 0;
        if (cap && sz > cap[b] - used[b]) {
            /* The least-loaded bin is full for this unit: O(D) scan for the least-loaded bin
             * that still fits. Only taken when capacities bind. */
            uint32_t best = UINT32_MAX;
            for (uint32_t c = 0; c < D; c++)
                if (sz <= cap[c] - used[c] && (best == UINT32_MAX || bin_less(load, c, best))) best = c;
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
            b = best;
        }
        bin[u] = b;
        load[b] += w[u];
        used[b] += sz;
        heap_down(s->heap, s->pos, load, D, s->pos[b]);
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
    double *next = s->load; /* [D] heap key: load after one more unit */
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
        for (uint32_t b = 0; b < D; b++) next[b] = 2.0 * (double)m[b];
        /* Build the heap bottom-up over the keys. */
        for (uint32_t b = 0; b < D; b++) {
            s->heap[b] = b;
            s->pos[b] = b;
        }
        for (uint32_t i = D / 2; i-- > 0;) heap_down(s->heap, s->pos, next, D, i);
        for (; k < n; k++) {
            uint32_t u = s->idx[k];
            uint32_t b = s->heap[0];
            bin[u] = b;
            c[b]++;
            next[b] = (double)(c[b] + 1) * (double)m[b];
            heap_down(s->heap, s->pos, next, D, 0);
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
