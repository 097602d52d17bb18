/* policy_internal.h — private to sim/balance/ and sim/policy.c: the PolicyScratch layout,
 *   the policy functions the registry rows point at, and helpers the policies share.
 * Implements: nothing public; one declaration per policy file (policy_<name>.c).
 * Does not: appear in any public header.
 * Source: DESIGN.md §4. */
#ifndef OS_POLICY_INTERNAL_H
#define OS_POLICY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sim/balance/partition.h"
#include "sim/base/util.h"
#include "sim/policy.h"

struct PolicyScratch {
    PartScratch *ps;
    /* one phase's units */
    uint32_t *unit;   /* [M] item indices of the phase */
    double *w;        /* [max(N, M)] unit weights */
    uint32_t *len;    /* [max(N, M)] unit lengths (padded objective, caps) */
    uint64_t *size;   /* [max(N, M)] unit sizes against the caps */
    uint32_t *bin;    /* [max(N, M)] unit bins */
    uint64_t *bcap;   /* [D] per-bin capacity */
    uint32_t *dbin;   /* [max(N, M)] the drawn rank of each unit */
    double *dload;    /* [D] drawn per-rank load (objective units) */
    uint64_t *dused, *dmax; /* [D] drawn per-rank size / max length */
    size_t unit_cap, w_cap, len_cap, size_cap, bin_cap, bcap_cap, dbin_cap, dload_cap, dused_cap, dmax_cap;
    /* post-node: the units of a phase with their source rank and bytes, [N + M] */
    uint32_t *nbin, *nsrc, *ex_bin, *rank_of_bin;
    uint64_t *nbytes;
    size_t nbin_cap, nsrc_cap, ex_bin_cap, rank_of_bin_cap, nbytes_cap;
    /* node placement internals */
    uint32_t *order, *bstart, *touched, *tb, *tk, *bnode, *nfree, *mstart, *members, *perm, *gperm;
    uint64_t *acc, *tby, *btotal, *key;
    double *mat;
    size_t order_cap, bstart_cap, touched_cap, tb_cap, tk_cap, bnode_cap, nfree_cap, mstart_cap,
        members_cap, perm_cap, gperm_cap, acc_cap, tby_cap, btotal_cap, key_cap, mat_cap;
    /* isf: [N] and [D] */
    double *iv, *ic, *gv, *gc;
    uint32_t *group, *best, *pool, *open;
    unsigned char *kept;
    size_t iv_cap, ic_cap, gv_cap, gc_cap, group_cap, best_cap, pool_cap, open_cap, kept_cap;
};

#define POL_GROW(ptr, capv, n) os_grow((void **)&(ptr), &(capv), (size_t)(n), sizeof(*(ptr)))

/* The policies (one file each). */
OsStatus balance_none(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_sorted(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_lpt(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_kk(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_isf(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_post(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_post_enc(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_post_node(Plan *out, const StepWork *w, PolicyScratch *s);

/* Shared by the policies (post_common.c). */
/* Shape checks on a StepWork (D, P, drawn, it_example, it_phase in range). */
OsStatus pol_validate(const StepWork *w, const char *policy);
/* Pre-balancing: examples already have home; ex_rank = home, items follow their example. */
void pol_pre_finish(Plan *out, const StepWork *w);
/* Post-balance encoder phase `phase`: it_bin[j] for its items (others untouched); leaves the
 * phase's item list in s->unit[0 .. *m). Objective and cap_enc_positions from w->opt. */
OsStatus pol_post_phase(uint32_t *it_bin, uint32_t *m, const StepWork *w, uint32_t phase,
                        PolicyScratch *s, const char *policy);
/* Post-balance the LLM phase: ex_bin[i] for every example (objective, cap_llm_tokens). */
OsStatus pol_post_llm(uint32_t *ex_bin, const StepWork *w, PolicyScratch *s, const char *policy);

#endif
