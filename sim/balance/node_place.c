/* node_place.c — node-wise placement of balanced bins on ranks (post-node).
 * Implements: policy_node_place (exact D x D Hungarian for small D; hierarchical for large:
 *   greedy grouping of bins into nodes, K x K Hungarian of groups onto nodes, g x g Hungarian
 *   inside each node), its exhaustive twin policy_node_place_brute, and policy_node_bytes.
 * Does not: change which units share a bin (so loads equal post's), or model time.
 * Source: OrchMLLM's node-wise rearrangement (REFERENCE.md opening paragraph: an ILP there);
 *   here the ILP is replaced by assignment problems, exact for one level at a time.
 * Cost (hierarchical): O(n) for the per-(bin, node) byte counts (E <= n of them) and their
 *   radix sort, a K x K Hungarian (O(K^3) worst, near O(K^2) when the greedy grouping already
 *   matches nodes), K Hungarians of g x g: 1.3 ms at D = 2560, g = 8 (bench/RESULTS.md). */
#include <string.h>

#include "sim/balance/part_internal.h"
#include "sim/balance/policy_internal.h"

#define NP_NONE UINT32_MAX
#define NP_EXACT_MAX_D 64u
/* The exact path folds (inter, intra) into one double cost inter * W + intra, W = total + 1;
 * that is exact while (total + 1)^2 + total < 2^53. */
#define NP_EXACT_MAX_BYTES ((uint64_t)1 << 26)

void policy_node_bytes(uint64_t *inter, uint64_t *intra, const uint32_t *rank_of_bin,
                       const uint32_t *unit_bin, const uint32_t *unit_src,
                       const uint64_t *unit_bytes, uint32_t n, uint32_t g) {
    uint64_t ie = 0, ia = 0;
    if (g == 0) g = 1;
    for (uint32_t u = 0; u < n; u++) {
        uint32_t r = rank_of_bin[unit_bin[u]], src = unit_src[u];
        if (r == src) continue;
        if (r / g == src / g)
            ia += unit_bytes[u];
        else
            ie += unit_bytes[u];
    }
    *inter = ie;
    *intra = ia;
}

/* Units ordered by bin: s->order[s->bstart[b] .. s->bstart[b + 1]). */
static OsStatus sort_by_bin(PolicyScratch *s, const uint32_t *unit_bin, uint32_t n, uint32_t D) {
    OsStatus st = OS_OK;
    OS_CHECK(POL_GROW(s->order, s->order_cap, n));
    OS_CHECK(POL_GROW(s->bstart, s->bstart_cap, (size_t)D + 1));
    OS_CHECK(POL_GROW(s->perm, s->perm_cap, (size_t)D + 1));
    memset(s->bstart, 0, ((size_t)D + 1) * sizeof *s->bstart);
    for (uint32_t u = 0; u < n; u++) {
        if (unit_bin[u] >= D)
            OS_FAIL(OS_ERR_ARG, "node placement", "unit_bin", NULL, "unit %u in bin %u of %u", u,
                    unit_bin[u], D);
        s->bstart[unit_bin[u] + 1]++;
    }
    for (uint32_t b = 0; b < D; b++) s->bstart[b + 1] += s->bstart[b];
    memcpy(s->perm, s->bstart, (size_t)D * sizeof *s->perm);
    for (uint32_t u = 0; u < n; u++) s->order[s->perm[unit_bin[u]]++] = u;
fail:
    return st;
}

static OsStatus place_exact(uint32_t *rank_of_bin, const uint32_t *unit_src, const uint64_t *unit_bytes,
                            uint32_t D, uint32_t g, uint64_t total, PolicyScratch *s) {
    OsStatus st = OS_OK;
    uint32_t K = D / g;
    double W = (double)total + 1.0, tot = 0.0;
    OS_CHECK(POL_GROW(s->mat, s->mat_cap, (size_t)D * D));
    OS_CHECK(POL_GROW(s->key, s->key_cap, (size_t)D * K + (size_t)D * D));
    OS_CHECK(POL_GROW(s->btotal, s->btotal_cap, D));
    uint64_t *fn = s->key, *fr = s->key + (size_t)D * K; /* [D][K] from node, [D][D] from rank */
    memset(s->key, 0, ((size_t)D * K + (size_t)D * D) * sizeof *s->key);
    for (uint32_t b = 0; b < D; b++) {
        s->btotal[b] = 0;
        for (uint32_t k = s->bstart[b]; k < s->bstart[b + 1]; k++) {
            uint32_t u = s->order[k];
            s->btotal[b] += unit_bytes[u];
            fn[(size_t)b * K + unit_src[u] / g] += unit_bytes[u];
            fr[(size_t)b * D + unit_src[u]] += unit_bytes[u];
        }
    }
    for (uint32_t b = 0; b < D; b++)
        for (uint32_t r = 0; r < D; r++) {
            uint64_t from_node = fn[(size_t)b * K + r / g];
            s->mat[(size_t)b * D + r] =
                (double)(s->btotal[b] - from_node) * W + (double)(from_node - fr[(size_t)b * D + r]);
        }
    OS_CHECK(part_hungarian(rank_of_bin, &tot, s->mat, D, s->ps));
fail:
    return st;
}

/* Bins grouped per node: s->members[s->mstart[k] .. s->mstart[k + 1]) for node_of[b]. */
static void group_bins(PolicyScratch *s, const uint32_t *node_of, uint32_t D, uint32_t K) {
    memset(s->mstart, 0, ((size_t)K + 1) * sizeof *s->mstart);
    for (uint32_t b = 0; b < D; b++) s->mstart[node_of[b] + 1]++;
    for (uint32_t k = 0; k < K; k++) s->mstart[k + 1] += s->mstart[k];
    memcpy(s->nfree, s->mstart, (size_t)K * sizeof *s->nfree);
    for (uint32_t b = 0; b < D; b++) s->members[s->nfree[node_of[b]]++] = b;
}

static OsStatus place_hier(uint32_t *rank_of_bin, const uint32_t *unit_src, const uint64_t *unit_bytes,
                           uint32_t n, uint32_t D, uint32_t g, PolicyScratch *s) {
    OsStatus st = OS_OK;
    uint32_t K = D / g, E = 0;
    uint64_t all = 0, keep_identity = 0;
    double tot = 0.0;
    OS_CHECK(POL_GROW(s->acc, s->acc_cap, K));
    OS_CHECK(POL_GROW(s->touched, s->touched_cap, K));
    OS_CHECK(POL_GROW(s->tb, s->tb_cap, n));
    OS_CHECK(POL_GROW(s->tk, s->tk_cap, n));
    OS_CHECK(POL_GROW(s->tby, s->tby_cap, n));
    OS_CHECK(POL_GROW(s->key, s->key_cap, n));
    OS_CHECK(POL_GROW(s->btotal, s->btotal_cap, D));
    OS_CHECK(POL_GROW(s->bnode, s->bnode_cap, D));
    OS_CHECK(POL_GROW(s->nfree, s->nfree_cap, (size_t)K + 1));
    OS_CHECK(POL_GROW(s->mstart, s->mstart_cap, (size_t)K + 1));
    OS_CHECK(POL_GROW(s->members, s->members_cap, D));
    OS_CHECK(POL_GROW(s->gperm, s->gperm_cap, K > g ? K : g));
    OS_CHECK(POL_GROW(s->mat, s->mat_cap, (size_t)K * K > (size_t)g * g ? (size_t)K * K : (size_t)g * g));
    /* 1. Per bin, the bytes it holds from each source node: E <= n sparse (bin, node, bytes). */
    memset(s->acc, 0, (size_t)K * sizeof *s->acc);
    for (uint32_t b = 0; b < D; b++) {
        uint32_t nt = 0;
        s->btotal[b] = 0;
        for (uint32_t k = s->bstart[b]; k < s->bstart[b + 1]; k++) {
            uint32_t u = s->order[k], nk = unit_src[u] / g;
            if (!unit_bytes[u]) continue;
            if (!s->acc[nk]) s->touched[nt++] = nk;
            s->acc[nk] += unit_bytes[u];
            s->btotal[b] += unit_bytes[u];
        }
        all += s->btotal[b];
        for (uint32_t t = 0; t < nt; t++) {
            uint32_t nk = s->touched[t];
            s->tb[E] = b;
            s->tk[E] = nk;
            s->tby[E] = s->acc[nk];
            s->key[E] = ~s->acc[nk]; /* ascending radix on ~bytes = largest first, stable */
            E++;
            if (nk == b / g) keep_identity += s->acc[nk];
            s->acc[nk] = 0;
        }
    }
    uint64_t inter_identity = all - keep_identity;
    /* 2. Greedy grouping: largest (bin, node) byte counts first, while the node has a slot. */
    if (K > 1) {
        OS_CHECK(part_sort_u64(s->ps, s->key, E));
        for (uint32_t b = 0; b < D; b++) s->bnode[b] = NP_NONE;
        for (uint32_t k = 0; k < K; k++) s->nfree[k] = g;
        for (uint32_t e = 0; e < E; e++) {
            uint32_t t = s->ps->idx[e], b = s->tb[t], k = s->tk[t];
            if (s->bnode[b] == NP_NONE && s->nfree[k]) {
                s->bnode[b] = k;
                s->nfree[k]--;
            }
        }
        for (uint32_t b = 0, k = 0; b < D; b++) {
            if (s->bnode[b] != NP_NONE) continue;
            while (!s->nfree[k]) k++;
            s->bnode[b] = k;
            s->nfree[k]--;
        }
        /* 3. Groups onto nodes: cost[G][k] = bytes of group G not from node k. */
        for (size_t i = 0; i < (size_t)K * K; i++) s->mat[i] = 0.0;
        /* Row G starts at the group's total bytes: one O(D) pass, then K^2 for the rows. */
        for (uint32_t k = 0; k < K; k++) s->acc[k] = 0;
        for (uint32_t b = 0; b < D; b++) s->acc[s->bnode[b]] += s->btotal[b];
        for (uint32_t G = 0; G < K; G++)
            for (uint32_t k = 0; k < K; k++) s->mat[(size_t)G * K + k] = (double)s->acc[G];
        for (uint32_t e = 0; e < E; e++) s->mat[(size_t)s->bnode[s->tb[e]] * K + s->tk[e]] -= (double)s->tby[e];
        OS_CHECK(part_hungarian(s->gperm, &tot, s->mat, K, s->ps));
        uint64_t keep_h = 0;
        for (uint32_t e = 0; e < E; e++)
            if (s->gperm[s->bnode[s->tb[e]]] == s->tk[e]) keep_h += s->tby[e];
        if (all - keep_h <= inter_identity) {
            for (uint32_t b = 0; b < D; b++) s->bnode[b] = s->gperm[s->bnode[b]];
        } else { /* the greedy is a heuristic: never do worse than leaving bins where they are */
            for (uint32_t b = 0; b < D; b++) s->bnode[b] = b / g;
        }
    } else {
        for (uint32_t b = 0; b < D; b++) s->bnode[b] = 0;
    }
    /* 4. Inside each node: bins onto its g ranks, keeping the most bytes on their own rank. */
    group_bins(s, s->bnode, D, K);
    for (uint32_t k = 0; k < K; k++) {
        const uint32_t *mb = s->members + s->mstart[k];
        for (size_t i = 0; i < (size_t)g * g; i++) s->mat[i] = 0.0;
        for (uint32_t i = 0; i < g; i++)
            for (uint32_t q = s->bstart[mb[i]]; q < s->bstart[mb[i] + 1]; q++) {
                uint32_t u = s->order[q], src = unit_src[u];
                if (src / g == k) s->mat[(size_t)i * g + src % g] -= (double)unit_bytes[u];
            }
        OS_CHECK(part_hungarian(s->gperm, &tot, s->mat, g, s->ps));
        for (uint32_t i = 0; i < g; i++) rank_of_bin[mb[i]] = k * g + s->gperm[i];
    }
fail:
    return st;
}

OsStatus policy_node_place(uint32_t *rank_of_bin, const uint32_t *unit_bin, const uint32_t *unit_src,
                           const uint64_t *unit_bytes, uint32_t n, uint32_t D, uint32_t g,
                           NodePlaceMode mode, PolicyScratch *s) {
    OsStatus st = OS_OK;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "node placement", "D", NULL, "no ranks");
    if (g == 0 || g > D) g = D;
    if (D % g)
        OS_FAIL(OS_ERR_ARG, "node placement", "g", "use whole nodes", "%u ranks per node do not divide %u", g, D);
    uint64_t total = 0;
    for (uint32_t u = 0; u < n; u++) {
        if (unit_src[u] >= D)
            OS_FAIL(OS_ERR_ARG, "node placement", "unit_src", NULL, "unit %u from rank %u of %u", u,
                    unit_src[u], D);
        total += unit_bytes[u];
    }
    OS_CHECK(sort_by_bin(s, unit_bin, n, D));
    int exact_ok = D <= NP_EXACT_MAX_D && total < NP_EXACT_MAX_BYTES;
    if (mode == NODE_PLACE_EXACT && !exact_ok)
        OS_FAIL(OS_ERR_RANGE, "node placement", "mode", "use NODE_PLACE_HIER or AUTO",
                "exact placement needs D <= %u and < 2^26 bytes (D = %u, %llu bytes)", NP_EXACT_MAX_D,
                D, (unsigned long long)total);
    if (mode == NODE_PLACE_EXACT || (mode == NODE_PLACE_AUTO && exact_ok))
        OS_CHECK(place_exact(rank_of_bin, unit_src, unit_bytes, D, g, total, s));
    else
        OS_CHECK(place_hier(rank_of_bin, unit_src, unit_bytes, n, D, g, s));
fail:
    return st;
}

/* ---- slow twin ---------------------------------------------------------------------------- */

typedef struct {
    const uint32_t *ubin, *usrc;
    const uint64_t *ubytes;
    uint32_t n, D, g;
    uint32_t cur[8], best[8];
    uint64_t best_inter, best_intra;
} NodeSearch;

static void node_rec(NodeSearch *a, uint32_t b, uint32_t used) {
    if (b == a->D) {
        uint64_t ie, ia;
        policy_node_bytes(&ie, &ia, a->cur, a->ubin, a->usrc, a->ubytes, a->n, a->g);
        if (ie < a->best_inter || (ie == a->best_inter && ia < a->best_intra)) {
            a->best_inter = ie;
            a->best_intra = ia;
            memcpy(a->best, a->cur, sizeof a->cur);
        }
        return;
    }
    for (uint32_t r = 0; r < a->D; r++) {
        if (used & (1u << r)) continue;
        a->cur[b] = r;
        node_rec(a, b + 1, used | (1u << r));
    }
}

OsStatus policy_node_place_brute(uint32_t *rank_of_bin, const uint32_t *unit_bin,
                                 const uint32_t *unit_src, const uint64_t *unit_bytes, uint32_t n,
                                 uint32_t D, uint32_t g) {
    OsStatus st = OS_OK;
    if (D == 0 || D > 8) OS_FAIL(OS_ERR_RANGE, "node placement", "D", "use policy_node_place", "exhaustive placement needs 1 <= D <= 8 (got %u)", D);
    if (g == 0 || g > D) g = D;
    NodeSearch a = {.ubin = unit_bin, .usrc = unit_src, .ubytes = unit_bytes, .n = n, .D = D, .g = g,
                    .best_inter = UINT64_MAX, .best_intra = UINT64_MAX};
    node_rec(&a, 0, 0);
    memcpy(rank_of_bin, a.best, D * sizeof *rank_of_bin);
fail:
    return st;
}
