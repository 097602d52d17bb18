/* node_balance.c — locality-aware node-wise balancing of one phase (post-node).
 * Implements: pol_node_balance and its slow twin pol_node_balance_ref (policy_internal.h).
 *   1. Node level. Every unit starts on its source node (the node holding most of its bytes).
 *      A node whose load exceeds its cap sheds units to the node with the most room (a
 *      max-heap on room = cap - load): first the units it received earlier (no new bytes
 *      cross), then its own in decreasing load per byte that would cross (the most relief per
 *      byte), skipping units that overshoot the excess on a first pass.
 *   2. GPU level. Inside each node, LPT of its units into its g ranks (honouring the size cap;
 *      the drawn split when that is no worse), then a g x g Hungarian maps bins to GPUs
 *      keeping the most bytes on the GPU that holds them.
 *   3. Repair. A node whose LPT max exceeds bound gets its cap lowered by g times the excess
 *      and sheds again; at most NB_ROUNDS rounds.
 * Does not: guarantee max <= bound (the caller compares max_load with post's and falls back);
 *   move a unit twice within one round; model time.
 * Source: OrchMLLM's node-wise rearrangement (REFERENCE.md opening paragraph: an ILP there;
 *   a greedy with an assignment problem per node here).
 * Cost: O(n) per round for the node lists, O(n log n) once for the shed order (radix),
 *   O(moves log K) for the heap, LPT + a g x g Hungarian per changed node. */
#include <float.h>
#include <math.h>
#include <string.h>
#include <stdio.h>

#include "sim/balance/part_internal.h"
#include "sim/balance/policy_internal.h"

#define NB_ROUNDS 8
/* Node caps start this fraction below g * bound and repairs aim this far below bound: LPT
 * inside a node of ~100 units rarely packs to within 0.1% of its mean (bench_balance). */
#include <stdlib.h>
#define NB_MARGIN (getenv("NBM") ? atof(getenv("NBM")) : 0.001)
#define NB_NONE UINT32_MAX

typedef struct {
    const NodeBalIn *in;
    PolicyScratch *s;
    uint32_t K;
    int ref; /* 1: the slow twin's linear scans */
} Nb;

/* ---- the most-room node: max-heap on room, ties to the lower node ------------------------- */

static inline int room_before(const double *room, uint32_t a, uint32_t b) {
    return room[a] > room[b] || (room[a] == room[b] && a < b);
}

static void heap_fix(PolicyScratch *s, uint32_t K, uint32_t i) {
    uint32_t *h = s->nb_heap, *pos = s->nb_hpos;
    const double *room = s->nb_room;
    uint32_t x = h[i];
    while (i > 0) { /* up */
        uint32_t p = (i - 1) / 2;
        if (!room_before(room, x, h[p])) break;
        h[i] = h[p];
        pos[h[i]] = i;
        i = p;
    }
    for (;;) { /* down */
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

static uint32_t most_room(const Nb *nb) {
    if (!nb->ref) return nb->s->nb_heap[0];
    uint32_t best = 0;
    for (uint32_t k = 1; k < nb->K; k++)
        if (room_before(nb->s->nb_room, k, best)) best = k;
    return best;
}

static void room_changed(const Nb *nb, uint32_t k) {
    if (!nb->ref) heap_fix(nb->s, nb->K, nb->s->nb_hpos[k]);
}

/* ---- the shed order ------------------------------------------------------------------------- */

/* s->nb_rorder = units by load per crossing byte, decreasing; ties lower unit first. */
static OsStatus shed_order(const Nb *nb) {
    OsStatus st = OS_OK;
    PolicyScratch *s = nb->s;
    uint32_t n = nb->in->n;
    if (!nb->ref) {
        OS_CHECK(part_sort_desc(s->ps, s->nb_ratio, n));
        memcpy(s->nb_rorder, s->ps->idx, (size_t)n * sizeof *s->nb_rorder);
    } else { /* insertion sort: stable, so equal ratios keep the lower unit first */
        for (uint32_t i = 0; i < n; i++) {
            uint32_t j = i;
            while (j > 0 && s->nb_ratio[s->nb_rorder[j - 1]] < s->nb_ratio[i]) {
                s->nb_rorder[j] = s->nb_rorder[j - 1];
                j--;
            }
            s->nb_rorder[j] = i;
        }
    }
fail:
    return st;
}

/* ---- GPU level ---------------------------------------------------------------------------- */

/* Units of node k are s->nb_lorder[nstart[k] .. nstart[k+1]) in unit order. LPT them into g
 * bins (nb_ubin), or keep the drawn split when every unit was drawn here and it is no worse.
 * Sets nb_max[k]; INFINITY when the size cap cannot be met. */
static OsStatus pack_node(const Nb *nb, uint32_t k) {
    OsStatus st = OS_OK;
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t g = in->g, a = s->nb_nstart[k], c = s->nb_nstart[k + 1] - a, drawn_ok = 1;
    double mx = 0.0;
    s->nb_max[k] = 0.0;
    if (!c) goto fail;
    for (uint32_t i = 0; i < c; i++) {
        uint32_t u = s->nb_lorder[a + i];
        s->nb_lw[a + i] = in->w[u];
        s->nb_lsz[a + i] = in->cap ? in->size[u] : 0;
        if (in->home[u] / g != k) drawn_ok = 0;
    }
    for (uint32_t b = 0; b < g; b++) s->nb_gcap[b] = in->cap;
    st = part_lpt(s->nb_lbin + a, &mx, s->nb_lw + a, c, g, in->cap ? s->nb_lsz + a : NULL,
                  in->cap ? s->nb_gcap : NULL, s->ps);
    if (st == OS_ERR_RANGE) { /* the node's units do not fit its ranks: shed more */
        os_clear_error();
        st = OS_OK;
        s->nb_max[k] = INFINITY;
        goto fail;
    }
    OS_CHECK(st);
    if (drawn_ok) { /* post keeps the drawn split when it is no worse: so does each node */
        double dmx = 0.0;
        int fits = 1;
        for (uint32_t b = 0; b < g; b++) {
            s->nb_gl[b] = 0.0;
            s->nb_gcap[b] = 0;
        }
        for (uint32_t i = 0; i < c; i++) {
            uint32_t b = in->home[s->nb_lorder[a + i]] % g;
            s->nb_gl[b] += s->nb_lw[a + i];
            s->nb_gcap[b] += s->nb_lsz[a + i];
        }
        for (uint32_t b = 0; b < g; b++) {
            dmx = fmax(dmx, s->nb_gl[b]);
            if (in->cap && s->nb_gcap[b] > in->cap) fits = 0;
        }
        if (fits && dmx <= mx) {
            mx = dmx;
            for (uint32_t i = 0; i < c; i++) s->nb_lbin[a + i] = in->home[s->nb_lorder[a + i]] % g;
        }
    }
    for (uint32_t i = 0; i < c; i++) s->nb_ubin[s->nb_lorder[a + i]] = s->nb_lbin[a + i];
    s->nb_max[k] = mx;
fail:
    return st;
}

/* Bins of node k onto its GPUs: keep the most piece bytes on the GPU that holds them. */
static OsStatus map_node(const Nb *nb, uint32_t k, uint32_t *rank) {
    OsStatus st = OS_OK;
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t g = in->g;
    double tot = 0.0;
    for (size_t i = 0; i < (size_t)g * g; i++) s->nb_mat[i] = 0.0;
    for (uint32_t q = s->nb_nstart[k]; q < s->nb_nstart[k + 1]; q++) {
        uint32_t u = s->nb_lorder[q];
        for (uint32_t t = s->nb_pstart[u]; t < s->nb_pstart[u + 1]; t++) {
            uint32_t p = s->nb_porder[t], r = in->piece_src[p];
            if (r / g == k) s->nb_mat[(size_t)s->nb_ubin[u] * g + r % g] -= (double)in->piece_bytes[p];
        }
    }
    OS_CHECK(part_hungarian(s->nb_perm, &tot, s->nb_mat, g, s->ps));
    for (uint32_t q = s->nb_nstart[k]; q < s->nb_nstart[k + 1]; q++) {
        uint32_t u = s->nb_lorder[q];
        rank[u] = k * g + s->nb_perm[s->nb_ubin[u]];
    }
fail:
    return st;
}

/* ---- node level --------------------------------------------------------------------------- */

/* Counting sort of units by current node: nb_lorder in unit order (for LPT), and the shed
 * lists in nb_rorder's order, units already off their source node first (into nb_touch's
 * role as cursor: nb_ncur). Shed lists go to nb_lbin (free until pack_node). */
static void node_lists(const Nb *nb, uint32_t *shed) {
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, K = nb->K;
    memset(s->nb_nstart, 0, ((size_t)K + 1) * sizeof *s->nb_nstart);
    for (uint32_t u = 0; u < n; u++) s->nb_nstart[s->nb_node[u] + 1]++;
    for (uint32_t k = 0; k < K; k++) s->nb_nstart[k + 1] += s->nb_nstart[k];
    memcpy(s->nb_ncur, s->nb_nstart, (size_t)K * sizeof *s->nb_ncur);
    for (uint32_t u = 0; u < n; u++) s->nb_lorder[s->nb_ncur[s->nb_node[u]]++] = u;
    memcpy(s->nb_ncur, s->nb_nstart, (size_t)K * sizeof *s->nb_ncur);
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t q = 0; q < n; q++) {
            uint32_t u = s->nb_rorder[q];
            if ((s->nb_node[u] != s->nb_srcn[u]) == (pass == 0)) shed[s->nb_ncur[s->nb_node[u]]++] = u;
        }
}

/* Move unit u from node k to node r. */
static void move_unit(const Nb *nb, uint32_t u, uint32_t k, uint32_t r) {
    PolicyScratch *s = nb->s;
    double wu = nb->in->w[u];
    uint64_t sz = nb->in->cap ? nb->in->size[u] : 0;
    s->nb_node[u] = r;
    s->nb_load[k] -= wu;
    s->nb_load[r] += wu;
    s->nb_used[k] -= sz;
    s->nb_used[r] += sz;
    s->nb_room[k] = s->nb_cap[k] - s->nb_load[k];
    s->nb_room[r] = s->nb_cap[r] - s->nb_load[r];
    room_changed(nb, r);
    room_changed(nb, k);
    s->nb_dirty[k] = s->nb_dirty[r] = 1;
}

/* Node k sheds until its load and size are within its caps (or nobody can take more). */
static void shed_node(const Nb *nb, uint32_t k, const uint32_t *shed) {
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t q = s->nb_nstart[k]; q < s->nb_nstart[k + 1]; q++) {
            uint32_t u = shed[q];
            double x = s->nb_load[k] - s->nb_cap[k];
            int size_over = s->nb_used[k] > s->nb_scap[k];
            if (x <= 0.0 && !size_over) return;
            if (s->nb_node[u] != k || !(in->w[u] > 0.0)) continue;
            if (pass == 0 && !size_over && in->w[u] > x) continue; /* would overshoot */
            uint32_t r = most_room(nb);
            uint64_t sz = in->cap ? in->size[u] : 0;
            if (r == k || s->nb_room[r] < in->w[u] || sz > s->nb_scap[r] - s->nb_used[r] ||
                s->nb_used[r] > s->nb_scap[r])
                continue; /* fits no node: the next unit may */
            move_unit(nb, u, k, r);
        }
}

static OsStatus grow_all(const NodeBalIn *in, PolicyScratch *s, uint32_t K) {
    OsStatus st = OS_OK;
    size_t n = in->n ? in->n : 1, np = in->np ? in->np : 1, g = in->g;
    OS_CHECK(POL_GROW(s->nb_node, s->nb_node_cap, n));
    OS_CHECK(POL_GROW(s->nb_srcn, s->nb_srcn_cap, n));
    OS_CHECK(POL_GROW(s->nb_ubin, s->nb_ubin_cap, n));
    OS_CHECK(POL_GROW(s->nb_rorder, s->nb_rorder_cap, n));
    OS_CHECK(POL_GROW(s->nb_lorder, s->nb_lorder_cap, n));
    OS_CHECK(POL_GROW(s->nb_lbin, s->nb_lbin_cap, n));
    OS_CHECK(POL_GROW(s->nb_pstart, s->nb_pstart_cap, n + 1));
    OS_CHECK(POL_GROW(s->nb_porder, s->nb_porder_cap, np));
    OS_CHECK(POL_GROW(s->nb_kb, s->nb_kb_cap, n));
    OS_CHECK(POL_GROW(s->nb_lsz, s->nb_lsz_cap, n));
    OS_CHECK(POL_GROW(s->nb_ratio, s->nb_ratio_cap, n));
    OS_CHECK(POL_GROW(s->nb_lw, s->nb_lw_cap, n));
    OS_CHECK(POL_GROW(s->nb_home, s->nb_home_cap, n));
    OS_CHECK(POL_GROW(s->nb_nstart, s->nb_nstart_cap, (size_t)K + 1));
    OS_CHECK(POL_GROW(s->nb_ncur, s->nb_ncur_cap, K));
    OS_CHECK(POL_GROW(s->nb_heap, s->nb_heap_cap, K));
    OS_CHECK(POL_GROW(s->nb_hpos, s->nb_hpos_cap, K));
    OS_CHECK(POL_GROW(s->nb_touch, s->nb_touch_cap, K));
    OS_CHECK(POL_GROW(s->nb_used, s->nb_used_cap, K));
    OS_CHECK(POL_GROW(s->nb_scap, s->nb_scap_cap, K));
    OS_CHECK(POL_GROW(s->nb_acc, s->nb_acc_cap, K));
    OS_CHECK(POL_GROW(s->nb_load, s->nb_load_cap, K));
    OS_CHECK(POL_GROW(s->nb_cap, s->nb_cap_cap, K));
    OS_CHECK(POL_GROW(s->nb_room, s->nb_room_cap, K));
    OS_CHECK(POL_GROW(s->nb_max, s->nb_max_cap, K));
    OS_CHECK(POL_GROW(s->nb_dirty, s->nb_dirty_cap, K));
    OS_CHECK(POL_GROW(s->nb_perm, s->nb_perm_cap, g));
    OS_CHECK(POL_GROW(s->nb_gcap, s->nb_gcap_cap, g));
    OS_CHECK(POL_GROW(s->nb_gl, s->nb_gl_cap, g));
    OS_CHECK(POL_GROW(s->nb_mat, s->nb_mat_cap, g * g));
fail:
    return st;
}

/* Source node of every unit (most piece bytes; ties to the lower node; byte-less units: the
 * node they were drawn on), the bytes that would cross if it left, and its shed ratio. */
static void sources(const Nb *nb) {
    const NodeBalIn *in = nb->in;
    PolicyScratch *s = nb->s;
    uint32_t n = in->n, g = in->g;
    memset(s->nb_pstart, 0, ((size_t)n + 1) * sizeof *s->nb_pstart);
    for (uint32_t p = 0; p < in->np; p++) s->nb_pstart[in->piece_unit[p] + 1]++;
    for (uint32_t u = 0; u < n; u++) s->nb_pstart[u + 1] += s->nb_pstart[u];
    memcpy(s->nb_home, s->nb_pstart, (size_t)n * sizeof *s->nb_home); /* cursor */
    for (uint32_t p = 0; p < in->np; p++) s->nb_porder[s->nb_home[in->piece_unit[p]]++] = p;
    memset(s->nb_acc, 0, (size_t)nb->K * sizeof *s->nb_acc);
    for (uint32_t u = 0; u < n; u++) {
        uint32_t nt = 0, best = in->home[u] / g;
        uint64_t bb = 0;
        for (uint32_t t = s->nb_pstart[u]; t < s->nb_pstart[u + 1]; t++) {
            uint32_t p = s->nb_porder[t], k = in->piece_src[p] / g;
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
        /* load relief per crossing byte; a unit with no bytes to cross moves for free */
        s->nb_ratio[u] = bb ? in->w[u] / (double)bb : DBL_MAX;
        if (!(s->nb_ratio[u] <= DBL_MAX)) s->nb_ratio[u] = DBL_MAX;
    }
}

static OsStatus node_balance(uint32_t *rank, double *max_load, int *ok, const NodeBalIn *in,
                             PolicyScratch *s, int ref) {
    OsStatus st = OS_OK;
    uint32_t n = in->n, D = in->D, g = in->g;
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
    uint32_t K = D / g;
    Nb nb = {in, s, K, ref};
    OS_CHECK(grow_all(in, s, K));
    sources(&nb);
    OS_CHECK(shed_order(&nb));
    double bound = in->bound;
    for (uint32_t k = 0; k < K; k++) {
        s->nb_cap[k] = (double)g * bound * (1.0 - NB_MARGIN);
        s->nb_scap[k] = in->cap ? (uint64_t)g * in->cap : UINT64_MAX;
        s->nb_dirty[k] = 1;
    }
    for (uint32_t u = 0; u < n; u++) s->nb_node[u] = s->nb_srcn[u];
    *ok = 1;
    for (uint32_t round = 0; round < NB_ROUNDS; round++) {
        /* loads from scratch each round: no drift from incremental sums */
        for (uint32_t k = 0; k < K; k++) {
            s->nb_load[k] = 0.0;
            s->nb_used[k] = 0;
        }
        for (uint32_t u = 0; u < n; u++) {
            s->nb_load[s->nb_node[u]] += in->w[u];
            s->nb_used[s->nb_node[u]] += in->cap ? in->size[u] : 0;
        }
        for (uint32_t k = 0; k < K; k++) {
            s->nb_room[k] = s->nb_cap[k] - s->nb_load[k];
            s->nb_heap[k] = k;
            s->nb_hpos[k] = k;
        }
        if (!ref)
            for (uint32_t i = K / 2; i-- > 0;) heap_fix(s, K, i);
        node_lists(&nb, s->nb_lbin);
        for (uint32_t k = 0; k < K; k++)
            if (s->nb_load[k] > s->nb_cap[k] || s->nb_used[k] > s->nb_scap[k]) shed_node(&nb, k, s->nb_lbin);
        node_lists(&nb, s->nb_lbin); /* after the moves: nb_lorder for packing */
        int bad = 0;
        for (uint32_t k = 0; k < K; k++) {
            if (s->nb_dirty[k]) OS_CHECK(pack_node(&nb, k));
            s->nb_dirty[k] = 0;
            bad |= s->nb_max[k] > bound;
        }
        if (getenv("PNDBG")) { uint32_t nbad = 0; double mm = 0; uint32_t moved = 0; for (uint32_t k = 0; k < K; k++) { nbad += s->nb_max[k] > bound; mm = fmax(mm, s->nb_max[k]); } for (uint32_t u = 0; u < n; u++) moved += s->nb_node[u] != s->nb_srcn[u];
            fprintf(stderr, "  round %u bad %u max/bound %.5f moved %u\n", round, nbad, mm / bound, moved); }
        if (!bad) break;
        for (uint32_t k = 0; k < K; k++) {
            if (!(s->nb_max[k] > bound)) continue;
            double c = isfinite(s->nb_max[k])
                           ? s->nb_load[k] - (double)g * (s->nb_max[k] - bound) - (double)g * bound * NB_MARGIN
                           : s->nb_load[k] * (1.0 - 0.5 / g);
            s->nb_cap[k] = fmin(s->nb_cap[k], c);
            if (!isfinite(s->nb_max[k]) && in->cap) s->nb_scap[k] = s->nb_used[k] - s->nb_used[k] / (2 * g);
        }
    }
    double mx = 0.0;
    for (uint32_t k = 0; k < K; k++) {
        if (!isfinite(s->nb_max[k])) *ok = 0;
        mx = fmax(mx, s->nb_max[k]);
    }
    *max_load = mx;
    if (!*ok) goto fail;
    for (uint32_t k = 0; k < K; k++) OS_CHECK(map_node(&nb, k, rank));
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
