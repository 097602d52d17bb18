/* policy.h — balancing policies: who computes what, per phase, for one global batch.
 * Implements: the Policy registry (one file per policy under sim/balance/, one row each),
 *   StepWork (what a step costs per unit and where it was drawn) and Plan (the policy's
 *   answer), plus plan checking (conservation) shared by tests and replay.
 * Does not: time anything or cost the moves (replay.c / net.h turn a Plan into ops).
 * Source: DESIGN.md §4; OrchMLLM (arXiv 2503.23830) post-balancing and node-wise
 *   rearrangement; REFERENCE.md peer balancers. Letters: D ranks, N examples, M items,
 *   P phases (P-1 encoders, then the LLM). */
#ifndef OS_POLICY_H
#define OS_POLICY_H

#include <stdint.h>

#include "base/status.h"
#include "sim/net.h"

typedef enum {
    OBJ_COST = 0,  /* a*len + c*len^2 from the cost model (the per-unit costs given) */
    OBJ_LINEAR,    /* len */
    OBJ_QUADRATIC, /* len^2 */
    OBJ_PADDED     /* bin load = count * max len */
} BalanceObjective;

/* Caps bind the policies that move work after the loader (POLICY_HONORS_* in the registry):
 * post and post-node honor both, post-enc the encoder cap only (its LLM phase stays at home);
 * pre-balancing policies decide at the loader and ignore them. plan_check checks the caps a
 * policy honors. */
typedef struct {
    BalanceObjective objective;
    uint64_t cap_llm_tokens; /* per-rank max LLM tokens in the LLM phase (0 = none) */
    uint64_t cap_enc_positions; /* per-rank max encoder positions per encoder phase (0 = none) */
    uint64_t seed;           /* for randomized policies (isf) */
} PolicyOptions;

typedef struct {
    uint32_t D, P, N, M;
    uint32_t dp_per_node;      /* DP ranks per node (node of rank r = r / dp_per_node) */
    const uint32_t *drawn;     /* [N] rank that drew example i */
    const double *ex_cost;     /* [N] LLM-phase seconds (fwd+bwd) of example i alone */
    const uint32_t *ex_tokens; /* [N] LLM sequence length S_i */
    const uint64_t *ex_bytes;  /* [N] bytes of example i's text input */
    const uint32_t *it_example;/* [M] owning example (items of an example are contiguous) */
    const uint8_t *it_phase;   /* [M] encoder phase, 0..P-2 */
    const double *it_cost;     /* [M] encoder-phase seconds (fwd+bwd) of item j alone */
    const uint32_t *it_len;    /* [M] encoder positions */
    const uint64_t *it_in_bytes;  /* [M] raw input bytes (moved before the encoder) */
    const uint64_t *it_out_bytes; /* [M] projected embedding bytes (moved to the LLM rank) */
    const PolicyOptions *opt;  /* borrowed */
} StepWork;

/* A policy's answer. Arrays are caller-owned ([N] / [M]); the policy fills them. */
typedef struct {
    uint32_t *home;    /* [N] rank whose data loader holds example i (pre-balancing changes it;
                          post-balancing keeps drawn) */
    uint32_t *ex_rank; /* [N] rank running example i in the LLM phase */
    uint32_t *it_rank; /* [M] rank running item j's encoder; its output goes to ex_rank of its
                          example (direct routing), its gradient back in backward */
    int hierarchical;  /* 1: moves use the node-wise all-to-all */
    double phase_s[8]; /* optional, post policies: thread CPU seconds spent planning each phase
                          (encoders, then the LLM); all 0 = not reported. The replay lets the
                          host plan phase p+1 while the GPUs run phase p (OrchMLLM balances
                          before each phase), so only phase 0's planning is exposed. */
} Plan;

typedef enum { POLICY_PRE = 0, POLICY_POST = 1 } PolicyKind;

typedef struct PolicyScratch PolicyScratch;
OsStatus policy_scratch_create(PolicyScratch **out);
void policy_scratch_destroy(PolicyScratch *s);

typedef OsStatus PolicyFn(Plan *out, const StepWork *w, PolicyScratch *s);

enum { POLICY_HONORS_ENC_CAP = 1u, POLICY_HONORS_LLM_CAP = 2u };

/* The modelled planning cost of a policy: the deterministic balancer charge that rankings and
 * ties use instead of the host's timing (DESIGN.md §4). seconds(n) = ref_s * f(n) / f(n_ref),
 * f(n) = n (POLICY_COST_N) or n log2(n + 1) (POLICY_COST_NLOGN), n = the units the policy
 * orders: the examples (POLICY_UNITS_EXAMPLES: pre-balancing on the LLM cost, the items follow
 * their example) or examples + items (POLICY_UNITS_ALL: every phase planned). ref_s is the
 * policy's measured runtime on bench_balance's reference step (POLICY_COST_REF_*: D = 2560,
 * 16 examples per rank, 0-3 items each over 2 encoders; bench/RESULTS.md "Balancers"), so the
 * constant is c = ref_s / f(n_ref). The shape is the algorithm's complexity (sorts and heaps:
 * n log n); kk's and post-node's runtimes also grow with D (bench/RESULTS.md: kk 1.75 ms at
 * D = 512 x 16 against 16.0 ms at 2560 x 16), which this one-variable model does not follow. */
typedef enum { POLICY_COST_N = 0, POLICY_COST_NLOGN = 1 } PolicyCostShape;
typedef enum { POLICY_UNITS_EXAMPLES = 0, POLICY_UNITS_ALL = 1 } PolicyCostUnits;
/* The phases a post-balancing policy plans one after another (post-enc leaves the LLM home). */
typedef enum { POLICY_PLANS_ALL = 0, POLICY_PLANS_ENCODERS = 1 } PolicyCostPhases;
typedef struct {
    PolicyCostShape shape;
    PolicyCostUnits units;
    double ref_s; /* seconds at the reference step */
    PolicyCostPhases phases;
} PolicyCost;
#define POLICY_COST_REF_D 2560u
#define POLICY_COST_REF_N 40960u /* examples of bench_balance's D = 2560 x 16 step */
#define POLICY_COST_REF_M 61125u /* its items (0-3 per example, bench_balance's seeded draw) */

typedef struct {
    const char *name;
    const char *desc;
    PolicyKind kind;
    PolicyFn *fn;
    uint32_t honors; /* POLICY_HONORS_* bits: the caps this policy guarantees */
    PolicyCost cost; /* modelled planning cost (policy_charge_s) */
} Policy;

uint32_t policy_count(void);
const Policy *policy_at(uint32_t i);
/* NULL when unknown; policy_suggest gives the closest name for "did you mean". */
const Policy *policy_find(const char *name);
const char *policy_suggest(const char *name);
/* The policy's modelled planning cost for one step of N examples and M items, seconds (>= 0,
 * 0 for an empty step): the deterministic balancer charge (PolicyCost). */
double policy_charge_s(const Policy *p, uint64_t N, uint64_t M);
/* The share of a post-balancing policy's planning that precedes its first all-to-all: phase 0's
 * f(n_0) over the sum of f(n_p) across the phases it plans (n_phase[P]: units per phase, items
 * of each encoder then the examples). Later phases are planned while the GPUs run the earlier
 * ones (replay.c plan_overlap), so this share is what a step waits for. 1 for P = 1 or when
 * only phase 0 has units; 0 for a pre-balancing policy (it plans in the data loader). */
double policy_charge_exposed_frac(const Policy *p, const double *n_phase, uint32_t P);
/* "n log n over examples + items" — the cost model in words, for outputs. */
const char *policy_charge_desc(const Policy *p);

/* Conservation and range check: every example and item assigned to exactly one rank in
 * [0, D) per phase; capacities respected. Errors name the policy and the unit. */
OsStatus plan_check(const Plan *p, const StepWork *w, const char *policy_name);

/* Per-phase lower bound: max(total / D, largest unit) of the per-unit costs (the oracle). */
double policy_oracle_phase(const StepWork *w, uint32_t phase);

/* Node-wise placement (post-node's fallback, node_place.c; its main path is the
 * locality-aware balancing in node_balance.c). The units of one phase already sit in balanced bins
 * (unit_bin[u] in [0, D)); unit u's bytes live on rank unit_src[u]. Choose a bijection
 * rank_of_bin[D] that minimises inter-node bytes, then intra-node bytes (a unit moves when
 * its source rank is not the rank of its bin; node of rank r = r / g). Loads are unchanged.
 * EXACT: one D x D Hungarian on the lexicographic cost (optimal; D <= 64 and total bytes
 *   < 2^26 so the combined cost stays an exact double, else OS_ERR_RANGE).
 * HIER: bins grouped into nodes greedily by largest (bin, source node) byte counts, groups
 *   mapped to nodes by a K x K Hungarian (K = D / g nodes), never worse than the identity
 *   grouping, then a g x g Hungarian per node on the bytes that stay on their rank.
 * AUTO: EXACT when it applies, else HIER. g >= D means one node; otherwise g must divide D. */
typedef enum { NODE_PLACE_AUTO = 0, NODE_PLACE_EXACT, NODE_PLACE_HIER } NodePlaceMode;
OsStatus policy_node_place(uint32_t *rank_of_bin, const uint32_t *unit_bin, const uint32_t *unit_src,
                           const uint64_t *unit_bytes, uint32_t n, uint32_t D, uint32_t g,
                           NodePlaceMode mode, PolicyScratch *s);
/* Slow twin: every permutation (D <= 8), first lexicographic (inter, intra) optimum. */
OsStatus policy_node_place_brute(uint32_t *rank_of_bin, const uint32_t *unit_bin,
                                 const uint32_t *unit_src, const uint64_t *unit_bytes, uint32_t n,
                                 uint32_t D, uint32_t g);
/* Bytes that cross nodes / stay in a node but change rank under rank_of_bin. */
void policy_node_bytes(uint64_t *inter, uint64_t *intra, const uint32_t *rank_of_bin,
                       const uint32_t *unit_bin, const uint32_t *unit_src,
                       const uint64_t *unit_bytes, uint32_t n, uint32_t g);

#endif
