/* kk.c — k-way Karmarkar-Karp largest differencing.
 * Implements: part_kk. Every unit starts as a partial partition {w, 0, ..., 0}; the two
 *   partitions with the largest spread (max - min subset sum) are merged, pairing the larger
 *   one's subsets in decreasing order with the other's in increasing order, until one is left.
 * Does not: support the equal-count constraint verl offers (no policy needs it yet).
 * Source: REFERENCE.md "Karmarkar–Karp (verl)". Memory: partitions store only their non-empty
 *   subsets (the rest are implicit zeros), so the live total is <= n subsets and two pools of
 *   2n + 16 subsets suffice (copying compaction when the current pool runs out); a merge costs
 *   O(a + b + m log m) for a, b subsets and m overlapping pairs, not O(D).
 *   The common merge is a big partition absorbing one small subset: the new subset is
 *   inserted in sorted order in place. It usually lands near the front (its sum tops a
 *   balanced partition), so the block shifts its short front part left into a gap of free
 *   slots left before it when it was last written (KK_GAP), instead of its long tail right:
 *   O(min(front, back)) moves, amortised O(1) for the usual case, where a right shift alone
 *   cost O(D) per absorb (~24 ms at D = 2560 before, bench/RESULTS.md).
 * part_kk_ref is the slow twin: the same differencing on dense D-subset arrays. */
#include <stdlib.h>
#include <string.h>

#include "sim/balance/part_internal.h"

#define KK_NONE UINT32_MAX
#define KK_GAP 512 /* free slots left before a freshly written block, at most its size */

/* Total order on subsets: larger sum first, ties by the (unique) first unit. */
static inline int sub_before(const KkSub *x, const KkSub *y) {
    return x->sum > y->sum || (x->sum == y->sum && x->head < y->head);
}

static int sub_cmp(const void *a, const void *b) {
    const KkSub *x = a, *y = b;
    return sub_before(x, y) ? -1 : sub_before(y, x) ? 1 : 0;
}

static void merge_runs(KkSub *out, const KkSub *x, uint32_t nx, const KkSub *y, uint32_t ny) {
    uint32_t i = 0, j = 0, k = 0;
    while (i < nx && j < ny) out[k++] = sub_before(&y[j], &x[i]) ? y[j++] : x[i++];
    while (i < nx) out[k++] = x[i++];
    while (j < ny) out[k++] = y[j++];
}

static inline int state_before(const KkState *st, uint32_t a, uint32_t b) {
    return st[a].spread > st[b].spread || (st[a].spread == st[b].spread && a < b);
}

static void kheap_down(uint32_t *h, uint32_t n, const KkState *st, uint32_t i) {
    uint32_t x = h[i];
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= n) break;
        uint32_t c = l;
        if (l + 1 < n && state_before(st, h[l + 1], h[l])) c = l + 1;
        if (!state_before(st, h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* Replace the top with x and restore the heap: one sift instead of a pop and a push. */
static void kheap_replace_top(uint32_t *h, uint32_t n, const KkState *st, uint32_t x) {
    h[0] = x;
    kheap_down(h, n, st, 0);
}

static uint32_t kheap_pop(uint32_t *h, uint32_t *n, const KkState *st) {
    uint32_t top = h[0];
    h[0] = h[--*n];
    if (*n) kheap_down(h, *n, st, 0);
    return top;
}

/* Copy every live partition (the heap's hn entries, b among them, plus a) into the other
 * pool: a then b last. */
static void compact(PartScratch *s, int *cur, uint32_t *used, uint32_t hn, uint32_t a, uint32_t b) {
    KkSub *dst = s->pool[!*cur], *src = s->pool[*cur];
    uint32_t o = 0;
    for (uint32_t i = 0; i < hn + 2; i++) {
        uint32_t id = i < hn ? s->kheap[i] : i == hn ? a : b;
        if (i < hn && id == b) continue;
        KkState *p = &s->st[id];
        memcpy(dst + o, src + p->off, (size_t)p->cnt * sizeof *dst);
        p->off = o;
        p->gap = 0;
        o += p->cnt;
    }
    *cur = !*cur;
    *used = o;
}

static inline KkSub join(KkSub x, KkSub y, uint32_t *next) {
    next[x.tail] = y.head;
    return (KkSub){x.sum + y.sum, x.head, y.tail};
}

OsStatus part_kk(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D,
                 PartScratch *s) {
    OsStatus st = OS_OK;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "partition", "D", NULL, "Karmarkar-Karp needs at least one bin");
    OS_CHECK(part_bins(s, D));
    for (uint32_t u = 0; u < n; u++)
        if (!(w[u] >= 0.0) || w[u] > 1e300)
            OS_FAIL(OS_ERR_ARG, "partition", "weight", "unit costs must be finite and >= 0",
                    "unit %u has weight %g", u, w[u]);
    if (D == 1 || n <= 1) {
        for (uint32_t u = 0; u < n; u++) bin[u] = 0;
        *max_load = part_max_load(bin, w, n, D, s->load);
        goto fail;
    }
    size_t pool_n = 2 * (size_t)n + 16 + KK_GAP;
    OS_CHECK(PART_GROW(s->st, s->st_cap, 2 * (size_t)n));
    OS_CHECK(PART_GROW(s->kheap, s->kheap_cap, n));
    OS_CHECK(PART_GROW(s->next, s->next_cap, n));
    OS_CHECK(PART_GROW(s->pool[0], s->pool_cap[0], pool_n));
    OS_CHECK(PART_GROW(s->pool[1], s->pool_cap[1], pool_n));
    OS_CHECK(PART_GROW(s->ktmp, s->ktmp_cap, 2 * (size_t)D));
    int cur = 0;
    for (uint32_t u = 0; u < n; u++) {
        s->pool[0][u] = (KkSub){w[u], u, u};
        s->next[u] = KK_NONE;
        s->st[u] = (KkState){u, 1, 0, w[u]}; /* D >= 2: the other subsets are empty */
        s->kheap[u] = u;
    }
    uint32_t used = n, hn = n, nid = n;
    for (uint32_t i = hn / 2; i-- > 0;) kheap_down(s->kheap, hn, s->st, i);
    while (hn > 1) {
        uint32_t a = kheap_pop(s->kheap, &hn, s->st);
        uint32_t b = s->kheap[0]; /* popped below by replacing it with the merge */
        uint32_t ca = s->st[a].cnt, cb = s->st[b].cnt;
        uint32_t cnt = ca + cb < D ? ca + cb : D;
        /* When A is the newest block in the pool (the usual case while one partition grows
         * by absorbing small ones), the result is written over A in place and A's leading
         * subsets that stay first are not even touched. */
        int at_end = s->st[a].off + ca == used;
        uint32_t gap = cnt < KK_GAP ? cnt : KK_GAP; /* for a fresh block */
        if ((size_t)(at_end ? s->st[a].off : used + gap) + cnt > pool_n) {
            compact(s, &cur, &used, hn, a, b);
            at_end = 0; /* compaction puts b after a */
            if ((size_t)used + gap + cnt > pool_n) gap = 0;
        }
        KkSub *pool = s->pool[cur];
        const KkSub *A = pool + s->st[a].off, *B = pool + s->st[b].off;
        KkSub *X = s->ktmp, *Y = s->ktmp + D;
        const KkSub *tail; /* the run that merges with A's untouched prefix */
        uint32_t nt, nA;   /* its length; the length of A's run that takes part (from p) */
        if (ca + cb <= D) {
            /* No subset of A meets a non-empty one of B: the union, kept sorted. */
            tail = B;
            nt = cb;
            nA = ca;
        } else {
            /* Position i pairs A[i] with B[D-1-i]: [0, D-cb) A alone, [D-cb, ca) both,
             * [ca, D) B alone (B[0 .. D-ca), already sorted). Sort the m joined pairs, merge
             * them with B's lone run into Y; A's lone run merges with Y below. */
            uint32_t m = ca + cb - D;
            for (uint32_t i = D - cb, k = 0; i < ca; i++, k++) X[k] = join(A[i], B[D - 1 - i], s->next);
            qsort(X, m, sizeof *X, sub_cmp);
            merge_runs(Y, X, m, B, D - ca);
            tail = Y;
            nt = cb;
            nA = D - cb;
        }
        /* p = A's leading subsets that precede tail[0]: they keep their place. */
        uint32_t lo = 0, hi = nA;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (sub_before(&tail[0], &A[mid]))
                hi = mid;
            else
                lo = mid + 1;
        }
        uint32_t p = lo;
        /* An absorb with a short front, a long back and no gap: rewrite the block once, with a
         * gap before it, so the absorbs that follow shift left. */
        if (at_end && nt == 1 && !s->st[a].gap && nA - p > p + 64 && (size_t)used + gap + cnt <= pool_n)
            at_end = 0;
        KkSub *base = at_end ? (KkSub *)A : pool + used + gap;
        uint32_t ngap = at_end ? s->st[a].gap : gap;
        if (!at_end) memcpy(base, A, (size_t)p * sizeof *base);
        if (nt == 1) { /* one subset joins (a partition absorbing a small one): insert it */
            KkSub t0 = tail[0];
            if (at_end && ngap && p < nA - p) { /* the front moves left into the gap */
                base = (KkSub *)A - 1;
                memmove(base, A, (size_t)p * sizeof *base);
                ngap--;
            } else {
                memmove(base + p + 1, A + p, (size_t)(nA - p) * sizeof *base);
            }
            base[p] = t0;
        } else {
            memcpy(X, A + p, (size_t)(nA - p) * sizeof *X);
            merge_runs(base + p, X, nA - p, tail, nt);
        }
        uint32_t off = (uint32_t)(base - pool);
        double spread = base[0].sum - (cnt == D ? base[cnt - 1].sum : 0.0);
        s->st[nid] = (KkState){off, cnt, ngap, spread};
        used = off + cnt; /* the block just written is the last one */
        kheap_replace_top(s->kheap, hn, s->st, nid);
        nid++;
    }
    const KkState *f = &s->st[s->kheap[0]];
    const KkSub *fs = s->pool[cur] + f->off;
    for (uint32_t i = 0; i < f->cnt; i++) {
        uint32_t u = fs[i].head;
        for (;;) {
            bin[u] = i;
            if (u == fs[i].tail) break;
            u = s->next[u];
        }
    }
    *max_load = part_max_load(bin, w, n, D, s->load);
fail:
    return st;
}

/* ---- slow twin ---------------------------------------------------------------------------- */

/* Dense: every partition holds all D subsets (empty ones: head KK_NONE, sorted last). */
static int ref_cmp(const void *a, const void *b) {
    const KkSub *x = a, *y = b;
    int ex = x->head == KK_NONE, ey = y->head == KK_NONE;
    if (ex != ey) return ex - ey;
    if (ex) return 0;
    return sub_before(x, y) ? -1 : sub_before(y, x) ? 1 : 0;
}

OsStatus part_kk_ref(uint32_t *bin, double *max_load, const double *w, uint32_t n, uint32_t D) {
    OsStatus st = OS_OK;
    KkSub *sub = NULL;
    uint32_t *next = NULL;
    double *spread = NULL, *load = NULL;
    unsigned char *live = NULL;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "partition", "D", NULL, "Karmarkar-Karp needs at least one bin");
    for (uint32_t u = 0; u < n; u++)
        if (!(w[u] >= 0.0) || w[u] > 1e300)
            OS_FAIL(OS_ERR_ARG, "partition", "weight", "unit costs must be finite and >= 0",
                    "unit %u has weight %g", u, w[u]);
    size_t S = 2 * (size_t)n + 1;
    sub = calloc(S * D, sizeof *sub); /* a test twin: plain allocations are fine */
    next = calloc(n + 1, sizeof *next);
    spread = calloc(S, sizeof *spread);
    live = calloc(S, 1);
    load = calloc(D, sizeof *load);
    ALLOC_CHECK(sub);
    ALLOC_CHECK(next);
    ALLOC_CHECK(spread);
    ALLOC_CHECK(live);
    ALLOC_CHECK(load);
    if (D == 1 || n <= 1) {
        for (uint32_t u = 0; u < n; u++) bin[u] = 0;
        *max_load = part_max_load(bin, w, n, D, load);
        goto fail;
    }
    for (uint32_t u = 0; u < n; u++) {
        KkSub *p = sub + (size_t)u * D;
        p[0] = (KkSub){w[u], u, u};
        for (uint32_t i = 1; i < D; i++) p[i] = (KkSub){0.0, KK_NONE, KK_NONE};
        next[u] = KK_NONE;
        spread[u] = w[u];
        live[u] = 1;
    }
    uint32_t nid = n, last = 0;
    for (uint32_t left = n; left > 1; left--) {
        uint32_t ab[2];
        for (int t = 0; t < 2; t++) { /* the largest spread, ties to the lower id */
            uint32_t best = KK_NONE;
            for (uint32_t id = 0; id < nid; id++)
                if (live[id] && (best == KK_NONE || spread[id] > spread[best])) best = id;
            live[best] = 0;
            ab[t] = best;
        }
        const KkSub *A = sub + (size_t)ab[0] * D, *B = sub + (size_t)ab[1] * D;
        KkSub *R = sub + (size_t)nid * D;
        for (uint32_t i = 0; i < D; i++) {
            KkSub x = A[i], y = B[D - 1 - i];
            if (x.head == KK_NONE)
                R[i] = y;
            else if (y.head == KK_NONE)
                R[i] = x;
            else
                R[i] = join(x, y, next);
        }
        qsort(R, D, sizeof *R, ref_cmp);
        uint32_t cnt = 0;
        while (cnt < D && R[cnt].head != KK_NONE) cnt++;
        spread[nid] = R[0].sum - (cnt == D ? R[D - 1].sum : 0.0);
        live[nid] = 1;
        last = nid++;
    }
    const KkSub *f = sub + (size_t)last * D;
    for (uint32_t i = 0; i < D && f[i].head != KK_NONE; i++)
        for (uint32_t u = f[i].head;; u = next[u]) {
            bin[u] = i;
            if (u == f[i].tail) break;
        }
    *max_load = part_max_load(bin, w, n, D, load);
fail:
    free(sub);
    free(next);
    free(spread);
    free(live);
    free(load);
    return st;
}
