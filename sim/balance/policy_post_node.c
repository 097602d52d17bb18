/* policy_post_node.c — "post-node": post-balancing whose bins are placed on ranks node-wise.
 *   Each phase is balanced exactly as in post (same per-rank loads, up to a permutation);
 *   then policy_node_place picks which rank runs which bin so that the fewest bytes cross
 *   nodes, then the fewest change rank inside a node. Encoder phases move raw inputs from
 *   their home; the LLM phase moves text from home and encoder outputs from where the items
 *   ran, so it is placed after the encoders. Moves use the node-wise all-to-all.
 * Implements: balance_post_node. Does not: trade balance for locality (loads equal post's).
 * Source: OrchMLLM node-wise all-to-all and rearrangement (REFERENCE.md opening paragraph;
 *   the paper solves an ILP, we solve assignment problems: see policy.h). */
#include "sim/balance/policy_internal.h"

OsStatus balance_post_node(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    const char *pn = "post-node";
    uint32_t m = 0, D = w->D;
    OS_CHECK(pol_validate(w, pn));
    uint32_t g = w->dp_per_node == 0 || w->dp_per_node >= D ? D : w->dp_per_node;
    if (D % g != 0)
        OS_FAIL(OS_ERR_ARG, pn, "dp_per_node", "use whole nodes",
                "%u DP ranks per node do not divide %u ranks", g, D);
    size_t nm = (size_t)w->N + w->M;
    OS_CHECK(POL_GROW(s->nbin, s->nbin_cap, nm));
    OS_CHECK(POL_GROW(s->nsrc, s->nsrc_cap, nm));
    OS_CHECK(POL_GROW(s->nbytes, s->nbytes_cap, nm));
    OS_CHECK(POL_GROW(s->ex_bin, s->ex_bin_cap, w->N));
    OS_CHECK(POL_GROW(s->rank_of_bin, s->rank_of_bin_cap, D));
    for (uint32_t i = 0; i < w->N; i++) out->home[i] = w->drawn[i];
    for (uint32_t e = 0; e + 1 < w->P; e++) {
        OS_CHECK(pol_post_phase(out->it_rank, &m, w, e, s, pn));
        for (uint32_t u = 0; u < m; u++) {
            uint32_t j = s->unit[u];
            s->nbin[u] = out->it_rank[j];
            s->nsrc[u] = w->drawn[w->it_example[j]];
            s->nbytes[u] = w->it_in_bytes[j];
        }
        OS_CHECK(policy_node_place(s->rank_of_bin, s->nbin, s->nsrc, s->nbytes, m, D, g,
                                   NODE_PLACE_AUTO, s));
        for (uint32_t u = 0; u < m; u++) out->it_rank[s->unit[u]] = s->rank_of_bin[s->nbin[u]];
    }
    OS_CHECK(pol_post_llm(s->ex_bin, w, s, pn));
    for (uint32_t i = 0; i < w->N; i++) {
        s->nbin[i] = s->ex_bin[i];
        s->nsrc[i] = w->drawn[i];
        s->nbytes[i] = w->ex_bytes[i];
    }
    for (uint32_t j = 0; j < w->M; j++) {
        s->nbin[w->N + j] = s->ex_bin[w->it_example[j]];
        s->nsrc[w->N + j] = out->it_rank[j];
        s->nbytes[w->N + j] = w->it_out_bytes[j];
    }
    OS_CHECK(policy_node_place(s->rank_of_bin, s->nbin, s->nsrc, s->nbytes, (uint32_t)nm, D, g,
                               NODE_PLACE_AUTO, s));
    for (uint32_t i = 0; i < w->N; i++) out->ex_rank[i] = s->rank_of_bin[s->ex_bin[i]];
    out->hierarchical = 1;
fail:
    return st;
}
