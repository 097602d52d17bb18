/* node_balance.c — locality-aware node-wise balancing of one phase (post-node).
 * Implements: pol_node_balance and its slow twin pol_node_balance_ref (policy_internal.h).
 *   1. Node level. Every unit starts on its source node (the node holding most of its bytes).
 *      A node whose load exceeds cap = g * bound * (1 - NB_MARGIN) sheds units to the node
 *      with the most room (a max-heap on room = cap - load), in decreasing load per byte that
 *      would cross (the most relief per byte moved); a first pass skips units that would
 *      overshoot the excess, a second takes what it must.
 *   2. GPU level. One LPT pass over all units (decreasing load): a unit goes to the least-
 *      loaded GPU of its node while that GPU stays <= bound (and under the size cap), else to
 *      the least-loaded GPU anywhere, as post's LPT would. Inside-node LPT alone packs coarse
 *      phases (a few units per GPU) worse than a global LPT; the spill lets the last, small
 *      units fill the gaps anywhere, so the max stays at post's while big units stay home.
 *      A node that neither lost nor gained a unit keeps its drawn split when that is no
 *      worse (as post keeps the drawn split globally).
 *   3. Mapping. Per node, a g x g Hungarian puts each bin on the GPU holding most of its bytes.
 * Does not: guarantee max <= bound (the caller compares max_load with post's and falls
 *   back); iterate; model time.
 * Source: OrchMLLM's node-wise rearrangement (REFERENCE.md opening paragraph: an ILP there;
 *   a greedy with an assignment problem per node here).
 * Cost: O(n + np) for sources and lists, a radix sort of the over nodes' units (post's LPT
 *   order is reused for the LPT pass when given), O(moves log K) for shedding, O(n (g + log D))
 *   for the LPT pass, one pass over the pieces for the K matrices, and K Hungarians of g x g
 *   (skipped where the answer is forced): 5.5 ms at D = 2560 x 16 examples over post's 3.5
 *   (bench/RESULTS.md). The twin keeps the plain form of every step (full sorts, per-node
 *   matrices, every Hungarian); tests/test_policy.c compares the two. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "sim/balance/part_internal.h"
#include "sim/balance/policy_internal.h"

/* Node caps sit this fraction below g * bound, so a node's own GPUs have some slack for the
 * granularity of its units before the LPT pass spills them. Keep it below the caller's
 * margin over post's max (PN_TARGET = 0.02%): a node carrying exactly the mean load must not
 * shed. */
#define NB_MARGIN 0.0001

typedef struct {
    const NodeBalIn *in;
    PolicyScratch *s;
    uint32_t K;
    int ref;               /* 1: the slow twin's linear scans and insertion sorts */
    const uint32_t *lpt;   /* [n] units by load descending (the LPT pass's order) */
    const uint32_t *node;  /* [D] rank / g: a lookup, not a division by a run-time g */
} Nb;

/* ---- the most-room node: max-heap on room, ties to the lower node ------------------------- */

static inline int room_before(const double *room, uint32_t a, uint32_t b) {
    return room[a] > room[b] || (room[a] == room[b] && a < b);
}

/* Entry i's room changed: sift it up, then down (up = 0: down only, for heapify). */
static void room_sift(PolicyScratch *s, uint32_t K, uint32_t i, int up) {
    uint32_t *h = s->nb_heap, *pos = s->nb_hpos;
    const double *room = s->nb_room;
    uint32_t x = h[i];
    while (up && i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!room_before(room, x, h[p])) break;
        h[i] = h[p];
        pos[h[i]] = i;
        i = p;
    }
    for (;;) {
        uint32_t l = 2 * i + 1, c;
        if (l >= K) break;
        c = l;
        if (l + 1 < K && room_before(room, h[l + 1], h[l])) c = l + 1;
        if (!room_before(room, h[c], x)) break;
        h[i] = h[c];
        pos[h[i]] = i;
        i = c;
    }
    h[i] = x;
    pos[x] = i;
}

static void room_fix(PolicyScratch *s, uint32_t K, uint32_t i) { room_sift(s, K, i, 1); }

static uint32_t most_room(const Nb *nb) {
    if (!nb->ref) return nb->s->nb_heap[0];
    uint32_t best = 0;
    for (uint32_t k = 1; k < nb->K; k++)
        if (room_before(nb->s->nb_room, k, best)) best = k;
    return best;
}

/* ---- the least-loaded GPU: a lazy min-heap on (load, bin) ---------------------------------
 * Most units stay local and never ask for the global minimum, so placements do not touch
 * the heap: it holds each bin's load as of its last fix (nb_dload), never above the real
 * one (loads only grow). The top is refreshed on demand until its stored load is current;
 * then it is the true minimum (every other stored key is >= it and <= its bin's load), ties
 * to the lower bin as in the linear scan. */

static inline int key_before(const double *key, uint32_t a, uint32_t b) {
    return key[a] < key[b] || (key[a] == key[b] && a < b);
}

static void bin_down(PolicyScratch *s, uint32_t D, uint32_t i) {
    uint32_t *h = s->nb_bheap, *pos = s->nb_bpos;
    const double *key = s->nb_dload;
    uint32_t x = h[i];
    for (;;) {
        uint32_t l = 2 * i + 1, c;
        if (l >= D) break;
        c = l;
        if (l + 1 < D && key_before(key, h[l + 1], h[l])) c = l + 1;
        if (!key_before(key, h[c], x)) break;
        h[i] = h[c];
        pos[h[i]] = i;
        i = c;
    }
    h[i] = x;
    pos[x] = i;
}

/* When many bins went stale since the heap was last current (every placement makes one
 * stale), one O(D) heapify of the current loads beats refreshing them one sift-down at a
 * time (the first global query of a phase would otherwise refresh nearly all D). The top is
 * the least (load, bin) whatever the heap's shape, so answers do not change. */
static uint32_t bin_top(PolicyScratch *s, uint32_t D) {
    if (s->nb_stale > D / 8) {
        memcpy(s->nb_dload, s->nb_bload, (size_t)D * sizeof *s->nb_dload);
        for (uint32_t i = D / 2; i-- > 0;) bin_down(s, D, i);
        s->nb_stale = 0;
    }
    for (;;) {
        uint32_t b = s->nb_bheap[0];
        if (s->nb_dload[b] == s->nb_bload[b]) return b;
        s->nb_dload[b] = s->nb_bload[b];
        bin_down(s, D, 0);
    }
}

static inline int load_before(const double *load, uint32_t a, uint32_t b) {
    return load[a] < load[b] || (load[a] == load[b] && a < b);
}

static inline int bin_fits(const Nb *nb, uint32_t b, uint64_t sz) {
    return !nb->in->cap || sz <= nb->in->cap - nb->s->nb_bused[b];
}

/* Least-loaded bin with room for sz among bins [lo, hi); UINT32_MAX when none. */
static uint32_t scan_bins(const Nb *nb, uint32_t lo, uint32_t hi, uint64_t sz) {
    uint32_t best = UINT32_MAX;
    if (!nb->in->cap) { /* ascending scan, strict <: ties stay with the lower bin (cmov-able) */
        const double *load = nb->s->nb_bload;
        best = lo;
        for (uint32_t b = lo + 1; b < hi; b++) best = load[b] < load[best] ? b : best;
        return best;
    }
    for (uint32_t b = lo; b < hi; b++)
        if (bin_fits(nb, b, sz) && (best == UINT32_MAX || load_before(nb->s->nb_bload, b, best))) best = b;
    return best;
}

static uint32_t least_bin(const Nb *nb, uint64_t sz) {
    if (!nb->ref) {
        uint32_t b = bin_top(nb->s, nb->in->D);
        if (bin_fits(nb, b, sz)) return b;
    }
    return scan_bins(nb, 0, nb->in->D, sz); /* the twin, or a full least-loaded bin (caps) */
}

/* ---- steps -------------------------------------------------------------------------------- */

static OsStatus grow_all(const NodeBalIn *in, PolicyScratch *s, uint32_t K) {
    OsStatus st = OS_OK;
    size_t n = (size_t)in->n + 1, np = (size_t)in->np + 1, g = in->g, D = in->D;
    OS_CHECK(POL_GROW(s->nb_node, s->nb_node_cap, n));
    OS_CHECK(POL_GROW(s->nb_srcn, s->nb_srcn_cap, n));
    OS_CHECK(POL_GROW(s->nb_home, s->nb_home_cap, n));
    OS_CHECK(POL_GROW(s->nb_ubin, s->nb_ubin_cap, n));
    OS_CHECK(POL_GROW(s->nb_rorder, s->nb_rorder_cap, n));
    OS_CHECK(POL_GROW(s->nb_lorder, s->nb_lorder_cap, n));
    OS_CHECK(POL_GROW(s->nb_pstart, s->nb_pstart_cap, n + 1));
    OS_CHECK(POL_GROW(s->nb_porder, s->nb_porder_cap, np));
    OS_CHECK(POL_GROW(s->nb_kb, s->nb_kb_cap, n));
    OS_CHECK(POL_GROW(s->nb_ratio, s->nb_ratio_cap, n));
    OS_CHECK(POL_GROW(s->nb_rkey, s->nb_rkey_cap, n));
    OS_CHECK(POL_GROW(s->nb_nstart, s->nb_nstart_cap, (size_t)K + 1));
    OS_CHECK(POL_GROW(s->nb_ncur, s->nb_ncur_cap, K));
    OS_CHECK(POL_GROW(s->nb_heap, s->nb_heap_cap, K));
    OS_CHECK(POL_GROW(s->nb_hpos, s->nb_hpos_cap, K));
    OS_CHECK(POL_GROW(s->nb_touch, s->nb_touch_cap, K));
    OS_CHECK(POL_GROW(s->nb_acc, s->nb_acc_cap, K));
    OS_CHECK(POL_GROW(s->nb_used, s->nb_used_cap, K));
    OS_CHECK(POL_GROW(s->nb_scap, s->nb_scap_cap, K));
    OS_CHECK(POL_GROW(s->nb_load, s->nb_load_cap, K));
    OS_CHECK(POL_GROW(s->nb_cap, s->nb_cap_cap, K));
    OS_CHECK(POL_GROW(s->nb_room, s->nb_room_cap, K));
    OS_CHECK(POL_GROW(s->nb_dirty, s->nb_dirty_cap, K));
    OS_CHECK(POL_GROW(s->nb_bheap, s->nb_bheap_cap, D));
    OS_CHECK(POL_GROW(s->nb_bpos, s->nb_bpos_cap, D));
    OS_CHECK(POL_GROW(s->nb_bload, s->nb_bload_cap, D));
    OS_CHECK(POL_GROW(s->nb_dload, s->nb_dload_cap, D));
    OS_CHECK(POL_GROW(s->nb_bused, s->nb_bused_cap, D));
    OS_CHECK(POL_GROW(s->nb_perm, s->nb_perm_cap, g));
    OS_CHECK(POL_GROW(s->nb_gcol, s->nb_gcol_cap, g));
    OS_CHECK(POL_GROW(s->nb_mat, s->nb_mat_cap, (size_t)D * g)); /* [K][g][g]: the fast map's matrices */
    OS_CHECK(POL_GROW(s->nb_rob, s->nb_rob_cap, D));
    OS_CHECK(POL_GROW(s->nb_nodeof, s->nb_nodeof_cap, D));
fail:
    return st;
}

/* Pieces grouped by unit; every unit's source node (most piece bytes, ties to the lower node;
 * a byte-less unit: the node it was drawn on), the bytes that cross if it leaves, and its
 * shed ratio (load per crossing byte; DBL_MAX when nothing would cross). */
static void sources(const Nb *nb) {
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n;
    int ident = in->np == n; /* one piece per unit, in unit order (an encoder phase) */
    for (uint32_t p = 0; p < in->np && ident; p++) ident = in->piece_unit[p] == p;
    if (ident) {
        for (uint32_t u = 0; u <= n; u++) s->nb_pstart[u] = u;
        for (uint32_t p = 0; p < n; p++) s->nb_porder[p] = p;
    } else {
        memset(s->nb_pstart, 0, ((size_t)n + 1) * sizeof *s->nb_pstart);
        for (uint32_t p = 0; p < in->np; p++) s->nb_pstart[in->piece_unit[p] + 1]++;
        for (uint32_t u = 0; u < n; u++) s->nb_pstart[u + 1] += s->nb_pstart[u];
        memcpy(s->nb_home, s->nb_pstart, (size_t)n * sizeof *s->nb_home); /* cursors */
        for (uint32_t p = 0; p < in->np; p++) s->nb_porder[s->nb_home[in->piece_unit[p]]++] = p;
    }
    if (ident && !nb->ref) { /* one piece per unit: its node, unless byte-less (then home's) */
        for (uint32_t u = 0; u < n; u++) {
            uint64_t bb = in->piece_bytes[u];
            s->nb_srcn[u] = nb->node[bb ? in->piece_src[u] : in->home[u]];
            s->nb_kb[u] = bb;
            double r = bb ? in->w[u] / (double)bb : DBL_MAX;
            s->nb_ratio[u] = r <= DBL_MAX ? r : DBL_MAX;
        }
        return;
    }
    memset(s->nb_acc, 0, (size_t)nb->K * sizeof *s->nb_acc);
    for (uint32_t u = 0; u < n; u++) {
        uint32_t nt = 0, best = nb->node[in->home[u]];
        uint64_t bb = 0;
        for (uint32_t t = s->nb_pstart[u]; t < s->nb_pstart[u + 1]; t++) {
            uint32_t p = s->nb_porder[t], k = nb->node[in->piece_src[p]];
            if (!in->piece_bytes[p]) continue;
            if (!s->nb_acc[k]) s->nb_touch[nt++] = k;
            s->nb_acc[k] += in->piece_bytes[p];
        }
        for (uint32_t t = 0; t < nt; t++) {
            uint32_t k = s->nb_touch[t];
            if (s->nb_acc[k] > bb || (s->nb_acc[k] == bb && k < best)) {
                bb = s->nb_acc[k];
                best = k;
            }
            s->nb_acc[k] = 0;
        }
        s->nb_srcn[u] = best;
        s->nb_kb[u] = bb;
        double r = bb ? in->w[u] / (double)bb : DBL_MAX;
        s->nb_ratio[u] = r <= DBL_MAX ? r : DBL_MAX;
    }
}

/* out[0 .. n) = units by key descending, ties lower unit first. */
static OsStatus sort_desc(const Nb *nb, uint32_t *out, const double *key) {
    OsStatus st = OS_OK;
    PolicyScratch *s = nb->s;
    uint32_t n = nb->in->n;
    if (!nb->ref) {
        OS_CHECK(part_sort_desc(s->ps, key, n));
        memcpy(out, s->ps->idx, (size_t)n * sizeof *out);
    } else { /* insertion sort: stable, so equal keys keep the lower unit first */
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = i;
            while (j > 0 && key[out[j - 1]] < key[i]) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = i;
        }
    }
fail:
    return st;
}

/* The fast path's shed lists, for the nodes over their caps at the start only (the twin sorts
 * every unit): a node under its caps sheds nothing and, taking only what fits its room, stays
 * under them, so only the over nodes' units need the ratio order. Those units are gathered
 * in unit order (equal ratios keep the lower unit first, as in the full sort), sorted, and
 * dealt into their node's list in nb_lorder; *tail = the end of the lists. */
static OsStatus over_lists(const Nb *nb, uint32_t *tail) {
    OsStatus st = OS_OK;
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, K = nb->K, c = 0;
    unsigned char *ov = s->nb_dirty;
    memset(s->nb_nstart, 0, ((size_t)K + 1) * sizeof *s->nb_nstart);
    for (uint32_t k = 0; k < K; k++) ov[k] = s->nb_load[k] > s->nb_cap[k] || s->nb_used[k] > s->nb_scap[k];
    for (uint32_t u = 0; u < n; u++) {
        uint32_t k = s->nb_srcn[u];
        if (!ov[k]) continue;
        s->nb_rorder[c] = u;
        s->nb_rkey[c++] = s->nb_ratio[u];
        s->nb_nstart[k + 1]++;
    }
    for (uint32_t k = 0; k < K; k++) s->nb_nstart[k + 1] += s->nb_nstart[k];
    memcpy(s->nb_ncur, s->nb_nstart, (size_t)K * sizeof *s->nb_ncur);
    OS_CHECK(part_sort_desc(s->ps, s->nb_rkey, c));
    for (uint32_t q = 0; q < c; q++) {
        uint32_t u = s->nb_rorder[s->ps->idx[q]];
        s->nb_lorder[s->nb_ncur[s->nb_srcn[u]]++] = u;
    }
    *tail = c;
fail:
    return st;
}

/* A node that was under its caps but went over by rounding (room = cap - load >= w, yet
 * load + w > cap by an ulp): its list, sorted now, at nb_lorder[*a .. *z). Rare. */
static OsStatus late_list(const Nb *nb, uint32_t k, uint32_t *a, uint32_t *z) {
    OsStatus st = OS_OK;
    PolicyScratch *s = nb->s;
    uint32_t c = 0;
    for (uint32_t u = 0; u < nb->in->n; u++)
        if (s->nb_srcn[u] == k) {
            s->nb_rorder[c] = u;
            s->nb_rkey[c++] = s->nb_ratio[u];
        }
    OS_CHECK(part_sort_desc(s->ps, s->nb_rkey, c));
    for (uint32_t q = 0; q < c; q++) s->nb_lorder[*a + q] = s->nb_rorder[s->ps->idx[q]];
    *z = *a + c;
fail:
    return st;
}

/* Step 1: overloaded nodes shed to the node with the most room. The shed order is sorted
 * only when some node is over its caps (often none is, e.g. when one long unit sets the
 * bound). */
static OsStatus shed(const Nb *nb) {
    OsStatus st = OS_OK;
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, K = nb->K;
    int over = 0;
    for (uint32_t k = 0; k < K; k++) {
        s->nb_load[k] = 0.0;
        s->nb_used[k] = 0;
        s->nb_cap[k] = (double)in->g * in->bound * (1.0 - NB_MARGIN);
        s->nb_scap[k] = in->cap ? (uint64_t)in->g * in->cap : UINT64_MAX;
    }
    for (uint32_t u = 0; u < n; u++) {
        s->nb_node[u] = s->nb_srcn[u];
        s->nb_load[s->nb_srcn[u]] += in->w[u];
        s->nb_used[s->nb_srcn[u]] += in->cap ? in->size[u] : 0;
    }
    for (uint32_t k = 0; k < K; k++) {
        s->nb_room[k] = s->nb_cap[k] - s->nb_load[k];
        s->nb_heap[k] = s->nb_hpos[k] = k;
        over |= s->nb_load[k] > s->nb_cap[k] || s->nb_used[k] > s->nb_scap[k];
    }
    if (!over) goto fail;
    uint32_t tail = 0;
    if (!nb->ref) {
        for (uint32_t i = K / 2; i-- > 0;) room_sift(s, K, i, 0);
        OS_CHECK(over_lists(nb, &tail));
    } else { /* shed lists: units of each node in shed order (nb_lorder, by counting sort) */
        OS_CHECK(sort_desc(nb, s->nb_rorder, s->nb_ratio));
        memset(s->nb_nstart, 0, ((size_t)K + 1) * sizeof *s->nb_nstart);
        for (uint32_t u = 0; u < n; u++) s->nb_nstart[s->nb_srcn[u] + 1]++;
        for (uint32_t k = 0; k < K; k++) s->nb_nstart[k + 1] += s->nb_nstart[k];
        memcpy(s->nb_ncur, s->nb_nstart, (size_t)K * sizeof *s->nb_ncur);
        for (uint32_t q = 0; q < n; q++) {
            uint32_t u = s->nb_rorder[q];
            s->nb_lorder[s->nb_ncur[s->nb_srcn[u]]++] = u;
        }
    }
    for (uint32_t k = 0; k < K; k++) {
        uint32_t a = s->nb_nstart[k], z = s->nb_nstart[k + 1];
        if (!nb->ref && !s->nb_dirty[k] && (s->nb_load[k] > s->nb_cap[k] || s->nb_used[k] > s->nb_scap[k])) {
            a = tail;
            OS_CHECK(late_list(nb, k, &a, &z));
            tail = z;
        }
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t q = a; q < z; q++) {
                uint32_t u = s->nb_lorder[q];
                double x = s->nb_load[k] - s->nb_cap[k], wu = in->w[u];
                int size_over = s->nb_used[k] > s->nb_scap[k];
                if (!(x > 0.0) && !size_over) break;
                if (s->nb_node[u] != k || !(wu > 0.0)) continue;
                if (pass == 0 && !size_over && wu > x) continue; /* would overshoot */
                uint32_t r = most_room(nb);
                uint64_t sz = in->cap ? in->size[u] : 0;
                if (r == k || s->nb_room[r] < wu || s->nb_used[r] > s->nb_scap[r] ||
                    sz > s->nb_scap[r] - s->nb_used[r])
                    continue; /* fits no node: a later, smaller unit may */
                s->nb_node[u] = r;
                s->nb_load[k] -= wu;
                s->nb_load[r] += wu;
                s->nb_used[k] -= sz;
                s->nb_used[r] += sz;
                s->nb_room[k] = s->nb_cap[k] - s->nb_load[k];
                s->nb_room[r] = s->nb_cap[r] - s->nb_load[r];
                if (!nb->ref) {
                    room_fix(s, K, s->nb_hpos[r]);
                    room_fix(s, K, s->nb_hpos[k]);
                }
            }
    }
fail:
    return st;
}

/* Step 2: the LPT pass, local first. Returns 0 when a unit fits no bin under the cap. */
static int lpt_local(const Nb *nb) {
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, D = in->D, g = in->g;
    for (uint32_t b = 0; b < D; b++) {
        s->nb_bload[b] = 0.0;
        s->nb_bused[b] = 0;
        s->nb_dload[b] = 0.0;
        s->nb_bheap[b] = s->nb_bpos[b] = b; /* all zero: index order is a valid heap */
    }
    s->nb_stale = 0;
    /* The units' nodes and loads in LPT order, gathered first: independent loads the CPU
     * overlaps, where inside the placement loop each would stall it (it is latency-bound on
     * the bin loads). nb_rorder / nb_rkey / nb_home are free after steps 0-1. */
    uint32_t *qnode = s->nb_rorder, *qbin = s->nb_home;
    double *qw = s->nb_rkey;
    for (uint32_t q = 0; q < n; q++) {
        uint32_t u = nb->lpt[q];
        qnode[q] = s->nb_node[u];
        qw[q] = in->w[u];
    }
    for (uint32_t q = 0; q < n; q++) {
        uint32_t k = qnode[q];
        uint64_t sz = in->cap ? in->size[nb->lpt[q]] : 0;
        double wu = qw[q];
        /* one node (g = D): the global least-loaded bin is the node's */
        uint32_t b = nb->K == 1 ? least_bin(nb, sz) : scan_bins(nb, k * g, k * g + g, sz);
        if (b == UINT32_MAX || !(s->nb_bload[b] + wu <= in->bound)) {
            uint32_t a = least_bin(nb, sz);
            if (a == UINT32_MAX) return 0;
            if (b == UINT32_MAX || s->nb_bload[a] < s->nb_bload[b]) b = a; /* equal: stay local */
        }
        qbin[q] = b;
        s->nb_bload[b] += wu;
        s->nb_bused[b] += sz;
        s->nb_stale++;
    }
    for (uint32_t q = 0; q < n; q++) s->nb_ubin[nb->lpt[q]] = qbin[q];
    return 1;
}

/* A node that kept exactly its drawn units keeps their drawn GPUs when that is no worse. */
static void keep_drawn(const Nb *nb) {
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, D = in->D, g = in->g, K = nb->K;
    memset(s->nb_dirty, 0, K);
    for (uint32_t b = 0; b < D; b++) s->nb_dload[b] = 0.0;
    if (!nb->ref) { /* the drawn loads of clean nodes only (same units, same order per rank) */
        uint32_t ndirty = 0;
        for (uint32_t u = 0; u < n; u++) {
            uint32_t f = nb->node[s->nb_ubin[u]], h = nb->node[in->home[u]];
            if (f != h) s->nb_dirty[f] = s->nb_dirty[h] = 1;
        }
        for (uint32_t k = 0; k < K; k++) ndirty += s->nb_dirty[k];
        if (ndirty == K) return; /* every node gained or lost a unit: nothing to keep */
        for (uint32_t u = 0; u < n; u++)
            if (!s->nb_dirty[nb->node[in->home[u]]]) s->nb_dload[in->home[u]] += in->w[u];
    } else {
        for (uint32_t u = 0; u < n; u++) {
            uint32_t f = s->nb_ubin[u] / g, h = in->home[u] / g;
            if (f != h) s->nb_dirty[f] = s->nb_dirty[h] = 1;
            s->nb_dload[in->home[u]] += in->w[u];
        }
    }
    for (uint32_t k = 0; k < K; k++) {
        if (s->nb_dirty[k]) continue;
        double dmx = 0.0, mx = 0.0;
        for (uint32_t b = k * g; b < k * g + g; b++) {
            dmx = fmax(dmx, s->nb_dload[b]);
            mx = fmax(mx, s->nb_bload[b]);
        }
        if (dmx > mx) s->nb_dirty[k] = 1;
    }
    if (in->cap) { /* the drawn split must also fit the cap: sum sizes per drawn rank */
        for (uint32_t b = 0; b < D; b++) s->nb_dload[b] = 0.0;
        for (uint32_t u = 0; u < n; u++) s->nb_dload[in->home[u]] += (double)in->size[u];
        for (uint32_t b = 0; b < D; b++)
            if (s->nb_dload[b] > (double)in->cap) s->nb_dirty[b / g] = 1;
    }
    for (uint32_t u = 0; u < n; u++)
        if (!s->nb_dirty[nb->node[in->home[u]]]) s->nb_ubin[u] = in->home[u];
}

/* The Hungarian's answer without it, when it is forced: every row (bin) has one strictly
 * smallest cost (most bytes on one GPU) and those columns differ. Then that permutation is the
 * only optimum (any other pays more in some row and less in none), and the Hungarian, exact
 * on these integer byte counts (< 2^53), returns it too. Typical of a node that kept its
 * split. Returns 0 when not forced. */
static int forced_perm(uint32_t *perm, uint32_t *col_taken, const double *mat, uint32_t g) {
    memset(col_taken, 0, (size_t)g * sizeof *col_taken);
    for (uint32_t i = 0; i < g; i++) {
        const double *row = mat + (size_t)i * g;
        uint32_t c = 0;
        int strict = 1;
        for (uint32_t j = 1; j < g; j++) {
            if (row[j] < row[c]) {
                c = j;
                strict = 1;
            } else if (row[j] == row[c]) {
                strict = 0;
            }
        }
        if (!strict || col_taken[c]) return 0;
        col_taken[c] = 1;
        perm[i] = c;
    }
    return 1;
}

/* Step 3: per node, bins onto GPUs keeping the most piece bytes on the GPU that holds them. */
static OsStatus map_nodes(const Nb *nb, uint32_t *rank) {
    OsStatus st = OS_OK;
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, g = in->g, K = nb->K;
    double tot = 0.0;
    memset(s->nb_nstart, 0, ((size_t)K + 1) * sizeof *s->nb_nstart);
    for (uint32_t u = 0; u < n; u++) s->nb_nstart[s->nb_ubin[u] / g + 1]++;
    for (uint32_t k = 0; k < K; k++) s->nb_nstart[k + 1] += s->nb_nstart[k];
    memcpy(s->nb_ncur, s->nb_nstart, (size_t)K * sizeof *s->nb_ncur);
    for (uint32_t u = 0; u < n; u++) s->nb_lorder[s->nb_ncur[s->nb_ubin[u] / g]++] = u;
    for (uint32_t k = 0; k < K; k++) {
        uint32_t a = s->nb_nstart[k], z = s->nb_nstart[k + 1];
        for (size_t i = 0; i < (size_t)g * g; i++) s->nb_mat[i] = 0.0;
        for (uint32_t q = a; q < z; q++) {
            uint32_t u = s->nb_lorder[q], i = s->nb_ubin[u] % g;
            for (uint32_t t = s->nb_pstart[u]; t < s->nb_pstart[u + 1]; t++) {
                uint32_t p = s->nb_porder[t], r = in->piece_src[p];
                if (r / g == k) s->nb_mat[(size_t)i * g + r % g] -= (double)in->piece_bytes[p];
            }
        }
        OS_CHECK(part_hungarian(s->nb_perm, &tot, s->nb_mat, g, s->ps));
        for (uint32_t q = a; q < z; q++) {
            uint32_t u = s->nb_lorder[q];
            rank[u] = k * g + s->nb_perm[s->nb_ubin[u] % g];
        }
    }
fail:
    return st;
}

/* The fast path's step 3: every node's g x g matrix in one pass over the pieces (no grouping
 * by node; byte counts are integers, so the sums do not depend on the order), then each
 * node's permutation, then one pass for the ranks. Same matrices and answers as map_nodes. */
static OsStatus map_nodes_fast(const Nb *nb, uint32_t *rank) {
    OsStatus st = OS_OK;
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, g = in->g, K = nb->K;
    size_t gg = (size_t)g * g;
    double tot = 0.0, *mat = s->nb_mat;
    for (size_t i = 0; i < (size_t)K * gg; i++) mat[i] = 0.0;
    for (uint32_t p = 0; p < in->np; p++) {
        /* node k's matrix at k*g*g, row b % g, column r % g: index b*g + r - k*g */
        uint32_t b = s->nb_ubin[in->piece_unit[p]], r = in->piece_src[p], k = nb->node[b];
        if (nb->node[r] == k) mat[(size_t)b * g + (r - k * g)] -= (double)in->piece_bytes[p];
    }
    for (uint32_t k = 0; k < K; k++) {
        if (!forced_perm(s->nb_perm, s->nb_gcol, mat + k * gg, g))
            OS_CHECK(part_hungarian(s->nb_perm, &tot, mat + k * gg, g, s->ps));
        for (uint32_t i = 0; i < g; i++) s->nb_rob[k * g + i] = k * g + s->nb_perm[i];
    }
    for (uint32_t u = 0; u < n; u++) rank[u] = s->nb_rob[s->nb_ubin[u]];
fail:
    return st;
}

static OsStatus node_balance(uint32_t *rank, double *max_load, int *ok, const NodeBalIn *in,
                             PolicyScratch *s, int ref) {
    OsStatus st = OS_OK;
    uint32_t n = in->n, D = in->D, g = in->g;
    *ok = 0;
    *max_load = INFINITY;
    if (g == 0 || D == 0 || D % g)
        OS_FAIL(OS_ERR_ARG, "node balancing", "g", "use whole nodes", "%u ranks per node, %u ranks", g, D);
    for (uint32_t u = 0; u < n; u++)
        if (in->home[u] >= D || !(in->w[u] >= 0.0) || !isfinite(in->w[u]))
            OS_FAIL(OS_ERR_ARG, "node balancing", "unit", NULL, "unit %u: home %u of %u, load %g", u,
                    in->home[u], D, in->w[u]);
    for (uint32_t p = 0; p < in->np; p++)
        if (in->piece_unit[p] >= n || in->piece_src[p] >= D)
            OS_FAIL(OS_ERR_ARG, "node balancing", "piece", NULL, "piece %u: unit %u of %u, rank %u of %u",
                    p, in->piece_unit[p], n, in->piece_src[p], D);
    Nb nb = {in, s, D / g, ref, NULL, NULL};
    OS_CHECK(grow_all(in, s, nb.K));
    nb.lpt = s->nb_lorder; /* after the grow: it may move the arrays */
    nb.node = s->nb_nodeof;
    for (uint32_t b = 0; b < D; b++) s->nb_nodeof[b] = b / g;
    sources(&nb);
    OS_CHECK(shed(&nb));
    if (!ref && in->order)
        nb.lpt = in->order; /* post's LPT order of the same loads: no second sort */
    else
        OS_CHECK(sort_desc(&nb, s->nb_lorder, in->w));
    if (!lpt_local(&nb)) goto fail;
    keep_drawn(&nb);
    if (ref)
        OS_CHECK(map_nodes(&nb, rank));
    else
        OS_CHECK(map_nodes_fast(&nb, rank));
    for (uint32_t b = 0; b < D; b++) s->nb_bload[b] = 0.0;
    for (uint32_t u = 0; u < n; u++) s->nb_bload[rank[u]] += in->w[u];
    double mx = 0.0;
    for (uint32_t b = 0; b < D; b++) mx = fmax(mx, s->nb_bload[b]);
    *max_load = mx;
    *ok = 1;
fail:
    return st;
}

OsStatus pol_node_balance(uint32_t *rank, double *max_load, int *ok, const NodeBalIn *in,
                          PolicyScratch *s) {
    return node_balance(rank, max_load, ok, in, s, 0);
}

OsStatus pol_node_balance_ref(uint32_t *rank, double *max_load, int *ok, const NodeBalIn *in,
                              PolicyScratch *s) {
    return node_balance(rank, max_load, ok, in, s, 1);
}
