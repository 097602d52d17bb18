/* policy_post_node.c — "post-node": post-balancing that keeps data inside its node.
 *   Per phase (each encoder, then the LLM): post's LPT bins give the reference max rank load;
 *   pol_node_balance then balances node-wise (units stay on the node holding their bytes
 *   unless the node is overloaded; LPT inside each node; bins mapped to the GPUs that hold
 *   their bytes). Guard: when that max load exceeds post's by more than PN_TOL, the phase
 *   falls back to post's bins placed on ranks by policy_node_place (the earlier method:
 *   same loads as post, fewer crossing bytes than post). Encoder phases move raw inputs from
 *   their home; the LLM phase moves text from home and embeddings from where the items ran,
 *   so it is balanced after the encoders. Moves use the node-wise all-to-all.
 * Implements: balance_post_node. Under the padded objective without a cap (a bin costs count x
 *   its longest unit: not additive, so the node-wise path above does not apply) post's bins are
 *   placed node-wise and then refilled with units from their own node wherever a unit fits the
 *   bin's profile (padded_redeal): the same loads as post, far fewer crossing bytes. (Each node
 *   balanced alone was tried: on the demo trace its max load was 30-53% above post's.)
 * Source: OrchMLLM node-wise all-to-all and rearrangement (REFERENCE.md opening paragraph;
 *   the paper solves an ILP, we use a greedy plus assignment problems: see node_balance.c). */
#include <string.h>

#include "sim/balance/part_internal.h"
#include "sim/balance/policy_internal.h"

/* A phase's max rank load may exceed post's by this fraction (else the fallback runs): the
 * price in balance paid for locality, bounded per phase. */
#define PN_TOL 0.01
/* What the node-wise balancing aims for, over post's max. On the demo trace (bench/RESULTS.md)
 * 0.5% cost 0.4% of step time at 64 GPUs, more than the moves it saved; 0.02% keeps every
 * phase within 0.1% of post's imbalance and leaves 0.4-4% of post's inter-node bytes. */
#define PN_TARGET 0.0002

/* One phase: n units and np pieces, all borrowed. The unit arrays are post's own (its
 * weights s->w, sizes s->size, drawn ranks and bins), not copies. */
typedef struct {
    uint32_t n, np;
    const double *w;                            /* [n] loads (objective units) */
    const uint64_t *size;                       /* [n] sizes against cap */
    const uint32_t *home, *bin;                 /* [n] drawn rank, post's bin */
    const uint32_t *punit, *psrc;               /* [np] owning unit, rank holding the piece */
    const uint64_t *pbytes;                     /* [np] bytes */
    uint64_t cap;                               /* per-rank size cap (0 = none) */
} PnPhase;

/* Padded, after post's bins were placed on ranks (rank_of_bin): keep every bin's profile —
 * c_b units, none longer than its longest m_b, so its load stays <= c_b x m_b, post's — and
 * re-deal WHICH units fill it, preferring a unit's home rank, then its home node. Units go
 * longest first; the bins a unit may enter ({b: m_b >= len}) only grow as lengths fall, so any
 * choice among them leaves the rest completable (Hall's condition holds for nested sets: the
 * original assignment proves it), and the fallback pool never runs dry. */
static OsStatus padded_redeal(const PnPhase *ph, uint32_t D, uint32_t g, PolicyScratch *s) {
    OsStatus st = OS_OK;
    uint32_t n = ph->n, big = (n > D ? n : D) + 1;
    OS_CHECK(POL_GROW(s->pn_cnt, s->pn_cnt_cap, D));
    OS_CHECK(POL_GROW(s->pn_max, s->pn_max_cap, D));
    OS_CHECK(POL_GROW(s->pn_units, s->pn_units_cap, big));
    OS_CHECK(POL_GROW(s->pn_len, s->pn_len_cap, big));
    OS_CHECK(POL_GROW(s->pn_lbin, s->pn_lbin_cap, big));
    OS_CHECK(POL_GROW(s->dload, s->dload_cap, D));
    uint32_t *cap = s->pn_cnt, *mlen = s->pn_max, *pool = s->pn_units, *desc = s->pn_len, *bin_of = s->pn_lbin;
    memset(cap, 0, D * sizeof *cap);
    memset(mlen, 0, D * sizeof *mlen);
    for (uint32_t u = 0; u < n; u++) {
        uint32_t b = ph->bin[u], l = (uint32_t)ph->w[u];
        cap[b]++;
        if (l > mlen[b]) mlen[b] = l;
    }
    for (uint32_t b = 0; b < D; b++) {
        bin_of[s->rank_of_bin[b]] = b;
        s->dload[b] = (double)mlen[b];
    }
    OS_CHECK(part_sort_desc(s->ps, s->dload, D));
    memcpy(desc, s->ps->idx, D * sizeof *desc);
    OS_CHECK(part_sort_desc(s->ps, ph->w, n)); /* units, longest first */
    uint32_t bp = 0, top = 0, scan = g < D && g <= 64;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t u = s->ps->idx[k], l = (uint32_t)ph->w[u], home = ph->home[u], b = bin_of[home];
        while (bp < D && mlen[desc[bp]] >= l) pool[top++] = desc[bp++];
        if (!(cap[b] > 0 && mlen[b] >= l)) {
            b = UINT32_MAX;
            for (uint32_t r = home / g * g, e = r + g; scan && r < e && b == UINT32_MAX; r++)
                if (cap[bin_of[r]] > 0 && mlen[bin_of[r]] >= l) b = bin_of[r];
            while (b == UINT32_MAX && top > 0) { /* any bin that may take it; full ones leave lazily */
                if (cap[pool[top - 1]] > 0) b = pool[top - 1];
                else top--;
            }
            if (b == UINT32_MAX) OS_FAIL(OS_ERR_INTERNAL, "post-node", "padded", NULL, "no bin left for unit %u", u);
        }
        cap[b]--;
        s->pn_rank[u] = s->rank_of_bin[b];
    }
fail:
    return st;
}

/* s->pn_rank[u] for every unit of the phase (s->pn_order: post's LPT order of ph->w). */
static OsStatus place_phase(const StepWork *w, const PnPhase *ph, uint32_t g, PolicyScratch *s) {
    OsStatus st = OS_OK;
    uint32_t D = w->D, n = ph->n, np = ph->np;
    BalanceObjective obj = w->opt->objective;
    OS_CHECK(POL_GROW(s->dload, s->dload_cap, D));
    double post_max = part_max_load(ph->bin, ph->w, n, D, s->dload);
    if (obj != OBJ_PADDED || ph->cap) {
        NodeBalIn in = {.n = n, .np = np, .D = D, .g = g, .w = ph->w, .size = ph->size, .cap = ph->cap,
                        .home = ph->home, .piece_unit = ph->punit, .piece_src = ph->psrc,
                        .piece_bytes = ph->pbytes, .bound = post_max * (1.0 + PN_TARGET),
                        .order = s->pn_order}; /* additive objective here: LPT ran and sorted w */
        double mx = 0.0;
        int ok = 0;
        OS_CHECK(pol_node_balance(s->pn_rank, &mx, &ok, &in, s));
        if (ok && mx <= post_max * (1.0 + PN_TOL)) goto fail;
    }
    /* Fallback: post's bins, placed node-wise. */
    for (uint32_t p = 0; p < np; p++) s->nbin[p] = ph->bin[ph->punit[p]];
    OS_CHECK(policy_node_place(s->rank_of_bin, s->nbin, ph->psrc, ph->pbytes, np, D, g, NODE_PLACE_AUTO, s));
    if (obj == OBJ_PADDED && !ph->cap && g < D) OS_CHECK(padded_redeal(ph, D, g, s));
    else
        for (uint32_t u = 0; u < n; u++) s->pn_rank[u] = s->rank_of_bin[ph->bin[u]];
fail:
    return st;
}

OsStatus balance_post_node(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    const char *pn = "post-node";
    uint32_t m = 0, D = w->D;
    OS_CHECK(pol_validate(w, pn));
    uint32_t g = w->dp_per_node == 0 || w->dp_per_node >= D ? D : w->dp_per_node;
    if (D % g != 0)
        OS_FAIL(OS_ERR_ARG, pn, "dp_per_node", "use whole nodes",
                "%u DP ranks per node do not divide %u ranks", g, D);
    size_t nm = (size_t)w->N + w->M + 1, nu = (w->N > w->M ? w->N : w->M) + (size_t)1;
    BalanceObjective obj = w->opt->objective;
    OS_CHECK(POL_GROW(s->nbin, s->nbin_cap, nm));
    OS_CHECK(POL_GROW(s->nsrc, s->nsrc_cap, nm));
    OS_CHECK(POL_GROW(s->nbytes, s->nbytes_cap, nm));
    OS_CHECK(POL_GROW(s->nunit, s->nunit_cap, nm));
    OS_CHECK(POL_GROW(s->rank_of_bin, s->rank_of_bin_cap, D));
    OS_CHECK(POL_GROW(s->pn_bin, s->pn_bin_cap, nu));
    OS_CHECK(POL_GROW(s->pn_rank, s->pn_rank_cap, nu));
    OS_CHECK(POL_GROW(s->pn_order, s->pn_order_cap, nu));
    for (uint32_t u = 0; u < nu; u++) s->nunit[u] = u; /* encoder pieces: one per unit */
    for (uint32_t i = 0; i < w->N; i++) out->home[i] = w->drawn[i];
    for (uint32_t e = 0; e + 1 < w->P; e++) {
        double t0 = os_thread_cpu_now();
        OS_CHECK(pol_post_phase(out->it_rank, &m, w, e, s, pn));
        if (m && (obj != OBJ_PADDED || w->opt->cap_enc_positions)) /* LPT ran: its order */
            memcpy(s->pn_order, s->ps->idx, (size_t)m * sizeof *s->pn_order);
        for (uint32_t u = 0; u < m; u++) s->nbytes[u] = w->it_in_bytes[s->unit[u]];
        /* post left the phase's weights, sizes, drawn ranks and bins in s->w, size, dbin, bin */
        PnPhase ph = {.n = m, .np = m, .w = s->w, .size = s->size, .home = s->dbin, .bin = s->bin,
                      .punit = s->nunit, .psrc = s->dbin, .pbytes = s->nbytes,
                      .cap = w->opt->cap_enc_positions};
        OS_CHECK(place_phase(w, &ph, g, s));
        for (uint32_t u = 0; u < m; u++) out->it_rank[s->unit[u]] = s->pn_rank[u];
        pol_phase_time(out, e, t0);
    }
    double t0 = os_thread_cpu_now();
    OS_CHECK(pol_post_llm(s->pn_bin, w, s, pn));
    if (w->N && (obj != OBJ_PADDED || w->opt->cap_llm_tokens))
        memcpy(s->pn_order, s->ps->idx, (size_t)w->N * sizeof *s->pn_order);
    for (uint32_t i = 0; i < w->N; i++) {
        s->nsrc[i] = w->drawn[i];
        s->nbytes[i] = w->ex_bytes[i];
    }
    for (uint32_t j = 0; j < w->M; j++) { /* embeddings come from where the item was encoded */
        s->nunit[w->N + j] = w->it_example[j];
        s->nsrc[w->N + j] = out->it_rank[j];
        s->nbytes[w->N + j] = w->it_out_bytes[j];
    }
    PnPhase ph = {.n = w->N, .np = w->N + w->M, .w = s->w, .size = s->size, .home = w->drawn,
                  .bin = s->pn_bin, .punit = s->nunit, .psrc = s->nsrc, .pbytes = s->nbytes,
                  .cap = w->opt->cap_llm_tokens};
    OS_CHECK(place_phase(w, &ph, g, s));
    for (uint32_t i = 0; i < w->N; i++) out->ex_rank[i] = s->pn_rank[i];
    out->hierarchical = 1;
    pol_phase_time(out, w->P - 1, t0);
fail:
    return st;
}
