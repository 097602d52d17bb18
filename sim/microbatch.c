/* microbatch.c — micro-batch counts and partitions for one rank (microbatch.h).
 * Implements: mb_count_for_budget (first-fit decreasing over a max segment tree of the
 *   micro-batches' room: the leftmost one with room in O(log n)) and its O(n^2) twin,
 *   mb_partition_kk (part_kk, then the end placement), mb_partition_fixed/_drawn.
 * Does not: allocate once the scratch is warm; the exhaustive twin lives in balance/brute.c.
 * Source: verl rearrange_micro_batches (REFERENCE.md "Karmarkar–Karp (verl)"). */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/balance/partition.h"
#include "sim/microbatch.h"
#include "sim/program.h"

/* replay runs at most PROG_MAX_MB micro-batches; the drawn split must cap where it does. */
_Static_assert(MB_MAX == PROG_MAX_MB, "MB_MAX must equal PROG_MAX_MB");
_Static_assert(MB_MAX - 1 <= UINT16_MAX, "mb_of is uint16_t");

/* A sort entry: ascending (k, tie); tie is unique among the entries of one sort. */
typedef struct {
    uint64_t k;
    uint32_t tie, id;
} MbKey;

struct MbScratch {
    PartScratch *ps;
    MbKey *key, *tmp;   /* [max(n, M)] sort entries and the merge buffer */
    uint64_t *tree;     /* [2 * pow2(n)] first fit: max room per subtree */
    uint32_t *bin;      /* [n] part_kk's group of each sequence */
    double *gw;         /* [M] group workload */
    uint32_t *gmin;     /* [M] lowest sequence in the group (UINT32_MAX: empty) */
    uint32_t *gpos;     /* [M] pipeline position of the group */
    size_t key_cap, tmp_cap, tree_cap, bin_cap, gw_cap, gmin_cap, gpos_cap;
};

#define MB_GROW(ptr, capv, n) os_grow((void **)&(ptr), &(capv), (size_t)(n), sizeof(*(ptr)))

OsStatus mb_scratch_create(MbScratch **out) {
    OsStatus st = OS_OK;
    MbScratch *s = calloc(1, sizeof *s);
    ALLOC_CHECK(s);
    OS_CHECK(part_scratch_create(&s->ps));
    *out = s;
    return OS_OK;
fail:
    free(s);
    return st;
}

void mb_scratch_destroy(MbScratch *s) {
    if (!s) return;
    part_scratch_destroy(s->ps);
    free(s->key);
    free(s->tmp);
    free(s->tree);
    free(s->bin);
    free(s->gw);
    free(s->gmin);
    free(s->gpos);
    free(s);
}

static inline int key_before(const MbKey *a, const MbKey *b) {
    return a->k < b->k || (a->k == b->k && a->tie < b->tie);
}

/* Bottom-up merge sort of a[0..n) with tmp[n]: O(n log n), no allocation (glibc's qsort may
 * malloc its buffer). */
static void key_sort(MbKey *a, MbKey *tmp, uint32_t n) {
    MbKey *src = a, *dst = tmp;
    for (uint32_t w = 1; w < n; w *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * w) {
            uint32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            uint32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = key_before(&src[j], &src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        MbKey *t = src;
        src = dst;
        dst = t;
        if (w > UINT32_MAX / 2) break;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
}

static uint32_t clamp_count(uint64_t c, uint32_t n) {
    if (c < 1) c = 1;
    if (c > n) c = n;
    if (c > MB_MAX) c = MB_MAX;
    return c ? (uint32_t)c : 1;
}

OsStatus mb_count_for_budget(uint32_t *count, const uint32_t *tokens, uint32_t n,
                             uint64_t budget, MbScratch *s) {
    OsStatus st = OS_OK;
    *count = 1;
    if (n == 0 || budget == 0) goto fail;
    if (!tokens || !s) OS_FAIL(OS_ERR_ARG, "microbatch", "tokens", NULL, "no tokens or scratch");
    uint64_t sum = 0;
    uint32_t m = 0, big = 0; /* m sequences that fit the budget, big that do not */
    OS_CHECK(MB_GROW(s->key, s->key_cap, n));
    OS_CHECK(MB_GROW(s->tmp, s->tmp_cap, n));
    for (uint32_t i = 0; i < n; i++) {
        sum += tokens[i];
        if (tokens[i] > budget)
            big++;
        else
            s->key[m++] = (MbKey){UINT32_MAX - (uint64_t)tokens[i], i, i}; /* descending */
    }
    key_sort(s->key, s->tmp, m);
    /* First fit: leaves [P, P + m) are the micro-batches in opening order, each with room
     * budget until used (at most m open); inner nodes hold their subtree's most room. The
     * leftmost leaf with room >= t is the first micro-batch it fits; an unopened one always
     * qualifies, so the opened ones are a prefix [0, used). */
    uint32_t P = 1;
    while (P < m) P *= 2;
    OS_CHECK(MB_GROW(s->tree, s->tree_cap, 2 * (size_t)P));
    uint64_t *t = s->tree;
    for (uint32_t i = 0; i < P; i++) t[P + i] = i < m ? budget : 0;
    for (uint32_t i = P; i-- > 1;) t[i] = OS_MAX(t[2 * i], t[2 * i + 1]);
    uint32_t used = 0;
    for (uint32_t k = 0; k < m; k++) {
        uint64_t tok = UINT32_MAX - s->key[k].k;
        uint32_t v = 1;
        while (v < P) v = t[2 * v] >= tok ? 2 * v : 2 * v + 1;
        uint32_t leaf = v - P;
        used = OS_MAX(used, leaf + 1);
        t[v] -= tok;
        for (v /= 2; v >= 1; v /= 2) t[v] = OS_MAX(t[2 * v], t[2 * v + 1]);
    }
    uint64_t c = sum / budget + (sum % budget != 0);
    c = OS_MAX(c, (uint64_t)used + big);
    *count = clamp_count(c, n);
fail:
    return st;
}

uint32_t mb_count_for_budget_ref(const uint32_t *tokens, uint32_t n, uint64_t budget) {
    if (n == 0 || budget == 0) return 1;
    uint32_t *ord = malloc((size_t)n * sizeof *ord); /* a test twin: plain allocations */
    uint64_t *room = malloc((size_t)n * sizeof *room);
    if (!ord || !room) {
        free(ord);
        free(room);
        return 0;
    }
    uint64_t sum = 0;
    uint32_t m = 0, big = 0, open = 0;
    for (uint32_t i = 0; i < n; i++) {
        sum += tokens[i];
        if (tokens[i] > budget) {
            big++;
            continue;
        }
        uint32_t j = m++; /* insertion sort: tokens descending, stable */
        while (j > 0 && tokens[ord[j - 1]] < tokens[i]) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = i;
    }
    for (uint32_t k = 0; k < m; k++) {
        uint64_t tok = tokens[ord[k]];
        uint32_t b = 0;
        while (b < open && room[b] < tok) b++;
        if (b == open) room[open++] = budget;
        room[b] -= tok;
    }
    free(ord);
    free(room);
    uint64_t c = sum / budget + (sum % budget != 0);
    c = OS_MAX(c, (uint64_t)open + big);
    return clamp_count(c, n);
}

OsStatus mb_partition_kk(uint16_t *mb_of, const double *work, uint32_t n, uint32_t M,
                         MbScratch *s) {
    OsStatus st = OS_OK;
    if (M < 1 || M > MB_MAX)
        OS_FAIL(OS_ERR_ARG, "microbatch", "M", NULL, "%u micro-batches (need 1 to %u)", M, MB_MAX);
    if (n == 0) goto fail;
    if (!mb_of || !work || !s) OS_FAIL(OS_ERR_ARG, "microbatch", "work", NULL, "no arrays or scratch");
    OS_CHECK(MB_GROW(s->bin, s->bin_cap, n));
    OS_CHECK(MB_GROW(s->gw, s->gw_cap, M));
    OS_CHECK(MB_GROW(s->gmin, s->gmin_cap, M));
    OS_CHECK(MB_GROW(s->gpos, s->gpos_cap, M));
    OS_CHECK(MB_GROW(s->key, s->key_cap, M));
    OS_CHECK(MB_GROW(s->tmp, s->tmp_cap, M));
    double mx = 0.0;
    OS_CHECK(part_kk(s->bin, &mx, work, n, M, s->ps)); /* checks work finite and >= 0 */
    for (uint32_t g = 0; g < M; g++) {
        s->gw[g] = 0.0;
        s->gmin[g] = UINT32_MAX;
    }
    for (uint32_t i = 0; i < n; i++) { /* summed in index order: the same on every run */
        uint32_t g = s->bin[i];
        s->gw[g] += work[i];
        if (s->gmin[g] == UINT32_MAX) s->gmin[g] = i;
    }
    for (uint32_t g = 0; g < M; g++) {
        if (s->gmin[g] == UINT32_MAX && n >= M)
            OS_FAIL(OS_ERR_INTERNAL, "microbatch", "Karmarkar-Karp", "a balancing bug: report it",
                    "micro-batch %u of %u is empty with %u sequences", g, M, n);
        double x = s->gw[g] + 0.0; /* -0.0 -> +0.0: non-negative doubles order as their bits */
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        /* empty groups (n < M) tie after every non-empty one of workload 0 */
        uint32_t tie = s->gmin[g] != UINT32_MAX ? s->gmin[g] : n + g;
        s->key[g] = (MbKey){bits, tie, g};
    }
    key_sort(s->key, s->tmp, M);
    /* j-th smallest: even j from the front (g0, g2, ...), odd j from the back (..., g3, g1). */
    for (uint32_t j = 0; j < M; j++) s->gpos[s->key[j].id] = j % 2 == 0 ? j / 2 : M - 1 - j / 2;
    for (uint32_t i = 0; i < n; i++) mb_of[i] = (uint16_t)s->gpos[s->bin[i]];
fail:
    return st;
}

uint32_t mb_partition_drawn(uint16_t *mb_of, const uint32_t *tokens, uint32_t n, uint32_t per_mb,
                            uint64_t budget) {
    uint32_t cur = 0, cnt = 0;
    uint64_t tok = 0;
    if (!tokens) budget = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t t = budget ? tokens[i] : 0;
        int full = cnt > 0 && ((per_mb && cnt >= per_mb) || (budget && tok + t > budget));
        /* at the cap the rest pile into the last micro-batch, its counters kept (replay's rule) */
        if (full && cur + 1 < MB_MAX) cur++, cnt = 0, tok = 0;
        mb_of[i] = (uint16_t)cur;
        cnt++;
        tok += t;
    }
    return cur + 1;
}

uint32_t mb_partition_fixed(uint16_t *mb_of, uint32_t n, uint32_t per_mb) {
    return mb_partition_drawn(mb_of, NULL, n, per_mb, 0);
}
