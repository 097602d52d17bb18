/* post_common.c — what the policies share: StepWork checks, the pre-balancing epilogue, and
 *   post-balancing of one phase under the chosen objective and cap.
 * Implements: pol_validate, pol_pre_finish, pol_post_phase, pol_post_llm
 *   (policy_internal.h).
 * Does not: decide anything per policy; each policy file composes these.
 * Source: DESIGN.md §4; OrchMLLM post-balancing (REFERENCE.md opening paragraph): each phase
 *   is rebalanced for its own cost, greedily, longest first onto the least-loaded rank. */
#include <stdio.h>

#include "sim/balance/policy_internal.h"

OsStatus pol_validate(const StepWork *w, const char *policy) {
    OsStatus st = OS_OK;
    char f[48];
    if (w->D == 0) OS_FAIL(OS_ERR_ARG, policy, "D", NULL, "no data-parallel ranks");
    if (w->P == 0 || w->P > 256)
        OS_FAIL(OS_ERR_ARG, policy, "P", NULL, "%u phases (need 1 LLM phase + up to 255 encoders)", w->P);
    if (!w->opt) OS_FAIL(OS_ERR_ARG, policy, "opt", NULL, "no policy options");
    if (w->N && (!w->drawn || !w->ex_cost || !w->ex_tokens || !w->ex_bytes))
        OS_FAIL(OS_ERR_ARG, policy, "examples", NULL, "example arrays missing");
    if (w->M && (!w->it_example || !w->it_phase || !w->it_cost || !w->it_len || !w->it_in_bytes ||
                 !w->it_out_bytes))
        OS_FAIL(OS_ERR_ARG, policy, "items", NULL, "item arrays missing");
    for (uint32_t i = 0; i < w->N; i++)
        if (w->drawn[i] >= w->D) {
            snprintf(f, sizeof f, "example %u", i);
            OS_FAIL(OS_ERR_ARG, policy, f, NULL, "drawn by rank %u of %u", w->drawn[i], w->D);
        }
    for (uint32_t j = 0; j < w->M; j++)
        if (w->it_example[j] >= w->N || (uint32_t)w->it_phase[j] + 1 >= w->P) {
            snprintf(f, sizeof f, "item %u", j);
            OS_FAIL(OS_ERR_ARG, policy, f, NULL, "example %u of %u, phase %u of %u encoders",
                    w->it_example[j], w->N, w->it_phase[j], w->P - 1);
        }
fail:
    return st;
}

void pol_pre_finish(Plan *out, const StepWork *w) {
    for (uint32_t i = 0; i < w->N; i++) out->ex_rank[i] = out->home[i];
    for (uint32_t j = 0; j < w->M; j++) out->it_rank[j] = out->home[w->it_example[j]];
    out->hierarchical = 0;
}

double pol_weight(BalanceObjective obj, double cost, uint32_t len) {
    double l = (double)len;
    switch (obj) {
    case OBJ_COST: return cost;
    case OBJ_QUADRATIC: return l * l;
    case OBJ_LINEAR:
    case OBJ_PADDED:
    default: return l;
    }
}

/* Partition n units (weights w, lengths len, sizes for the cap) into D bins by objective.
 * OBJ_PADDED with a cap: the padded greedy knows no caps, so it falls back to capacity LPT on
 * lengths (a padded bin's load is bounded by its length sum times the max length anyway).
 * drawn[u] is the unit's rank before balancing: when that split already has a max load no
 * worse than the balancer's (and fits the cap), it is kept, so post never does worse than
 * none and moves nothing it need not. */
static OsStatus partition_obj(uint32_t *bin, PolicyScratch *s, const double *cost, const uint32_t *len,
                              const uint32_t *drawn, uint32_t n, uint32_t D, BalanceObjective obj,
                              uint64_t cap) {
    OsStatus st = OS_OK;
    double mx = 0.0;
    OS_CHECK(POL_GROW(s->w, s->w_cap, n));
    OS_CHECK(POL_GROW(s->size, s->size_cap, n));
    OS_CHECK(POL_GROW(s->bcap, s->bcap_cap, D));
    OS_CHECK(POL_GROW(s->dload, s->dload_cap, D));
    OS_CHECK(POL_GROW(s->dused, s->dused_cap, D));
    OS_CHECK(POL_GROW(s->dmax, s->dmax_cap, D));
    if ((unsigned)obj > OBJ_PADDED)
        OS_FAIL(OS_ERR_ARG, "policy options", "objective", NULL, "unknown objective %d", (int)obj);
    for (uint32_t u = 0; u < n; u++) {
        s->w[u] = pol_weight(obj, cost[u], len[u]);
        s->size[u] = len[u];
    }
    int padded = obj == OBJ_PADDED && !cap;
    if (padded) {
        OS_CHECK(part_padded(bin, &mx, len, n, D, s->ps));
    } else {
        for (uint32_t b = 0; b < D; b++) s->bcap[b] = cap;
        OS_CHECK(part_lpt(bin, &mx, s->w, n, D, cap ? s->size : NULL, cap ? s->bcap : NULL, s->ps));
    }
    /* The drawn split, measured the same way. */
    for (uint32_t b = 0; b < D; b++) {
        s->dload[b] = 0.0;
        s->dused[b] = 0;
        s->dmax[b] = 0;
    }
    for (uint32_t u = 0; u < n; u++) {
        uint32_t r = drawn[u];
        s->dload[r] += padded ? 1.0 : s->w[u]; /* padded: count now, times max below */
        s->dused[r] += len[u];
        s->dmax[r] = len[u] > s->dmax[r] ? len[u] : s->dmax[r];
    }
    double dmx = 0.0;
    int fits = 1;
    for (uint32_t b = 0; b < D; b++) {
        double l = padded ? s->dload[b] * (double)s->dmax[b] : s->dload[b];
        dmx = l > dmx ? l : dmx;
        if (cap && s->dused[b] > cap) fits = 0;
    }
    if (fits && dmx <= mx)
        for (uint32_t u = 0; u < n; u++) bin[u] = drawn[u];
fail:
    return st;
}

OsStatus pol_post_phase(uint32_t *it_bin, uint32_t *m_out, const StepWork *w, uint32_t phase,
                        PolicyScratch *s, const char *policy) {
    OsStatus st = OS_OK;
    uint32_t m = 0;
    OS_CHECK(POL_GROW(s->unit, s->unit_cap, w->M));
    for (uint32_t j = 0; j < w->M; j++)
        if (w->it_phase[j] == phase) s->unit[m++] = j;
    OS_CHECK(POL_GROW(s->len, s->len_cap, m));
    OS_CHECK(POL_GROW(s->bin, s->bin_cap, m));
    OS_CHECK(POL_GROW(s->dbin, s->dbin_cap, m));
    /* Gather the phase's costs next to their lengths: the partitioners take dense arrays. */
    double *cost = NULL;
    OS_CHECK(POL_GROW(s->iv, s->iv_cap, m));
    cost = s->iv;
    for (uint32_t u = 0; u < m; u++) {
        cost[u] = w->it_cost[s->unit[u]];
        s->len[u] = w->it_len[s->unit[u]];
        s->dbin[u] = w->drawn[w->it_example[s->unit[u]]];
    }
    st = partition_obj(s->bin, s, cost, s->len, s->dbin, m, w->D, w->opt->objective, w->opt->cap_enc_positions);
    if (st == OS_ERR_RANGE) {
        uint32_t j = s->unit[part_last_fail_unit(s->ps)];
        char f[64];
        snprintf(f, sizeof f, "phase %u item %u", phase, j);
        os_clear_error();
        OS_FAIL(OS_ERR_RANGE, policy, f, "raise --cap-positions or shrink the item",
                "item %u (example %u, %u positions) fits on no rank under the encoder cap of %llu",
                j, w->it_example[j], w->it_len[j], (unsigned long long)w->opt->cap_enc_positions);
    }
    OS_CHECK(st);
    for (uint32_t u = 0; u < m; u++) it_bin[s->unit[u]] = s->bin[u];
    *m_out = m;
fail:
    return st;
}

OsStatus pol_post_llm(uint32_t *ex_bin, const StepWork *w, PolicyScratch *s, const char *policy) {
    OsStatus st = OS_OK;
    st = partition_obj(ex_bin, s, w->ex_cost, w->ex_tokens, w->drawn, w->N, w->D, w->opt->objective,
                       w->opt->cap_llm_tokens);
    if (st == OS_ERR_RANGE) {
        uint32_t i = part_last_fail_unit(s->ps);
        char f[64];
        snprintf(f, sizeof f, "LLM phase example %u", i);
        os_clear_error();
        OS_FAIL(OS_ERR_RANGE, policy, f, "raise --cap-tokens or shorten the example",
                "example %u (%u tokens) fits on no rank under the LLM cap of %llu", i,
                w->ex_tokens[i], (unsigned long long)w->opt->cap_llm_tokens);
    }
    OS_CHECK(st);
fail:
    return st;
}
