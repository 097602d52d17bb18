/* replay.c — see replay.h. One replay = one Prog (op list built once from the setup) run for
 * every step on one engine; per step: read the global batch, cost every unit (cost.h), ask
 * the policy for a plan (policy.h), cost each rank's share of each phase, cost the
 * rebalancing all-to-alls from their byte lists (net.h), run the program, collect results.
 * Per-step scratch is one arena reset every step (STYLE habit 4). */
#include "sim/replay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/program.h"

/* Activation bytes kept per LLM token per layer for backward, bf16, with FlashAttention (no
 * s^2 term): 34*h bytes per token per layer (Korthikanti et al. 2022, "Reducing Activation
 * Recomputation", Table 2 without the 5*a*s attention term); with full recomputation only the
 * layer input (2*h bytes) is kept. A memory *floor* used to flag impossible examples. */
#define ACT_BYTES_PER_TOKEN_LAYER_H 34.0
#define ACT_BYTES_RECOMPUTE_H 2.0
/* Mixed-precision Adam state per parameter: bf16 weight + bf16 grad + fp32 master, m, v. */
#define STATE_BYTES_PER_PARAM 16.0
/* Text input moved by the all-to-all: int32 token ids. */
#define TEXT_BYTES_PER_TOKEN 4u

void replay_config_init(ReplayConfig *c) {
    memset(c, 0, sizeof *c);
    c->setup = SETUP_FSDP;
    c->allreduce = AR_RING;
    c->layout = ATTN_VARLEN;
    c->policy = policy_find("none");
    c->popt.objective = OBJ_COST;
    c->popt.seed = 1;
    c->fsdp_groups = 0;
    c->ddp_buckets = 4;
    c->optimizer = 1;
    c->grad_clip = 1;
    c->overlap_slowdown = -1.0;
    c->engine_kind = ENGINE_HEAP;
    c->balancer_cost_s = -1.0;
}

/* ---- per-step scratch ------------------------------------------------------------------ */

typedef struct {
    /* StepWork arrays */
    uint32_t *drawn, *ex_tokens, *it_example, *it_len;
    double *ex_cost, *it_cost;
    uint64_t *ex_bytes, *it_in_bytes, *it_out_bytes;
    uint8_t *it_phase;
    /* Plan */
    uint32_t *home, *ex_rank, *it_rank;
    /* micro-batches: example i and item j run in micro-batch ex_mb[i] (items: their example's) */
    uint16_t *ex_mb; /* [N] */
    uint32_t *rank_next; /* [D] micro-batch being packed */
    uint64_t *rank_tok;  /* [D] tokens in it */
    uint32_t *rank_cnt;  /* [D] examples in it */
    uint32_t *lens;  /* [N + M] unit lengths bucketed by (phase, rank, micro-batch) */
    NetMove *moves;  /* [2M + N] */
} StepBufs;

typedef struct {
    const ReplayConfig *cfg;
    const ModelSpec *m;
    const Cluster *cl;
    CostModel cm;
    CostUnit unit[REPLAY_MAX_PHASES]; /* per-unit costs (the balancers' weights) */
    uint32_t D, P;
    int enc_of_mod[TRACE_MAX_MODALITIES]; /* trace modality -> encoder index (-1: text/none) */
    Prog *prog;
    Engine *engine;
    NetScratch *net;
    PolicyScratch *pol;
    OsArena arena;
    SimTime *dur;         /* [D*P*MB*2] */
    size_t dur_cap;       /* entries allocated in dur */
    uint32_t MB;          /* micro-batches of the program built (prog) */
    uint32_t *cnt, *fill; /* [P*D*MB + 1] bucket offsets by (phase, rank, micro-batch) */
    size_t cnt_cap, fill_cap;
    PhaseCost *pc;        /* [D*P] rank r's share of phase p, summed over its micro-batches */
    SimTime gdur[REPLAY_MAX_PHASES]; /* one gradient collective per module */
    SimTime rsdur[REPLAY_MAX_PHASES]; /* FSDP: one group's reduce-scatter per module */
    uint32_t groups[REPLAY_MAX_PHASES]; /* FSDP groups per module */
    SimTime clip_dur, opt_dur;
    double opt_s, slowdown;
    double act_per_token; /* activation bytes per LLM token per GPU kept for backward */
    double act_floor_per_token; /* the same with full recomputation: the floor */
    uint64_t needs_recompute; /* examples whose activations fit only with recomputation */
    double mem_free;      /* bytes per GPU left for activations */
    const char *trace_path;
    Trace *trace; /* borrowed */
    CostMemo *memo;
} Replay;

/* The step's scratch, carved from one arena (the (phase, rank, micro-batch) bucket offsets,
 * whose count is known only after packing, live in R->cnt / R->fill). */
static OsStatus carve(Replay *R, StepBufs *b, uint32_t N, uint32_t M) {
    OsStatus st = OS_OK;
    size_t D = R->D;
    size_t need = (size_t)N * (4 * 4 + 8 + 8 + 3 * 4 + 2) + (size_t)M * (4 * 4 + 8 + 3 * 8 + 1) + D * (4 + 8 + 4) +
                  (size_t)(N + M) * 4 + (size_t)(2 * M + N) * sizeof(NetMove) + 40 * 64;
    os_arena_reset(&R->arena);
    OS_CHECK(os_arena_reserve(&R->arena, need));
#define CARVE(f, n) b->f = os_arena_alloc(&R->arena, (size_t)(n) * sizeof(*b->f) + 1)
    CARVE(drawn, N); CARVE(ex_tokens, N); CARVE(ex_cost, N); CARVE(ex_bytes, N);
    CARVE(home, N); CARVE(ex_rank, N); CARVE(ex_mb, N);
    CARVE(it_example, M); CARVE(it_len, M); CARVE(it_cost, M); CARVE(it_in_bytes, M);
    CARVE(it_out_bytes, M); CARVE(it_phase, M); CARVE(it_rank, M);
    CARVE(rank_next, D); CARVE(rank_tok, D); CARVE(rank_cnt, D);
    CARVE(lens, N + M); CARVE(moves, 2 * (size_t)M + N);
#undef CARVE
    if (!b->moves) OS_FAIL(OS_ERR_INTERNAL, "replay", "arena", NULL, "scratch carving ran out");
fail:
    return st;
}

/* ---- set-up checks ------------------------------------------------------------------- */

/* Trace modality -> encoder. A modality the model has no encoder for is only an error when an
 * item of it is met (traces may list modalities they do not use). */
static void map_modalities(Replay *R, Trace *t) {
    for (uint32_t m = 0; m < TRACE_MAX_MODALITIES; m++) R->enc_of_mod[m] = -1;
    for (uint32_t m = 1; m < trace_n_modalities(t) && m < TRACE_MAX_MODALITIES; m++)
        R->enc_of_mod[m] = model_encoder_index(R->m, trace_modality(t, m)->name);
}

static double module_params(const ModelSpec *m, uint32_t p) {
    if (p == m->n_enc) return (double)stack_params(&m->llm);
    return (double)stack_params(&m->enc[p].stack) + (double)model_projector_params(m, p);
}

/* ---- one step ------------------------------------------------------------------------ */

static OsStatus build_work(Replay *R, StepWork *w, StepBufs *b, const TraceStep *s, uint64_t *long_ex) {
    const ModelSpec *m = R->m;
    uint32_t N = s->n_examples, M = s->n_items, D = R->D, llm = R->P - 1;
    for (uint32_t i = 0; i < N; i++) {
        const TraceExample *ex = &s->examples[i];
        /* as drawn: rank r holds examples [r*N/D, (r+1)*N/D); with --regroup the same formula
         * re-deals the global batch to the cluster's DP (N need not divide by D then) */
        b->drawn[i] = (uint32_t)(((uint64_t)i * D) / N);
        uint64_t S = ex->text;
        for (uint32_t k = 0; k < ex->n_items; k++) {
            uint32_t j = (uint32_t)ex->first_item + k;
            const TraceItem *it = &s->items[j];
            int e = R->enc_of_mod[it->modality];
            if (e < 0) {
                const char *mn = trace_modality(R->trace, it->modality)->name;
                char hint[200];
                snprintf(hint, sizeof hint, "pick a model with a '%s' encoder (sim/README-models.md lists the presets)", mn);
                return os_fail(OS_ERR_ARG, R->trace_path, "/items", hint,
                               "step %llu, example id %llu: the trace has '%s' items but model '%s' has no encoder for them",
                               (unsigned long long)s->index, (unsigned long long)ex->id, mn, m->name);
            }
            const EncoderSpec *es = &m->enc[e];
            uint32_t eff = es->pad_to > it->length ? es->pad_to : it->length;
            if (es->max_len && it->length > es->max_len) (*long_ex)++;
            b->it_example[j] = i;
            b->it_phase[j] = (uint8_t)e;
            b->it_len[j] = it->length;
            b->it_cost[j] = cost_unit_eval(&R->unit[e], it->length);
            b->it_in_bytes[j] = (uint64_t)eff * es->in_bytes_per_unit;
            uint32_t tok = cost_item_llm_tokens(m, (uint32_t)e, it->length);
            b->it_out_bytes[j] = (uint64_t)tok * m->llm.hidden * m->act_bytes;
            S += tok;
        }
        if (S >= TRACE_MAX_LEN)
            return os_fail(OS_ERR_RANGE, R->trace_path, "/examples", NULL, "step %llu: example id %llu has %llu LLM tokens",
                           (unsigned long long)s->index, (unsigned long long)ex->id, (unsigned long long)S);
        if ((double)S * R->act_floor_per_token > R->mem_free) {
            char hint[200];
            snprintf(hint, sizeof hint, "drop or split such examples, or use more --tp (needs %.1f GB even with recomputation)",
                     (double)S * R->act_floor_per_token / 1e9);
            return os_fail(OS_ERR_RANGE, R->trace_path, "/examples", hint,
                           "step %llu: example id %llu has %llu LLM tokens: its activations alone exceed "
                           "the %.1f GB a GPU has left after the model state, so no policy can place it",
                           (unsigned long long)s->index, (unsigned long long)ex->id, (unsigned long long)S,
                           R->mem_free / 1e9);
        }
        if (m->max_seq && S > m->max_seq) (*long_ex)++;
        if ((double)S * R->act_per_token > R->mem_free) R->needs_recompute++;
        b->ex_tokens[i] = (uint32_t)S;
        b->ex_cost[i] = cost_unit_eval(&R->unit[llm], (uint32_t)S);
        b->ex_bytes[i] = (uint64_t)ex->text * TEXT_BYTES_PER_TOKEN;
    }
    *w = (StepWork){.D = D, .P = R->P, .N = N, .M = M, .dp_per_node = R->cl->dp_per_node, .drawn = b->drawn,
                    .ex_cost = b->ex_cost, .ex_tokens = b->ex_tokens, .ex_bytes = b->ex_bytes,
                    .it_example = b->it_example, .it_phase = b->it_phase, .it_cost = b->it_cost,
                    .it_len = b->it_len, .it_in_bytes = b->it_in_bytes, .it_out_bytes = b->it_out_bytes,
                    .opt = &R->cfg->popt};
    return OS_OK;
}

/* Micro-batches (DESIGN.md §2): each rank packs its share of the LLM phase, in order, into
 * micro-batches of at most `micro_batch` examples and `micro_batch_tokens` LLM tokens (an
 * example longer than the budget runs alone); an item runs in its example's micro-batch, on
 * the rank the policy gave it. Every rank runs the step's count, the most any rank needed
 * (FSDP's collectives need every rank in every micro-batch); a rank with fewer runs empty
 * ones at the end. A micro_batch above a rank's share is a clamp: the share is one
 * micro-batch. Returns the count; *clamped = 1 when the clamp applied. */
static uint32_t pack_microbatches(Replay *R, const StepWork *w, StepBufs *b, const Plan *pl, int *clamped) {
    const ReplayConfig *cfg = R->cfg;
    uint32_t D = R->D, mb = cfg->micro_batch, MB = 1;
    uint64_t budget = cfg->micro_batch_tokens;
    *clamped = 0;
    if (mb == 0 && budget == 0) {
        memset(b->ex_mb, 0, (size_t)w->N * sizeof *b->ex_mb);
        return 1;
    }
    memset(b->rank_next, 0, D * sizeof *b->rank_next);
    memset(b->rank_tok, 0, D * sizeof *b->rank_tok);
    memset(b->rank_cnt, 0, D * sizeof *b->rank_cnt);
    for (uint32_t i = 0; i < w->N; i++) {
        uint32_t r = pl->ex_rank[i];
        uint64_t tok = w->ex_tokens[i];
        int full = b->rank_cnt[r] > 0 && ((mb && b->rank_cnt[r] >= mb) || (budget && b->rank_tok[r] + tok > budget));
        if (full && b->rank_next[r] + 1 < PROG_MAX_MB) b->rank_next[r]++, b->rank_cnt[r] = 0, b->rank_tok[r] = 0;
        b->ex_mb[i] = (uint16_t)b->rank_next[r];
        b->rank_cnt[r]++;
        b->rank_tok[r] += tok;
        if (b->rank_next[r] + 1 > MB) MB = b->rank_next[r] + 1;
    }
    if (mb && MB == 1) {
        /* a micro-batch larger than every rank's share: the share is the micro-batch */
        uint32_t most = 0;
        for (uint32_t r = 0; r < D; r++) most = OS_MAX(most, b->rank_cnt[r]);
        if (most < mb) *clamped = 1;
    }
    return MB;
}

static OsStatus grow_u32(uint32_t **p, size_t *cap, size_t n) { return os_grow((void **)p, cap, n, sizeof **p); }

/* Bucket unit lengths by (phase, rank, micro-batch) and cost every rank's share of every phase
 * micro-batch by micro-batch. */
static OsStatus cost_ranks(Replay *R, const StepWork *w, StepBufs *b, const Plan *pl, uint32_t MB) {
    OsStatus st = OS_OK;
    uint32_t D = R->D, P = R->P, llm = P - 1;
    size_t PDM = (size_t)P * D * MB;
    OS_CHECK(grow_u32(&R->cnt, &R->cnt_cap, PDM + 1));
    OS_CHECK(grow_u32(&R->fill, &R->fill_cap, PDM));
#define KEY(p, r, k) ((((size_t)(p) * D + (r)) * MB) + (k))
    memset(R->cnt, 0, (PDM + 1) * sizeof *R->cnt);
    for (uint32_t i = 0; i < w->N; i++) R->cnt[KEY(llm, pl->ex_rank[i], b->ex_mb[i]) + 1]++;
    for (uint32_t j = 0; j < w->M; j++)
        R->cnt[KEY(w->it_phase[j], pl->it_rank[j], b->ex_mb[w->it_example[j]]) + 1]++;
    for (size_t k = 0; k < PDM; k++) R->cnt[k + 1] += R->cnt[k];
    memcpy(R->fill, R->cnt, PDM * sizeof *R->fill);
    for (uint32_t i = 0; i < w->N; i++) b->lens[R->fill[KEY(llm, pl->ex_rank[i], b->ex_mb[i])]++] = w->ex_tokens[i];
    for (uint32_t j = 0; j < w->M; j++)
        b->lens[R->fill[KEY(w->it_phase[j], pl->it_rank[j], b->ex_mb[w->it_example[j]])]++] = w->it_len[j];
    double tp = (double)R->cl->tp;
    for (uint32_t p = 0; p < P; p++)
        for (uint32_t r = 0; r < D; r++) {
            PhaseCost *c = &R->pc[(size_t)r * P + p];
            memset(c, 0, sizeof *c);
            for (uint32_t k = 0; k < MB; k++) {
                size_t key = KEY(p, r, k);
                uint32_t n = R->cnt[key + 1] - R->cnt[key];
                PhaseCost one;
                if (n == 0) memset(&one, 0, sizeof one);
                else OS_CHECK(cost_phase(&one, &R->cm, p, b->lens + R->cnt[key], n));
                /* TP splits every GEMM and attention head group over tp GPUs; TP's own
                 * communication is not modelled (a documented simplification). */
                size_t d = (((size_t)r * P + p) * MB + k) * 2;
                R->dur[d + 0] = sim_from_seconds(one.fwd_s / tp);
                R->dur[d + 1] = sim_from_seconds(one.bwd_s / tp);
                c->fwd_s += one.fwd_s, c->bwd_s += one.bwd_s;
                c->gemm_s += one.gemm_s, c->attn_s += one.attn_s, c->mem_s += one.mem_s;
                c->model_flops += one.model_flops, c->model_flops_noattn += one.model_flops_noattn;
                c->causal_flops += one.causal_flops, c->hw_flops += one.hw_flops;
                c->tokens += one.tokens;
            }
        }
#undef KEY
fail:
    return st;
}

/* Byte lists of the rebalancing moves and their cost, per micro-batch. */
static OsStatus cost_moves(Replay *R, const StepWork *w, StepBufs *b, const Plan *pl, uint32_t MB, StepResult *res) {
    uint32_t E = R->P - 1;
    NetA2AStats stt;
    double total = 0;
    for (uint32_t k = 0; k < MB; k++)
        for (uint32_t e = 0; e < E + 2; e++) {
            /* e < E: inputs of encoder e; E: embeddings + text to the LLM ranks; E+1: gradients back */
            size_t n = 0;
            if (e < E) {
                for (uint32_t j = 0; j < w->M; j++) {
                    if (w->it_phase[j] != e || b->ex_mb[w->it_example[j]] != k) continue;
                    uint32_t src = pl->home[w->it_example[j]], dst = pl->it_rank[j];
                    if (src != dst) b->moves[n++] = (NetMove){src, dst, w->it_in_bytes[j]};
                }
            } else {
                for (uint32_t j = 0; j < w->M; j++) {
                    if (b->ex_mb[w->it_example[j]] != k) continue;
                    uint32_t a = pl->it_rank[j], z = pl->ex_rank[w->it_example[j]];
                    if (a == z) continue;
                    b->moves[n++] = e == E ? (NetMove){a, z, w->it_out_bytes[j]} : (NetMove){z, a, w->it_out_bytes[j]};
                }
                if (e == E)
                    for (uint32_t i = 0; i < w->N; i++)
                        if (b->ex_mb[i] == k && pl->home[i] != pl->ex_rank[i])
                            b->moves[n++] = (NetMove){pl->home[i], pl->ex_rank[i], w->ex_bytes[i]};
            }
            memset(&stt, 0, sizeof stt);
            double t = n == 0 ? 0.0
                              : pl->hierarchical ? net_alltoallv_hier(R->cl, b->moves, n, R->net, &stt)
                                                 : net_alltoallv(R->cl, b->moves, n, R->net, &stt);
            if (isnan(t)) return OS_ERR_INTERNAL; /* net recorded why */
            res->bytes_intra += stt.intra_bytes;
            res->bytes_inter += stt.inter_bytes;
            total += t;
            for (size_t c = 0; c < R->prog->n_colls; c++) {
                Coll *cc = &R->prog->colls[c];
                if (cc->mb != k) continue;
                if ((e < E && cc->role == COLL_A2A_IN && cc->enc == e) || (e == E && cc->role == COLL_A2A_OUT) ||
                    (e == E + 1 && cc->role == COLL_A2A_GRAD))
                    cc->dur = sim_from_seconds(t);
            }
        }
    res->a2a_s = total;
    /* every rank's lengths (text + items) gathered before balancing: 8 bytes per unit, the same
     * on every GPU (not sharded by TP) */
    for (size_t c = 0; c < R->prog->n_colls; c++)
        if (R->prog->colls[c].role == COLL_LENGTHS)
            R->prog->colls[c].dur = sim_from_seconds(net_allgather(R->cl, 8.0 * (double)(w->N + w->M) * R->cl->tp));
    return OS_OK;
}

/* Post-balancing on the critical path. The ranks gather lengths, then plan phase 0 before its
 * all-to-all: that part is exposed (the "balance" op). Phases 1.. are planned on the host while
 * the GPUs run the earlier phases (OrchMLLM balances before each phase), so phase p's
 * all-to-all waits only if its plan is not ready yet: lengths end + exposed + sum of the later
 * phases' planning up to p. A policy that reports no per-phase times, or a fixed
 * --balancer-cost, is charged whole up front. Returns the exposed time. */
static SimTime plan_overlap(Replay *R, const Plan *pl, const StepResult *res, int fixed) {
    uint32_t P = R->P;
    double later[REPLAY_MAX_PHASES + 1] = {0}, sum_later = 0;
    int split = !fixed && pl->phase_s[0] > 0 && P <= sizeof pl->phase_s / sizeof pl->phase_s[0];
    for (uint32_t p = 1; split && p < P; p++) {
        sum_later += pl->phase_s[p];
        later[p] = sum_later; /* planning done after the exposed part, up to phase p */
    }
    double exposed = split ? OS_MAX(0.0, res->balancer_s - sum_later) : res->balancer_s;
    SimTime ex = sim_from_seconds(exposed);
    Prog *g = R->prog;
    for (size_t c = 0; c < g->n_colls; c++) {
        Coll *cc = &g->colls[c];
        int q = cc->role == COLL_A2A_IN ? cc->enc : (cc->role == COLL_A2A_OUT || cc->role == COLL_A2A_GRAD) ? (int)P - 1 : -1;
        cc->after = split && q > 0 ? g->lengths_coll : -1;
        cc->after_delay = split && q > 0 ? ex + sim_from_seconds(later[q]) : 0;
    }
    return ex;
}

static void step_results(Replay *R, const StepWork *w, StepResult *res, SimTime start, SimTime end) {
    uint32_t D = R->D, P = R->P;
    const Prog *pg = R->prog;
    res->step_s = sim_to_seconds(end - start);
    double busy = 0, idle = 0, comm = 0;
    SimTime last_wait = start;
    for (uint32_t r = 0; r < D; r++) {
        const RankRun *rr = &pg->ranks[r];
        busy += sim_to_seconds(rr->busy);
        idle += sim_to_seconds(rr->idle);
        comm += sim_to_seconds(rr->comm);
        if (rr->final_wait_at > last_wait) last_wait = rr->final_wait_at;
    }
    double slowed = 0;
    for (uint32_t r = 0; r < D; r++) slowed += sim_to_seconds(pg->ranks[r].slowed);
    res->busy_s = busy / D;
    res->idle_s = idle / D;
    res->comm_s = comm / D;
    res->slowed_s = slowed / D;
    res->grad_sync_s = sim_to_seconds(end - last_wait);
    res->optimizer_s = R->opt_s;
    for (size_t k = 0; k < (size_t)D * P; k++) {
        res->gemm_s += R->pc[k].gemm_s / R->cl->tp / D;
        res->attn_s += R->pc[k].attn_s / R->cl->tp / D;
        res->mem_s += R->pc[k].mem_s / R->cl->tp / D;
    }
    for (uint32_t p = 0; p < P; p++) {
        double mx = 0, sum = 0, idle_frac = 0, big = 0;
        for (uint32_t r = 0; r < D; r++) {
            const PhaseCost *c = &R->pc[(size_t)r * P + p];
            double t = (c->fwd_s + c->bwd_s) / R->cl->tp;
            sum += t;
            if (t > mx) mx = t;
            const RankRun *rr = &pg->ranks[r];
            SimTime span = rr->tag_busy[p] + rr->tag_idle[p] + rr->tag_comm[p];
            if (span > 0) idle_frac += (double)rr->tag_idle[p] / (double)span;
            res->model_flops += c->model_flops;
            res->model_flops_noattn += c->model_flops_noattn;
            res->causal_flops += c->causal_flops;
            res->hw_flops += c->hw_flops;
            if (p == P - 1) res->llm_tokens += c->tokens;
            else res->enc_positions[p] += c->tokens;
        }
        /* the oracle: no placement beats the mean load or the largest unit run alone */
        uint32_t big_len = 0;
        double big_w = -1;
        for (uint32_t i = 0; i < w->N && p == P - 1; i++)
            if (w->ex_cost[i] > big_w) big_w = w->ex_cost[i], big_len = w->ex_tokens[i];
        for (uint32_t j = 0; j < w->M && p < P - 1; j++)
            if (w->it_phase[j] == p && w->it_cost[j] > big_w) big_w = w->it_cost[j], big_len = w->it_len[j];
        if (big_w >= 0) {
            PhaseCost one;
            if (cost_phase(&one, &R->cm, p, &big_len, 1) == OS_OK) big = (one.fwd_s + one.bwd_s) / R->cl->tp;
        }
        double mean = sum / D;
        res->phase_max_s[p] = mx;
        res->phase_mean_s[p] = mean;
        res->phase_oracle_s[p] = OS_MAX(mean, big);
        res->phase_imbalance[p] = mean > 0 ? mx / mean : 1.0;
        res->phase_idle_frac[p] = idle_frac / D;
    }
    double denom = res->step_s * R->cl->gpus * R->cl->peak_flops;
    if (denom > 0) {
        res->mfu = res->model_flops / denom;
        res->mfu_noattn = res->model_flops_noattn / denom;
        res->mfu_causal = res->causal_flops / denom;
        res->hfu = res->hw_flops / denom;
    }
}

const char *replay_setup_name(TrainSetup s) {
    return s == SETUP_DDP ? "ddp" : s == SETUP_FSDP_GRAD_OP ? "fsdp-grad-op" : "fsdp";
}

uint32_t replay_phase_names(char (*names)[32], const ModelSpec *m) {
    uint32_t P = cost_n_phases(m);
    for (uint32_t p = 0; p + 1 < P; p++) snprintf(names[p], 32, "%s", m->enc[p].modality);
    snprintf(names[P - 1], 32, "llm");
    return P;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double pct(const double *v, uint64_t n, double q) {
    if (n == 0) return 0;
    double k = ceil(q * (double)n) - 1;
    if (k < 0) k = 0;
    return v[(uint64_t)k < n ? (uint64_t)k : n - 1];
}

static void replay_free(Replay *R) {
    prog_destroy(R->prog);
    engine_destroy(R->engine);
    net_scratch_destroy(R->net);
    policy_scratch_destroy(R->pol);
    os_arena_free(&R->arena);
    free(R->dur);
    free(R->pc);
    free(R->memo);
    free(R->cnt);
    free(R->fill);
}

/* The step program for MB micro-batches (rebuilt when a step needs another count), and room
 * for its durations. */
static OsStatus ensure_prog(Replay *R, uint32_t MB) {
    OsStatus st = OS_OK;
    if (R->prog && R->MB == MB) return OS_OK;
    const ReplayConfig *cfg = R->cfg;
    prog_destroy(R->prog);
    R->prog = NULL;
    ProgSpec ps = {.D = R->D, .P = R->P, .M = MB,
                   .fsdp = cfg->setup == SETUP_DDP ? SHARD_DDP : cfg->setup == SETUP_FSDP_GRAD_OP ? SHARD_GRAD_OP : SHARD_FULL,
                   .groups = R->groups, .buckets = cfg->ddp_buckets, .post = cfg->policy->kind == POLICY_POST,
                   .grad_coll_dur = R->gdur, .rs_dur = R->rsdur, .clip_dur = R->clip_dur, .opt_dur = R->opt_dur, .slowdown = R->slowdown};
    OS_CHECK(prog_create(&R->prog, &ps));
    R->MB = MB;
    size_t need = (size_t)R->D * R->P * MB * 2;
    if (need > R->dur_cap) {
        SimTime *d = realloc(R->dur, need * sizeof *d);
        ALLOC_CHECK(d);
        R->dur = d;
        R->dur_cap = need;
    }
fail:
    return st;
}

static OsStatus replay_setup(Replay *R, const ReplayConfig *cfg, Trace *t, ReplaySummary *sum) {
    OsStatus st = OS_OK;
    const ModelSpec *m = cfg->model;
    const Cluster *cl = &cfg->cluster;
    R->cfg = cfg;
    R->m = m;
    R->cl = cl;
    R->trace_path = trace_path(t);
    R->D = cl->dp;
    R->P = cost_n_phases(m);
    R->memo = calloc(1, sizeof *R->memo);
    ALLOC_CHECK(R->memo);
    R->cm = (CostModel){.model = m, .calib = cfg->calib, .recompute = cfg->recompute, .layout = cfg->layout,
                        .memo = R->memo};
    if (!cfg->policy) OS_FAIL(OS_ERR_ARG, "replay", "--policy", NULL, "no policy given");
    OS_CHECK(cluster_validate(cl));
    OS_CHECK(model_validate(m, m->name));
    if (R->P > REPLAY_MAX_PHASES || R->P + 4 > PROG_MAX_TAGS)
        OS_FAIL(OS_ERR_ARG, m->name, "encoders", NULL, "too many encoders (%u)", m->n_enc);
    for (uint32_t p = 0; p < R->P; p++) cost_unit_prepare(&R->unit[p], &R->cm, p);
    map_modalities(R, t);
    R->trace = t;

    /* model state per GPU: FSDP shards it over DP (SHARD_GRAD_OP keeps the bf16 weights whole
     * between forward and backward), TP over tp */
    double params = (double)model_params(m);
    double state = params * STATE_BYTES_PER_PARAM / cl->tp / (cfg->setup == SETUP_DDP ? 1 : cl->dp);
    if (cfg->setup == SETUP_FSDP_GRAD_OP)
        state = params / cl->tp * (m->param_bytes + (STATE_BYTES_PER_PARAM - m->param_bytes) / cl->dp);
    sum->state_bytes_per_gpu = state;
    if (state >= cl->mem_bytes) {
        char hint[160];
        snprintf(hint, sizeof hint, "%s", cfg->setup != SETUP_FSDP
                                              ? "use --setup fsdp, a larger --tp, or a smaller --model"
                                              : "use more GPUs (--gpus N --regroup), a larger --tp, or a smaller --model");
        OS_FAIL(OS_ERR_RANGE, m->name, "memory", hint,
                "weights + gradients + Adam states need %.1f GB per GPU under %s, the GPU has %.1f GB", state / 1e9,
                replay_setup_name(cfg->setup), cl->mem_bytes / 1e9);
    }
    R->mem_free = cl->mem_bytes - state;
    R->act_per_token = (cfg->recompute ? ACT_BYTES_RECOMPUTE_H : ACT_BYTES_PER_TOKEN_LAYER_H) *
                       (double)m->llm.hidden * m->llm.layers / cl->tp;
    R->act_floor_per_token = ACT_BYTES_RECOMPUTE_H * (double)m->llm.hidden * m->llm.layers / cl->tp;

    /* the trace's DP against the cluster's */
    if (trace_n_steps(t) > 0 && !cfg->regroup) {
        const TraceStep *s0;
        OS_CHECK(trace_read_step(t, cfg->first_step < trace_n_steps(t) ? cfg->first_step : 0, &s0));
        if (s0->dp != cl->dp) {
            char hint[200];
            snprintf(hint, sizeof hint, "add --regroup to re-deal each global batch of %u examples to DP %u, "
                                        "or choose --gpus/--tp so that DP = %u", s0->n_examples, cl->dp, s0->dp);
            OS_FAIL(OS_ERR_ARG, trace_path(t), "/steps.dp", hint, "the trace was drawn for DP %u but the cluster has DP %u",
                    s0->dp, cl->dp);
        }
    }

    /* gradient collectives: one FSDP layer group's all-gather (a reduce-scatter costs the same)
     * or one DDP bucket's all-reduce, per module */
    for (uint32_t p = 0; p < R->P; p++) {
        const StackSpec *sp = p < m->n_enc ? &m->enc[p].stack : &m->llm;
        double bytes = module_params(m, p) * m->param_bytes;
        uint32_t G = cfg->fsdp_groups ? cfg->fsdp_groups : sp->layers;
        if (G > PROG_MAX_GROUPS) G = PROG_MAX_GROUPS;
        R->groups[p] = G;
        double d, rb = cfg->grad_reduce_bytes ? (double)cfg->grad_reduce_bytes : (double)m->param_bytes;
        double gbytes = bytes / m->param_bytes * rb; /* the gradients, in their reduction dtype */
        if (cfg->setup != SETUP_DDP) d = net_allgather(cl, bytes / G);
        else d = (cfg->allreduce == AR_TREE ? net_allreduce_tree : net_allreduce_ring)(cl, gbytes / cfg->ddp_buckets);
        R->gdur[p] = sim_from_seconds(d);
        R->rsdur[p] = sim_from_seconds(cfg->setup != SETUP_DDP ? net_reduce_scatter(cl, gbytes / G) : d);
    }
    /* the optimizer step on this GPU's parameters, after the gradient-norm all-reduce (a few
     * bytes: its latency) */
    double per_gpu = params / cl->tp / (cfg->setup == SETUP_DDP ? 1 : cl->dp);
    R->opt_s = cfg->optimizer ? cost_optimizer_s(&R->cm, per_gpu) : 0;
    R->opt_dur = sim_from_seconds(R->opt_s);
    R->clip_dur = cfg->grad_clip && cl->dp > 1 ? sim_from_seconds(net_allreduce_ring(cl, 4.0 * cl->tp)) : 0;
    R->slowdown = cfg->overlap_slowdown >= 0 ? cfg->overlap_slowdown : cfg->calib->overlap_slowdown;
    if (!(R->slowdown >= 0 && R->slowdown < 1))
        OS_FAIL(OS_ERR_ARG, "replay", "overlap slowdown", "a fraction in [0, 1)", "%g", R->slowdown);
    OS_CHECK(engine_create(&R->engine, cfg->engine_kind, (size_t)R->D * 2 + 64));
    OS_CHECK(net_scratch_create(&R->net, cl));
    OS_CHECK(policy_scratch_create(&R->pol));
    os_arena_init(&R->arena);
    R->pc = calloc((size_t)R->D * R->P, sizeof *R->pc);
    ALLOC_CHECK(R->pc);
    OS_CHECK(ensure_prog(R, 1));
fail:
    return st;
}

OsStatus replay_run(ReplaySummary *sum, const ReplayConfig *cfg, Trace *t, ReplayStepFn *cb, void *user) {
    OsStatus st = OS_OK;
    Replay R;
    memset(&R, 0, sizeof R);
    memset(sum, 0, sizeof *sum);
    double *steps_s = NULL;
    double wall0 = os_now();
    OS_CHECK(replay_setup(&R, cfg, t, sum));

    uint64_t total = trace_n_steps(t);
    uint64_t first = cfg->first_step, last = total;
    if (first >= total)
        OS_FAIL(OS_ERR_ARG, trace_path(t), "--skip", NULL, "the trace has %llu steps, cannot start at step %llu",
                (unsigned long long)total, (unsigned long long)first);
    if (cfg->n_steps && first + cfg->n_steps < last) last = first + cfg->n_steps;
    uint64_t n = last - first;
    steps_s = malloc(n * sizeof *steps_s);
    ALLOC_CHECK(steps_s);

    sum->P = replay_phase_names(sum->phase_name, R.m);
    snprintf(sum->calib_name, sizeof sum->calib_name, "%s", cfg->calib->name);

    OsProgress prog;
    os_progress_init(&prog, "replay", n);
    if (!cfg->progress) prog.enabled = 0;
    double flops = 0, flops_na = 0, flops_c = 0, flops_hw = 0, tokens = 0, samples = 0, time = 0;
    SimTime now = 0;
    for (uint64_t k = 0; k < n; k++) {
        const TraceStep *s;
        OS_CHECK(trace_read_step(t, first + k, &s));
        if (!cfg->regroup && s->dp != R.D)
            OS_FAIL(OS_ERR_FORMAT, trace_path(t), "/steps.dp", "add --regroup",
                    "step %llu was drawn for DP %u, the cluster has DP %u", (unsigned long long)s->index, s->dp, R.D);
        StepBufs b;
        StepWork w;
        StepResult res;
        memset(&res, 0, sizeof res);
        OS_CHECK(carve(&R, &b, s->n_examples, s->n_items));
        OS_CHECK(build_work(&R, &w, &b, s, &sum->long_examples));
        Plan pl = {.home = b.home, .ex_rank = b.ex_rank, .it_rank = b.it_rank, .hierarchical = 0};
        /* thread CPU time: the balancer's own cost, not the load of whatever else runs here */
        double t0 = os_thread_cpu_now();
        OS_CHECK(cfg->policy->fn(&pl, &w, R.pol));
        res.balancer_s = os_thread_cpu_now() - t0;
        /* --balancer-cost replaces the measurement everywhere, so output is reproducible */
        if (cfg->balancer_cost_s >= 0) res.balancer_s = cfg->balancer_cost_s;
        OS_CHECK(plan_check(&pl, &w, cfg->policy->name));
        int clamped = 0;
        uint32_t MB = pack_microbatches(&R, &w, &b, &pl, &clamped);
        sum->mb_clamped += (uint64_t)clamped;
        res.micro_batches = MB;
        OS_CHECK(ensure_prog(&R, MB));
        OS_CHECK(cost_ranks(&R, &w, &b, &pl, MB));
        if (cfg->policy->kind == POLICY_POST) OS_CHECK(cost_moves(&R, &w, &b, &pl, MB, &res));
        SimTime bal = cfg->policy->kind != POLICY_POST ? 0 : plan_overlap(&R, &pl, &res, cfg->balancer_cost_s >= 0);
        SimTime end;
        int record = cfg->timeline_path && k == cfg->timeline_step;
        OS_CHECK(prog_run_step(R.prog, R.engine, now, R.dur, bal, record, &end));
        res.step = s->index;
        res.n_examples = s->n_examples;
        res.n_items = s->n_items;
        step_results(&R, &w, &res, now, end);
        /* conservation: every example's tokens were computed exactly once */
        uint64_t want = 0;
        for (uint32_t i = 0; i < w.N; i++) want += w.ex_tokens[i];
        if (want != res.llm_tokens)
            OS_FAIL(OS_ERR_INTERNAL, "replay", cfg->policy->name, NULL, "step %llu: %llu LLM tokens computed, %llu drawn",
                    (unsigned long long)s->index, (unsigned long long)res.llm_tokens, (unsigned long long)want);
        if (record) {
            const char *names[PROG_MAX_TAGS];
            for (uint32_t p = 0; p < R.P; p++) names[p] = sum->phase_name[p];
            names[PROG_TAG_SYNC(R.P)] = "sync";
            names[PROG_TAG_BALANCE(R.P)] = "balance";
            names[PROG_TAG_OPTIM(R.P)] = "optimizer";
            names[PROG_TAG_PIPE(R.P)] = "pipe";
            char csv[4200];
            size_t L = strlen(cfg->timeline_path);
            if (L > 5 && !strcmp(cfg->timeline_path + L - 5, ".json"))
                snprintf(csv, sizeof csv, "%.*s.csv", (int)(L - 5), cfg->timeline_path);
            else
                snprintf(csv, sizeof csv, "%s.csv", cfg->timeline_path);
            OS_CHECK(prog_write_timeline(R.prog, cfg->timeline_path, csv, names, R.cl->dp_per_node));
        }
        now = end;
        steps_s[k] = res.step_s;
        time += res.step_s;
        flops += res.model_flops;
        flops_na += res.model_flops_noattn;
        flops_c += res.causal_flops;
        flops_hw += res.hw_flops;
        tokens += (double)res.llm_tokens;
        samples += res.n_examples;
        sum->idle_frac += res.step_s > 0 ? res.idle_s / res.step_s : 0;
        for (uint32_t p = 0; p < R.P; p++) {
            sum->phase_idle_frac[p] += res.phase_idle_frac[p];
            sum->phase_imbalance[p] += res.phase_imbalance[p];
        }
        sum->micro_batches_per_step += res.micro_batches;
        sum->gemm_s_per_step += res.gemm_s;
        sum->attn_s_per_step += res.attn_s;
        sum->mem_s_per_step += res.mem_s;
        sum->optimizer_s_per_step += res.optimizer_s;
        sum->slowed_s_per_step += res.slowed_s;
        sum->grad_sync_s_per_step += res.grad_sync_s;
        sum->bytes_intra_per_step += (double)res.bytes_intra;
        sum->bytes_inter_per_step += (double)res.bytes_inter;
        sum->a2a_s_per_step += res.a2a_s;
        sum->balancer_s_per_step += res.balancer_s;
        res.D = R.D;
        res.P = R.P;
        res.rank_phase = R.pc;
        res.work = &w;
        res.plan = &pl;
        res.trace_step = s;
        if (cb) OS_CHECK(cb(&res, user));
        os_progress_update(&prog, k + 1);
    }
    os_progress_done(&prog);
    sum->steps = n;
    double dn = (double)n;
    sum->step_mean_s = time / dn;
    sum->idle_frac /= dn;
    for (uint32_t p = 0; p < R.P; p++) {
        sum->phase_idle_frac[p] /= dn;
        sum->phase_imbalance[p] /= dn;
    }
    sum->micro_batches_per_step /= dn;
    sum->gemm_s_per_step /= dn;
    sum->attn_s_per_step /= dn;
    sum->mem_s_per_step /= dn;
    sum->optimizer_s_per_step /= dn;
    sum->slowed_s_per_step /= dn;
    sum->grad_sync_s_per_step /= dn;
    sum->bytes_intra_per_step /= dn;
    sum->bytes_inter_per_step /= dn;
    sum->a2a_s_per_step /= dn;
    sum->balancer_s_per_step /= dn;
    sum->tokens_per_s = time > 0 ? tokens / time : 0;
    sum->samples_per_s = time > 0 ? samples / time : 0;
    double denom = time * R.cl->gpus * R.cl->peak_flops;
    if (denom > 0) {
        sum->mfu = flops / denom;
        sum->mfu_noattn = flops_na / denom;
        sum->mfu_causal = flops_c / denom;
        sum->hfu = flops_hw / denom;
    }
    qsort(steps_s, n, sizeof *steps_s, cmp_double);
    sum->step_min_s = steps_s[0];
    sum->step_max_s = steps_s[n - 1];
    sum->step_p50_s = pct(steps_s, n, 0.50);
    sum->step_p99_s = pct(steps_s, n, 0.99);
    sum->events = engine_events_processed(R.engine);
    sum->needs_recompute = R.needs_recompute;
    sum->wall_s = os_now() - wall0;
fail:
    free(steps_s);
    replay_free(&R);
    return st;
}
