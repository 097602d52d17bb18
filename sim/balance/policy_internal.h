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
#include "base/util.h"
#include "sim/policy.h"

/* Record phase p's planning time (thread CPU seconds since t0) in the plan (Plan.phase_s). */
static inline void pol_phase_time(Plan *out, uint32_t p, double t0) {
    if (p < sizeof out->phase_s / sizeof out->phase_s[0]) out->phase_s[p] = os_thread_cpu_now() - t0;
}

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
    /* isf: [N] and [D]; ift/ilt: the first-fit and leftover trees, [2 * pow2(D)] */
    double *iv, *ic, *gv, *gc;
    uint32_t *group, *best, *pool, *open;
    unsigned char *kept;
    size_t iv_cap, ic_cap, gv_cap, gc_cap, group_cap, best_cap, pool_cap, open_cap, kept_cap;
    double *ift, *ilt;
    size_t ift_cap, ilt_cap;
    /* post-node pieces: [N + M] owning unit of each piece (nsrc / nbytes hold its rank, bytes) */
    uint32_t *nunit;
    size_t nunit_cap;
    /* post-node per phase: [max(N, M)] post's LLM bins, the answer, post's LPT order */
    uint32_t *pn_bin, *pn_rank, *pn_order; /* pn_order: post's LPT order, reused */
    size_t pn_bin_cap, pn_rank_cap, pn_order_cap;
    uint32_t *pn_units, *pn_len, *pn_lbin; /* post-node, padded: one node's units, lengths, bins */
    size_t pn_units_cap, pn_len_cap, pn_lbin_cap;
    uint32_t *pn_cnt, *pn_max;             /* [D] padded bins: count and longest */
    size_t pn_cnt_cap, pn_max_cap;
    /* node balancing (node_balance.c): [n] units, [np] pieces, [K] nodes, [g] / [g*g] GPUs */
    uint32_t *nb_node, *nb_srcn, *nb_home, *nb_ubin, *nb_rorder, *nb_lorder, *nb_porder,
        *nb_pstart, *nb_nstart, *nb_ncur, *nb_heap, *nb_hpos, *nb_touch, *nb_perm, *nb_bheap,
        *nb_bpos, *nb_gcol, *nb_rob, *nb_nodeof;
    uint64_t *nb_kb, *nb_used, *nb_scap, *nb_acc, *nb_bused;
    double *nb_ratio, *nb_rkey, *nb_load, *nb_cap, *nb_room, *nb_mat, *nb_bload, *nb_dload;
    unsigned char *nb_dirty;
    size_t nb_node_cap, nb_srcn_cap, nb_home_cap, nb_ubin_cap, nb_rorder_cap, nb_lorder_cap,
        nb_porder_cap, nb_pstart_cap, nb_nstart_cap, nb_ncur_cap, nb_heap_cap, nb_hpos_cap,
        nb_touch_cap, nb_perm_cap, nb_bheap_cap, nb_bpos_cap, nb_kb_cap, nb_used_cap, nb_scap_cap,
        nb_acc_cap, nb_bused_cap, nb_ratio_cap, nb_load_cap, nb_cap_cap, nb_room_cap, nb_mat_cap,
        nb_bload_cap, nb_dload_cap, nb_dirty_cap, nb_gcol_cap, nb_rkey_cap, nb_rob_cap, nb_nodeof_cap;
    uint32_t nb_stale; /* placements since the GPU heap was last rebuilt (node_balance.c) */
};

#define POL_GROW(ptr, capv, n) os_grow((void **)&(ptr), &(capv), (size_t)(n), sizeof(*(ptr)))

/* The policies (one file each). */
OsStatus balance_none(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_sorted(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_lpt(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_kk(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_isf(Plan *out, const StepWork *w, PolicyScratch *s);
/* isf's slow twin: the same rounds with linear scans over the groups (tests compare them). */
OsStatus balance_isf_ref(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_post(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_post_enc(Plan *out, const StepWork *w, PolicyScratch *s);
OsStatus balance_post_node(Plan *out, const StepWork *w, PolicyScratch *s);

/* Shared by the policies (post_common.c). */
/* Shape checks on a StepWork (D, P, drawn, it_example, it_phase in range). */
OsStatus pol_validate(const StepWork *w, const char *policy);
/* Pre-balancing: examples already have home; ex_rank = home, items follow their example. */
void pol_pre_finish(Plan *out, const StepWork *w);
/* Post-balance encoder phase `phase`: it_bin[j] for its items (others untouched); leaves the
 * phase's item list in s->unit[0 .. *m). Objective and cap_enc_positions from w->opt.
 * Both post-balancers leave, when the objective is additive (not OBJ_PADDED without a cap:
 * LPT ran), the units by weight descending, ties lower unit first, in s->ps->idx[0 .. n):
 * post-node reuses that order rather than sorting the same weights again. */
OsStatus pol_post_phase(uint32_t *it_bin, uint32_t *m, const StepWork *w, uint32_t phase,
                        PolicyScratch *s, const char *policy);
/* Post-balance the LLM phase: ex_bin[i] for every example (objective, cap_llm_tokens). */
OsStatus pol_post_llm(uint32_t *ex_bin, const StepWork *w, PolicyScratch *s, const char *policy);
/* A unit's load under an additive objective (OBJ_PADDED counts len, as the capped fallback). */
double pol_weight(BalanceObjective obj, double cost, uint32_t len);

/* Locality-aware node-wise balancing of one phase (node_balance.c; post-node).
 * Units carry a load w and a size (against the per-rank cap); their bytes are pieces, each on
 * one rank (an LLM example: its text at home plus each item's embedding where it was
 * encoded). A unit's source node is the node holding most of its bytes. */
typedef struct {
    uint32_t n, np, D, g;        /* units, pieces, ranks, ranks per node (g divides D) */
    const double *w;             /* [n] load (objective units), >= 0 */
    const uint64_t *size;        /* [n] size against cap; read only when cap > 0 */
    uint64_t cap;                /* per-rank size cap (0 = none) */
    const uint32_t *home;        /* [n] rank the unit was drawn on (source of a byte-less unit) */
    const uint32_t *piece_unit;  /* [np] owning unit */
    const uint32_t *piece_src;   /* [np] rank holding the piece */
    const uint64_t *piece_bytes; /* [np] bytes */
    double bound;                /* the max rank load to stay under */
    const uint32_t *order;       /* [n] optional, borrowed: units by w descending, ties lower
                                    unit first (post's LPT order); NULL: sorted here */
} NodeBalIn;
/* rank[u] in [0, D) for every unit. Node level: overloaded nodes shed the units with the most
 * load per byte that would cross nodes to the node with the most room; GPU level: one LPT
 * pass over all units, each to the least-loaded GPU of its node while that stays <= bound,
 * else to the least-loaded GPU anywhere (a node keeps its drawn split when that is no worse);
 * then a g x g Hungarian per node keeps the most bytes on the GPU that holds them.
 * *max_load = the resulting max rank load; *ok = 0 when a unit fits no rank under the size
 * cap (rank is then unusable). Callers guard against max_load themselves. */
OsStatus pol_node_balance(uint32_t *rank, double *max_load, int *ok, const NodeBalIn *in,
                          PolicyScratch *s);
/* The slow twin: the same algorithm with linear scans for the most-room node and the
 * least-loaded GPU, insertion sorts of every unit (it ignores in->order), and a Hungarian for
 * every node, O(n (K + D) + n^2); tests compare the two. */
OsStatus pol_node_balance_ref(uint32_t *rank, double *max_load, int *ok, const NodeBalIn *in,
                              PolicyScratch *s);

#endif
