/* policy.c — the policy registry, the policy scratch, plan checking and the oracle bound.
 * Implements: policy.h except the policies themselves (sim/balance/policy_<name>.c) and the
 *   node-wise placement (sim/balance/node_place.c).
 * Does not: run a policy (callers pick a row and call fn).
 * Source: DESIGN.md §4 (policy list, oracle = max(total / D, largest unit)). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/balance/policy_internal.h"

/* equal-count's entry point (sim/balance/policy_equal_count.c); its prototype belongs with the
 * others in policy_internal.h, declared here until that header takes it. */
OsStatus balance_equal_count(Plan *out, const StepWork *w, PolicyScratch *s);

/* One row per policy (STYLE habit 5): help, `compare --policy all` and "did you mean" read it.
 * The last field is the modelled planning cost (policy.h PolicyCost): the shape is the
 * algorithm's, ref_s its runtime on bench_balance's D = 2560 x 16 step from bench/RESULTS.md
 * ("Balancers", policies table, per = 16: none 0.11, sorted 0.48, lpt 1.04, kk 14.2, post 3.53,
 * post-enc 2.31, post-node 9.25 ms). isf (since its bisection search) and equal-count are in the
 * re-measured paragraph below that table only, taken on a loaded VM (isf 38.4, equal-count
 * 3.98 ms, while lpt read 1.26 ms): scaled by lpt's 1.04 / 1.26 to the table's load, 31.7 and
 * 3.28 ms. */
#define COST(shape, units, ms) {POLICY_COST_##shape, POLICY_UNITS_##units, (ms) * 1e-3, POLICY_PLANS_ALL}
#define COST_ENC(shape, units, ms) {POLICY_COST_##shape, POLICY_UNITS_##units, (ms) * 1e-3, POLICY_PLANS_ENCODERS}
static const Policy POLICIES[] = {
    {"none", "as drawn: every rank keeps its mini-batch (Megatron-LM baseline)", POLICY_PRE,
     balance_none, 0, COST(N, ALL, 0.11)},
    {"sorted", "pre: global batch sorted by LLM tokens, dealt round-robin", POLICY_PRE,
     balance_sorted, 0, COST(NLOGN, EXAMPLES, 0.48)},
    {"lpt", "pre: longest-processing-time greedy on the LLM cost at the loader", POLICY_PRE,
     balance_lpt, 0, COST(NLOGN, EXAMPLES, 1.04)},
    {"kk", "pre: Karmarkar-Karp differencing on the LLM cost at the loader (verl)", POLICY_PRE,
     balance_kk, 0, COST(NLOGN, EXAMPLES, 14.2)},
    {"equal-count", "pre: LPT on the LLM cost, every rank floor/ceil(N/D) examples (LLaVA)",
     POLICY_PRE, balance_equal_count, 0, COST(NLOGN, EXAMPLES, 3.28)},
    {"isf", "pre: OmniBal ISF, randomized 2-D first fit on vision and LLM cost", POLICY_PRE,
     balance_isf, 0, COST(NLOGN, ALL, 31.7)},
    {"post", "OrchMLLM post-balancing: LPT per phase (each encoder, then the LLM)", POLICY_POST,
     balance_post, POLICY_HONORS_ENC_CAP | POLICY_HONORS_LLM_CAP, COST(NLOGN, ALL, 3.53)},
    {"post-enc", "post-balance the encoders only; LLM phase at the home rank", POLICY_POST,
     balance_post_enc, POLICY_HONORS_ENC_CAP, COST_ENC(NLOGN, ALL, 2.31)},
    {"post-node", "post, node-wise: work stays in its node unless the node is overloaded",
     POLICY_POST, balance_post_node, POLICY_HONORS_ENC_CAP | POLICY_HONORS_LLM_CAP,
     COST(NLOGN, ALL, 9.25)},
};
#undef COST
#undef COST_ENC

uint32_t policy_count(void) { return (uint32_t)OS_ARRAY_LEN(POLICIES); }

const Policy *policy_at(uint32_t i) { return i < policy_count() ? &POLICIES[i] : NULL; }

const Policy *policy_find(const char *name) {
    if (!name) return NULL;
    for (uint32_t i = 0; i < policy_count(); i++)
        if (!strcmp(POLICIES[i].name, name)) return &POLICIES[i];
    return NULL;
}

const char *policy_suggest(const char *name) {
    if (!name) return NULL;
    const char *best = NULL;
    size_t bd = (size_t)-1;
    for (uint32_t i = 0; i < policy_count(); i++) {
        size_t d = (size_t)os_edit_distance(name, POLICIES[i].name);
        if (d < bd) {
            bd = d;
            best = POLICIES[i].name;
        }
    }
    /* Suggest only when it looks like a typo: at most 2 edits, or a third of the name. */
    size_t lim = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    return bd <= lim ? best : NULL;
}

static double cost_shape(PolicyCostShape shape, double n) {
    return shape == POLICY_COST_N ? n : n * log2(n + 1.0);
}

double policy_charge_s(const Policy *p, uint64_t N, uint64_t M) {
    if (!p) return 0.0;
    int all = p->cost.units == POLICY_UNITS_ALL;
    double n = (double)N + (all ? (double)M : 0.0);
    double ref = (double)POLICY_COST_REF_N + (all ? (double)POLICY_COST_REF_M : 0.0);
    if (!(n > 0.0)) return 0.0;
    return p->cost.ref_s * cost_shape(p->cost.shape, n) / cost_shape(p->cost.shape, ref);
}

double policy_charge_exposed_frac(const Policy *p, const double *n_phase, uint32_t P) {
    if (!p || p->kind != POLICY_POST) return 0.0;
    uint32_t last = p->cost.phases == POLICY_PLANS_ENCODERS && P > 1 ? P - 1 : P; /* phases planned: [0, last) */
    double tot = 0.0;
    for (uint32_t q = 0; q < last; q++) tot += n_phase[q] > 0 ? cost_shape(p->cost.shape, n_phase[q]) : 0.0;
    double first = P && n_phase[0] > 0 ? cost_shape(p->cost.shape, n_phase[0]) : 0.0;
    return tot > 0.0 ? first / tot : 1.0;
}

const char *policy_charge_desc(const Policy *p) {
    if (!p) return "-";
    int all = p->cost.units == POLICY_UNITS_ALL;
    if (p->cost.shape == POLICY_COST_N) return all ? "n over examples + items" : "n over examples";
    return all ? "n log n over examples + items" : "n log n over examples";
}

OsStatus policy_scratch_create(PolicyScratch **out) {
    OsStatus st = OS_OK;
    PolicyScratch *s = calloc(1, sizeof *s);
    ALLOC_CHECK(s);
    OS_CHECK(part_scratch_create(&s->ps));
    *out = s;
    return OS_OK;
fail:
    free(s);
    return st;
}

void policy_scratch_destroy(PolicyScratch *s) {
    if (!s) return;
    part_scratch_destroy(s->ps);
    void *arrays[] = {s->unit, s->dbin, s->dload, s->dused, s->dmax, s->w, s->len, s->size, s->bin, s->bcap, s->nbin, s->nsrc, s->ex_bin,
                      s->rank_of_bin, s->nbytes, s->order, s->bstart, s->touched, s->tb, s->tk,
                      s->bnode, s->nfree, s->mstart, s->members, s->perm, s->gperm, s->acc, s->tby,
                      s->btotal, s->key, s->mat, s->iv, s->ic, s->gv, s->gc, s->group, s->best,
                      s->pool, s->open, s->kept, s->ift, s->ilt, s->nunit,
                      s->pn_bin, s->pn_rank, s->pn_order, s->nb_node, s->nb_srcn, s->nb_home,
                      s->nb_ubin, s->nb_rorder, s->nb_lorder, s->nb_porder, s->nb_pstart,
                      s->nb_nstart, s->nb_ncur, s->nb_heap, s->nb_hpos, s->nb_touch, s->nb_perm,
                      s->nb_bheap, s->nb_bpos, s->nb_kb, s->nb_used, s->nb_scap, s->nb_acc,
                      s->nb_bused, s->nb_ratio, s->nb_load, s->nb_cap, s->nb_room, s->nb_mat,
                      s->nb_bload, s->nb_dload, s->nb_dirty, s->nb_gcol, s->nb_rkey, s->nb_rob, s->nb_nodeof,
                      s->pn_units, s->pn_len, s->pn_lbin, s->pn_cnt, s->pn_max};
    for (size_t i = 0; i < OS_ARRAY_LEN(arrays); i++) free(arrays[i]);
    free(s);
}

/* The field names ("example 17", "phase 0 rank 3") are formatted only once a check fails:
 * formatting one per example and item up front cost ~19% of a 2560-GPU replay (callgrind). */
#define PC_FAIL(code, hint, ...) OS_FAIL((code), pn, f, (hint), __VA_ARGS__)

OsStatus plan_check(const Plan *p, const StepWork *w, const char *policy_name) {
    OsStatus st = OS_OK;
    uint64_t *used = NULL;
    const char *pn = policy_name ? policy_name : "plan";
    const Policy *pol = policy_find(policy_name);
    const char *bug = "a balancing bug: report it";
    int pre = pol && pol->kind == POLICY_PRE, post = pol && pol->kind == POLICY_POST;
    char f[64];
    if (!p || !p->home || !p->ex_rank || (w->M && !p->it_rank))
        OS_FAIL(OS_ERR_ARG, pn, "plan", NULL, "plan arrays are missing");
    for (uint32_t i = 0; i < w->N; i++) {
        int bad_range = p->home[i] >= w->D || p->ex_rank[i] >= w->D;
        int bad_pre = pre && p->ex_rank[i] != p->home[i];
        int bad_post = post && p->home[i] != w->drawn[i];
        if (!(bad_range | bad_pre | bad_post)) continue;
        snprintf(f, sizeof f, "example %u", i);
        if (bad_range)
            PC_FAIL(OS_ERR_INTERNAL, bug, "home %u / LLM rank %u outside [0, %u)", p->home[i],
                    p->ex_rank[i], w->D);
        if (bad_pre)
            PC_FAIL(OS_ERR_INTERNAL, bug,
                    "pre-balancing policy moved it after the loader (home %u, LLM rank %u)",
                    p->home[i], p->ex_rank[i]);
        PC_FAIL(OS_ERR_INTERNAL, bug, "post-balancing policy changed its home (drawn %u, home %u)",
                w->drawn[i], p->home[i]);
    }
    for (uint32_t j = 0; j < w->M; j++) {
        int bad_ref = w->it_example[j] >= w->N || w->it_phase[j] + 1u >= w->P;
        int bad_rank = !bad_ref && p->it_rank[j] >= w->D;
        int bad_pre = !bad_ref && !bad_rank && pre && p->it_rank[j] != p->home[w->it_example[j]];
        if (!(bad_ref | bad_rank | bad_pre)) continue;
        snprintf(f, sizeof f, "item %u", j);
        if (bad_ref)
            PC_FAIL(OS_ERR_ARG, NULL, "example %u / phase %u out of range", w->it_example[j],
                    w->it_phase[j]);
        if (bad_rank)
            PC_FAIL(OS_ERR_INTERNAL, bug, "encoder rank %u outside [0, %u)", p->it_rank[j], w->D);
        PC_FAIL(OS_ERR_INTERNAL, bug,
                "pre-balancing policy runs it on rank %u, not its example's home %u", p->it_rank[j],
                p->home[w->it_example[j]]);
    }
    uint32_t honors = pol ? pol->honors : 0;
    const PolicyOptions *o = w->opt;
    if (!o || !(honors & (POLICY_HONORS_ENC_CAP | POLICY_HONORS_LLM_CAP))) goto fail;
    used = calloc(w->D ? w->D : 1, sizeof *used); /* a check, not the balancer: one small block */
    ALLOC_CHECK(used);
    if ((honors & POLICY_HONORS_ENC_CAP) && o->cap_enc_positions) {
        for (uint32_t e = 0; e + 1 < w->P; e++) {
            memset(used, 0, w->D * sizeof *used);
            for (uint32_t j = 0; j < w->M; j++)
                if (w->it_phase[j] == e) used[p->it_rank[j]] += w->it_len[j];
            for (uint32_t r = 0; r < w->D; r++) {
                if (used[r] <= o->cap_enc_positions) continue;
                snprintf(f, sizeof f, "phase %u rank %u", e, r);
                PC_FAIL(OS_ERR_INTERNAL, bug, "%llu encoder positions exceed the cap %llu",
                        (unsigned long long)used[r], (unsigned long long)o->cap_enc_positions);
            }
        }
    }
    if ((honors & POLICY_HONORS_LLM_CAP) && o->cap_llm_tokens) {
        memset(used, 0, w->D * sizeof *used);
        for (uint32_t i = 0; i < w->N; i++) used[p->ex_rank[i]] += w->ex_tokens[i];
        for (uint32_t r = 0; r < w->D; r++) {
            if (used[r] <= o->cap_llm_tokens) continue;
            snprintf(f, sizeof f, "LLM phase rank %u", r);
            PC_FAIL(OS_ERR_INTERNAL, bug, "%llu LLM tokens exceed the cap %llu",
                    (unsigned long long)used[r], (unsigned long long)o->cap_llm_tokens);
        }
    }
fail:
    free(used);
    return st;
}

double policy_oracle_phase(const StepWork *w, uint32_t phase) {
    double sum = 0.0, mx = 0.0;
    if (phase + 1 >= w->P) { /* the LLM phase (the last) */
        for (uint32_t i = 0; i < w->N; i++) {
            sum += w->ex_cost[i];
            mx = w->ex_cost[i] > mx ? w->ex_cost[i] : mx;
        }
    } else {
        for (uint32_t j = 0; j < w->M; j++) {
            if (w->it_phase[j] != phase) continue;
            sum += w->it_cost[j];
            mx = w->it_cost[j] > mx ? w->it_cost[j] : mx;
        }
    }
    double avg = w->D ? sum / w->D : sum;
    return avg > mx ? avg : mx;
}
