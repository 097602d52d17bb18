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
#include "sim/microbatch.h"
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
    layout_init(&c->par);
    c->setup = SETUP_FSDP;
    c->allreduce = AR_RING;
    c->layout = ATTN_VARLEN;
    c->policy = policy_find("none");
    c->popt.objective = OBJ_COST;
    c->popt.seed = 1;
    c->fsdp_groups = 0;
    c->ddp_buckets = 4;
    c->timeline_ranks = REPLAY_TIMELINE_RANKS;
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
    uint32_t *rank_ex, *rank_off, *kk_tok; /* mb-kk: examples by rank [N], offsets [D+1], tokens [N] */
    double *kk_work;  /* [N] their costs */
    uint16_t *kk_mb;  /* [N] their micro-batch within the rank */
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
    uint32_t tok_per_item[TRACE_MAX_MODALITIES]; /* the trace's fixed LLM tokens per item, or 0 */
    Prog *prog;
    Engine *engine;
    /* the parallel layout: S stages x V chunks (SV virtual stages), W = S * D workers */
    Layout L;
    uint32_t S, V, SV, W;
    uint8_t on_v[REPLAY_MAX_PHASES * LAYOUT_MAX_VSTAGES]; /* phase p has work on virtual stage v */
    CostSlice slice[REPLAY_MAX_PHASES * LAYOUT_MAX_VSTAGES]; /* what of phase p's stack runs there */
    uint32_t first_v[REPLAY_MAX_PHASES];   /* virtual stage where phase p's tokens enter */
    SimTime sgrad[PROG_MAX_STAGES], sag[PROG_MAX_STAGES], sopt[PROG_MAX_STAGES];
    double stage_free[PROG_MAX_STAGES];    /* bytes per GPU left for activations, per stage */
    double stage_layers[PROG_MAX_STAGES];  /* LLM layers per stage (all its chunks) */
    Cluster G, T;          /* views: the gradient group (DP x CP) and the TP group */
    double act_layer_token, act_layer_floor; /* activation bytes per LLM token per layer per GPU */
    double *mb_tok;        /* [D * MB] LLM tokens of replica r's micro-batch k */
    size_t mb_tok_cap;
    NetScratch *net;
    PolicyScratch *pol;
    OsArena arena;
    SimTime *dur;         /* [W*P*MB*V*2] */
    double *rec_tok, *rec_flop; /* the same shape: each op's tokens and model FLOPs (timelines) */
    size_t dur_cap;       /* entries allocated in dur (and rec_*) */
    uint32_t MB;          /* micro-batches of the program built (prog) */
    uint32_t *cnt, *fill; /* [P*D*MB + 1] bucket offsets by (phase, rank, micro-batch) */
    size_t cnt_cap, fill_cap;
    PhaseCost *pc;        /* [D*P] rank r's share of phase p, summed over its micro-batches */
    SimTime gdur[REPLAY_MAX_PHASES]; /* one gradient collective per module */
    SimTime rsdur[REPLAY_MAX_PHASES]; /* FSDP: one group's reduce-scatter per module */
    uint32_t groups[REPLAY_MAX_PHASES]; /* FSDP groups per module */
    SimTime clip_dur;
    double opt_s, slowdown;
    double act_per_token; /* activation bytes per LLM token per GPU kept for backward (all layers) */
    double act_floor_per_token; /* the same with full recomputation: the floor */
    uint64_t needs_recompute; /* examples whose activations fit only with recomputation */
    double mem_free;      /* bytes per GPU left for activations */
    const char *trace_path;
    Trace *trace; /* borrowed */
    CostMemo *memo;
    MbScratch *mbs;
} Replay;

/* The step's scratch, carved from one arena (the (phase, rank, micro-batch) bucket offsets,
 * whose count is known only after packing, live in R->cnt / R->fill). */
static OsStatus carve(Replay *R, StepBufs *b, uint32_t N, uint32_t M) {
    OsStatus st = OS_OK;
    size_t D = R->D;
    size_t need = (size_t)N * (4 * 4 + 8 + 8 + 3 * 4 + 2) + (size_t)M * (4 * 4 + 8 + 3 * 8 + 1) + D * (4 + 8 + 4) +
                  (size_t)N * (4 + 4 + 8 + 2) + (D + 1) * 4 +
                  (size_t)(N + M) * 4 + (size_t)(2 * M + N) * sizeof(NetMove) + 40 * 64;
    os_arena_reset(&R->arena);
    OS_CHECK(os_arena_reserve(&R->arena, need));
#define CARVE(f, n) b->f = os_arena_alloc(&R->arena, (size_t)(n) * sizeof(*b->f) + 1)
    CARVE(drawn, N); CARVE(ex_tokens, N); CARVE(ex_cost, N); CARVE(ex_bytes, N);
    CARVE(home, N); CARVE(ex_rank, N); CARVE(ex_mb, N);
    CARVE(it_example, M); CARVE(it_len, M); CARVE(it_cost, M); CARVE(it_in_bytes, M);
    CARVE(it_out_bytes, M); CARVE(it_phase, M); CARVE(it_rank, M);
    CARVE(rank_next, D); CARVE(rank_tok, D); CARVE(rank_cnt, D);
    CARVE(lens, N + M);
    CARVE(rank_ex, N); CARVE(rank_off, D + 1); CARVE(kk_tok, N); CARVE(kk_work, N); CARVE(kk_mb, N);
    CARVE(moves, 2 * (size_t)M + N);
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
    for (uint32_t m = 0; m < TRACE_MAX_MODALITIES; m++)
        R->tok_per_item[m] = m > 0 && m < trace_n_modalities(t) ? trace_tokens_per_item(t, m) : 0;
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
            /* a trace that states its LLM tokens per item (a resampler's fixed count) wins over
             * the projector's ceil(len / ratio) */
            uint32_t tok = R->tok_per_item[it->modality] ? R->tok_per_item[it->modality]
                                                         : cost_item_llm_tokens(m, (uint32_t)e, it->length);
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
/* mb-kk (verl's rearrange_micro_batches): every rank's count from the token budget, the step's
 * count the most any rank needs (and at least the pipeline depth), then each rank's sequences
 * spread over that many micro-batches by Karmarkar-Karp on their cost, the light ones at both
 * ends (sim/microbatch.h). Returns the count through *out. */
static OsStatus pack_kk(Replay *R, const StepWork *w, StepBufs *b, const Plan *pl, uint32_t *out) {
    OsStatus st = OS_OK;
    uint32_t D = R->D, N = w->N, MB = 1;
    memset(b->rank_off, 0, (D + 1) * sizeof *b->rank_off);
    for (uint32_t i = 0; i < N; i++) b->rank_off[pl->ex_rank[i] + 1]++;
    for (uint32_t r = 0; r < D; r++) b->rank_off[r + 1] += b->rank_off[r];
    memcpy(b->rank_next, b->rank_off, D * sizeof *b->rank_next);
    for (uint32_t i = 0; i < N; i++) b->rank_ex[b->rank_next[pl->ex_rank[i]]++] = i;
    for (uint32_t i = 0; i < N; i++) {
        b->kk_tok[i] = w->ex_tokens[b->rank_ex[i]];
        b->kk_work[i] = w->ex_cost[b->rank_ex[i]];
    }
    for (uint32_t r = 0; r < D; r++) {
        uint32_t c, o = b->rank_off[r], n = b->rank_off[r + 1] - o;
        OS_CHECK(mb_count_for_budget(&c, b->kk_tok + o, n, R->cfg->micro_batch_tokens, R->mbs));
        MB = OS_MAX(MB, c);
    }
    MB = OS_MIN(OS_MAX(MB, R->S), MB_MAX);
    for (uint32_t r = 0; r < D; r++) {
        uint32_t o = b->rank_off[r], n = b->rank_off[r + 1] - o;
        if (n == 0) continue;
        OS_CHECK(mb_partition_kk(b->kk_mb + o, b->kk_work + o, n, MB, R->mbs));
        for (uint32_t k = 0; k < n; k++) b->ex_mb[b->rank_ex[o + k]] = b->kk_mb[o + k];
    }
    *out = MB;
fail:
    return st;
}

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

/* TP and CP communication of one slice of a phase for one micro-batch, seconds exposed on the
 * compute stream. TP with sequence parallelism (Korthikanti et al. 2022 §4.2.2): per layer, an
 * all-gather before and a reduce-scatter after attention and the MLP, in forward and again in
 * backward (and in the recomputed forward); without it two all-reduces each way (Shoeybi et al.
 * 2019 §3). The message is the micro-batch's whole activation (tokens / cp x hidden x bytes),
 * over the TP group (NVLink inside a node). Megatron's --tp-comm-overlap pipelines these with
 * the GEMMs: then only what exceeds the slice's GEMM time shows. CP: ring attention passes the
 * key/value blocks (cp - 1) times per layer forward and K/V plus their gradients backward
 * (Megatron-Core's load-balanced ring), overlapped with the attention kernel: only the excess
 * shows. Embedding and loss all-reduces of vocabulary parallelism are not charged. */
static void par_comm(const Replay *R, uint32_t p, const PhaseCost *one, double layers, double *tf, double *tb,
                     double *cf, double *cb) {
    const ModelSpec *m = R->m;
    const StackSpec *st = p < m->n_enc ? &m->enc[p].stack : &m->llm;
    const Layout *L = &R->L;
    double tok = (double)one->tokens / L->cp, full = R->cfg->recompute == RECOMPUTE_FULL;
    *tf = *tb = *cf = *cb = 0;
    if (L->tp > 1 && tok > 0) {
        double bytes = tok * st->hidden * m->act_bytes;
        double per = L->sp ? net_allgather(&R->T, bytes) + net_reduce_scatter(&R->T, bytes)
                           : net_allreduce_ring(&R->T, bytes);
        *tf = 2 * per * layers;
        *tb = 2 * per * layers * (1 + full);
        if (L->tp_overlap) {
            double tot = *tf + *tb, shown = OS_MAX(0.0, tot - one->gemm_s);
            *tf *= tot > 0 ? shown / tot : 0;
            *tb *= tot > 0 ? shown / tot : 0;
        }
    }
    if (L->cp > 1 && tok > 0) {
        double kv = (double)st->kv_heads * ((double)st->hidden / st->heads) / L->tp;
        int cross = (uint64_t)L->tp * L->cp > R->cl->gpus_per_node;
        double step = net_p2p(R->cl, 2.0 * tok * kv * m->act_bytes, cross);
        double attn_f = one->attn_s / 3.5, attn_b = one->attn_s - attn_f; /* backward = 2.5 forward */
        *cf = OS_MAX(0.0, (L->cp - 1) * step * layers - attn_f);
        *cb = OS_MAX(0.0, 2.0 * (L->cp - 1) * step * layers - attn_b);
    }
}

/* Bucket unit lengths by (phase, rank, micro-batch) and cost every worker's share of every
 * phase micro-batch by micro-batch: each virtual stage prices its slice of the stack (cost.h,
 * one GPU of the TP x CP group) plus its exposed TP/CP communication. R->pc gets the DP rank's
 * totals (times as the mean stage's, FLOPs and tokens whole). */
static OsStatus cost_ranks(Replay *R, const StepWork *w, StepBufs *b, const Plan *pl, uint32_t MB, StepResult *res) {
    OsStatus st = OS_OK;
    uint32_t D = R->D, P = R->P, llm = P - 1, S = R->S, SV = R->SV;
    size_t PDM = (size_t)P * D * MB;
    OS_CHECK(grow_u32(&R->cnt, &R->cnt_cap, PDM + 1));
    OS_CHECK(grow_u32(&R->fill, &R->fill_cap, PDM));
    OS_CHECK(os_grow((void **)&R->mb_tok, &R->mb_tok_cap, (size_t)D * MB, sizeof *R->mb_tok));
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
    double tp_comm = 0, cp_comm = 0;
    for (uint32_t p = 0; p < P; p++)
        for (uint32_t r = 0; r < D; r++) {
            PhaseCost *c = &R->pc[(size_t)r * P + p];
            memset(c, 0, sizeof *c);
            for (uint32_t k = 0; k < MB; k++) {
                size_t key = KEY(p, r, k);
                uint32_t n = R->cnt[key + 1] - R->cnt[key];
                const uint32_t *lens = b->lens + R->cnt[key];
                if (p == llm) {
                    double t = 0;
                    for (uint32_t u = 0; u < n; u++) t += lens[u];
                    R->mb_tok[(size_t)r * MB + k] = t;
                }
                for (uint32_t v = 0; v < SV; v++) {
                    if (!R->on_v[p * SV + v]) continue;
                    const CostSlice *sl = SV == 1 ? NULL : &R->slice[p * SV + v];
                    PhaseCost one;
                    if (n == 0) memset(&one, 0, sizeof one);
                    else OS_CHECK(cost_phase_slice(&one, &R->cm, p, lens, n, sl));
                    double layers = sl ? sl->layers : (p < llm ? R->m->enc[p].stack.layers : R->m->llm.layers);
                    double tf, tb, cf, cb;
                    par_comm(R, p, &one, layers, &tf, &tb, &cf, &cb);
                    size_t d = prog_dur_index(R->prog, (v % S) * D + r, p, k, v / S, 0);
                    R->dur[d + 0] = sim_from_seconds(one.fwd_s + tf + cf);
                    R->dur[d + 1] = sim_from_seconds(one.bwd_s + tb + cb);
                    /* the timeline's span args: the 6N convention's 1/3 forward, 2/3 backward */
                    R->rec_tok[d] = R->rec_tok[d + 1] = (double)one.tokens;
                    R->rec_flop[d] = one.model_flops / 3, R->rec_flop[d + 1] = one.model_flops * 2 / 3;
                    tp_comm += tf + tb;
                    cp_comm += cf + cb;
                    c->fwd_s += (one.fwd_s + tf + cf) / S, c->bwd_s += (one.bwd_s + tb + cb) / S;
                    c->gemm_s += one.gemm_s / S, c->attn_s += one.attn_s / S, c->mem_s += one.mem_s / S;
                    c->model_flops += one.model_flops, c->model_flops_noattn += one.model_flops_noattn;
                    c->causal_flops += one.causal_flops, c->hw_flops += one.hw_flops;
                    if (v == R->first_v[p]) c->tokens += one.tokens;
                }
            }
        }
#undef KEY
    res->tp_comm_s = tp_comm / R->W;
    res->cp_comm_s = cp_comm / R->W;
fail:
    return st;
}

/* Pipeline transfers of this step: replica r's micro-batch k crossing from virtual stage v to
 * v + 1 carries its activations (tokens / cp x hidden x bytes, split over the tp GPUs: with
 * sequence parallelism each holds 1/tp, else Megatron's scatter-gather sends 1/tp each), and the
 * same bytes of gradients back; over NVLink when both GPUs share a node, else one NIC. And the
 * activation memory the stages hold: a stage keeps layout_inflight micro-batches of its layers. */
static OsStatus pipe_step(Replay *R, uint32_t MB, StepResult *res) {
    uint32_t D = R->D, S = R->S, SV = R->SV;
    const Layout *L = &R->L;
    double per_tok = (double)R->m->llm.hidden * R->m->act_bytes / L->cp / L->tp;
    double group = (double)L->tp * L->cp;
    double peak = 0;
    double most = 0; /* the largest micro-batch of any replica */
    for (size_t i = 0; i < (size_t)D * MB; i++) most = OS_MAX(most, R->mb_tok[i]);
    for (uint32_t q = 0; q < S; q++) {
        double in = layout_inflight(L, q, MB), held = in * most * R->act_layer_token * R->stage_layers[q];
        double floor_ = in * most * R->act_layer_floor * R->stage_layers[q];
        peak = OS_MAX(peak, held);
        /* without a pipeline build_work checks every example against the memory already */
        if (S > 1 && floor_ > R->stage_free[q]) {
            char hint[200];
            snprintf(hint, sizeof hint, "use more stages or TP/CP (--parallel), smaller micro-batches (--micro-batch, "
                                        "--micro-batch-tokens), or a smaller --model");
            return os_fail(OS_ERR_RANGE, R->m->name, "memory", hint,
                           "pipeline stage %u holds %.1f micro-batches of %.0f LLM tokens in flight: their activations "
                           "need %.1f GB per GPU even with recomputation, %.1f GB are left after the model state",
                           q, in, most, floor_ / 1e9, R->stage_free[q] / 1e9);
        }
        if (S > 1 && held > R->stage_free[q]) R->needs_recompute++;
    }
    res->act_bytes_peak = peak;
    for (uint32_t r = 0; r < D && SV > 1; r++)
        for (uint32_t k = 0; k < MB; k++) {
            double bytes = R->mb_tok[(size_t)r * MB + k] * per_tok;
            for (uint32_t v = 0; v + 1 < SV; v++) {
                uint64_t g0 = (uint64_t)group * (r + (uint64_t)D * (v % S)), g1 = (uint64_t)group * (r + (uint64_t)D * ((v + 1) % S));
                int cross = cluster_node_of_gpu(R->cl, g0) != cluster_node_of_gpu(R->cl, g1);
                SimTime d = sim_from_seconds(net_p2p(R->cl, bytes, cross));
                prog_xfer(R->prog, r, prog_xfer_slot(R->prog, k, v, 0))->dur = d;
                prog_xfer(R->prog, r, prog_xfer_slot(R->prog, k, v, 1))->dur = d;
            }
        }
    return OS_OK;
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
    uint32_t D = R->D, P = R->P, W = R->W;
    const Prog *pg = R->prog;
    res->step_s = sim_to_seconds(end - start);
    double busy = 0, idle = 0, comm = 0, slowed = 0, bubble = 0, p2p = 0;
    SimTime last_wait = start;
    uint8_t pipe = (uint8_t)PROG_TAG_PIPE(P);
    for (uint32_t k = 0; k < W; k++) {
        const RankRun *rr = &pg->ranks[k];
        busy += sim_to_seconds(rr->busy);
        idle += sim_to_seconds(rr->idle);
        comm += sim_to_seconds(rr->comm);
        slowed += sim_to_seconds(rr->slowed);
        bubble += sim_to_seconds(rr->tag_idle[pipe]);
        p2p += sim_to_seconds(rr->tag_comm[pipe]);
        if (rr->final_wait_at > last_wait) last_wait = rr->final_wait_at;
    }
    res->busy_s = busy / W;
    res->idle_s = idle / W;
    res->comm_s = comm / W;
    res->slowed_s = slowed / W;
    res->bubble_s = bubble / W;
    res->p2p_s = p2p / W;
    res->grad_sync_s = sim_to_seconds(end - last_wait);
    res->optimizer_s = R->opt_s;
    for (size_t k = 0; k < (size_t)D * P; k++) {
        res->gemm_s += R->pc[k].gemm_s / D;
        res->attn_s += R->pc[k].attn_s / D;
        res->mem_s += R->pc[k].mem_s / D;
    }
    for (uint32_t p = 0; p < P; p++) {
        double mx = 0, sum = 0, idle_frac = 0, big = 0;
        for (uint32_t r = 0; r < D; r++) {
            const PhaseCost *c = &R->pc[(size_t)r * P + p];
            double t = c->fwd_s + c->bwd_s;
            sum += t;
            if (t > mx) mx = t;
            res->model_flops += c->model_flops;
            res->model_flops_noattn += c->model_flops_noattn;
            res->causal_flops += c->causal_flops;
            res->hw_flops += c->hw_flops;
            if (p == P - 1) res->llm_tokens += c->tokens;
            else res->enc_positions[p] += c->tokens;
        }
        for (uint32_t k = 0; k < W; k++) {
            const RankRun *rr = &pg->ranks[k];
            SimTime span = rr->tag_busy[p] + rr->tag_idle[p] + rr->tag_comm[p];
            if (span > 0) idle_frac += (double)rr->tag_idle[p] / (double)span;
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
            if (cost_phase(&one, &R->cm, p, &big_len, 1) == OS_OK) big = (one.fwd_s + one.bwd_s) / R->S;
        }
        double mean = sum / D;
        res->phase_max_s[p] = mx;
        res->phase_mean_s[p] = mean;
        res->phase_oracle_s[p] = OS_MAX(mean, big);
        res->phase_imbalance[p] = mean > 0 ? mx / mean : 1.0;
        res->phase_idle_frac[p] = idle_frac / W;
    }
    double denom = res->step_s * R->cl->gpus * R->cl->peak_flops;
    if (denom > 0) {
        res->mfu = res->model_flops / denom;
        res->mfu_noattn = res->model_flops_noattn / denom;
        res->mfu_causal = res->causal_flops / denom;
        res->hfu = res->hw_flops / denom;
    }
}

void replay_timeline_meta(char *buf, size_t cap, const char *policy, uint64_t step, const char *model,
                          uint32_t gpus) {
    snprintf(buf, cap, "# policy: %s\n# step: %llu\n# model: %s\n# gpus: %u\n", policy, (unsigned long long)step, model,
             gpus);
}

void replay_apply_calib(Cluster *c, const Calib *cal) {
    if (cal->peak_flops > 0) c->peak_flops = cal->peak_flops;
    if (cal->intra_bw > 0) c->intra_bw = cal->intra_bw;
    if (cal->inter_bw > 0) c->inter_bw = cal->inter_bw;
    const char *nv = calib_get_meta(cal, "nvls");
    if (nv && !strcmp(nv, "0")) c->nvls = 0;
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
    free(R->rec_tok);
    free(R->rec_flop);
    free(R->pc);
    free(R->memo);
    free(R->cnt);
    free(R->fill);
    free(R->mb_tok);
    mb_scratch_destroy(R->mbs);
}

/* The step program for MB micro-batches (rebuilt when a step needs another count), and room
 * for its durations. */
static OsStatus ensure_prog(Replay *R, uint32_t MB) {
    OsStatus st = OS_OK;
    if (R->prog && R->MB == MB) return OS_OK;
    const ReplayConfig *cfg = R->cfg;
    prog_destroy(R->prog);
    R->prog = NULL;
    ProgSpec ps = {.D = R->D, .P = R->P, .M = MB, .S = R->S, .V = R->V, .on_vstage = R->on_v,
                   .stage_grad_dur = R->sgrad, .stage_ag_dur = R->sag, .stage_opt_dur = R->sopt,
                   .stage_sync = cfg->grad_sync_end,
                   .fsdp = cfg->setup == SETUP_DDP ? SHARD_DDP : cfg->setup == SETUP_FSDP_GRAD_OP ? SHARD_GRAD_OP : SHARD_FULL,
                   .groups = R->groups, .buckets = cfg->ddp_buckets, .post = cfg->policy->kind == POLICY_POST,
                   .grad_coll_dur = R->gdur, .rs_dur = R->rsdur, .clip_dur = R->clip_dur, .slowdown = R->slowdown};
    OS_CHECK(prog_create(&R->prog, &ps));
    prog_set_reference(R->prog, R->cfg->ref_slowdown);
    R->MB = MB;
    size_t need = (size_t)R->W * R->P * MB * R->V * 2;
    if (need > R->dur_cap) {
        SimTime *d = realloc(R->dur, need * sizeof *d);
        ALLOC_CHECK(d);
        R->dur = d;
        double *a = realloc(R->rec_tok, need * sizeof *a);
        ALLOC_CHECK(a);
        R->rec_tok = a;
        double *b = realloc(R->rec_flop, need * sizeof *b);
        ALLOC_CHECK(b);
        R->rec_flop = b;
        R->dur_cap = need;
    }
fail:
    return st;
}

/* Resolve the layout against the cluster and the model: which phase runs where, each stage's
 * slice, parameters, memory, gradient collectives and optimizer step. */
static OsStatus setup_layout(Replay *R, ReplaySummary *sum) {
    OsStatus st = OS_OK;
    const ReplayConfig *cfg = R->cfg;
    const ModelSpec *m = R->m;
    const Cluster *cl = R->cl;
    R->L = cfg->par;
    Layout *L = &R->L;
    if (L->tp == 1 && L->pp == 1 && L->cp == 1) L->tp = cl->tp; /* the pure-DP default: the cluster's TP */
    if (L->vp == 0) L->vp = 1;
    if (L->tp != cl->tp || L->pp != cl->pp || L->cp != cl->cp)
        OS_FAIL(OS_ERR_ARG, "replay", "--parallel", "build the cluster with cluster_init_parallel from the layout",
                "the cluster has tp %u pp %u cp %u, the layout tp %u pp %u cp %u", cl->tp, cl->pp, cl->cp, L->tp, L->pp, L->cp);
    OS_CHECK(layout_resolve(L, cl->gpus, cl->gpus_per_node, m));
    if (L->pp > PROG_MAX_STAGES)
        OS_FAIL(OS_ERR_ARG, "--parallel pp", NULL, NULL, "at most %d pipeline stages", PROG_MAX_STAGES);
    layout_describe(sum->layout, sizeof sum->layout, L);
    R->S = L->pp;
    R->V = L->vp;
    R->SV = L->n_vstages;
    R->W = R->S * R->D;
    R->cm.tp = L->tp;
    R->cm.cp = L->cp;
    R->cm.sp = L->sp;
    R->G = cluster_grad_group(cl);
    R->T = cluster_tp_group(cl);
    uint32_t P = R->P, SV = R->SV, llm = P - 1;
    memset(R->on_v, 0, sizeof R->on_v);
    for (uint32_t e = 0; e < m->n_enc; e++) {
        uint32_t v = layout_enc_vstage(L, e);
        R->on_v[e * SV + v] = 1;
        R->slice[e * SV + v] = (CostSlice){.layers = m->enc[e].stack.layers, .embed = 1, .head = 1};
        R->first_v[e] = v;
    }
    R->first_v[llm] = 0;
    for (uint32_t v = 0; v < SV; v++) {
        R->slice[llm * SV + v] = (CostSlice){.layers = L->layer0[v + 1] - L->layer0[v], .embed = v == 0, .head = v + 1 == SV};
        R->on_v[llm * SV + v] = 1;
    }
    /* model state per GPU on the fullest stage: DDP replicates it; FSDP FULL_SHARD shards it over
     * the gradient group (DP x CP); SHARD_GRAD_OP (and Megatron's distributed optimizer) keeps
     * the bf16 weights whole and shards the rest; TP splits every matrix */
    double shard = (double)R->G.dp, worst_state = 0;
    for (uint32_t q = 0; q < R->S; q++) {
        double params = 0;
        if (R->S == 1) params = (double)model_params(m);
        else
            for (uint32_t c = 0; c < R->V; c++) params += (double)layout_vstage_params(L, m, layout_vstage(L, q, c));
        double state = params * STATE_BYTES_PER_PARAM / L->tp / (cfg->setup == SETUP_DDP ? 1 : shard);
        if (cfg->setup == SETUP_FSDP_GRAD_OP)
            state = params / L->tp * (m->param_bytes + (STATE_BYTES_PER_PARAM - m->param_bytes) / shard);
        worst_state = OS_MAX(worst_state, state);
        if (state >= cl->mem_bytes) {
            char hint[200];
            snprintf(hint, sizeof hint, "%s", cfg->setup != SETUP_FSDP || R->S > 1
                                                  ? "use --setup fsdp, more --parallel tp/pp, or a smaller --model"
                                                  : "use more GPUs (--gpus N --regroup), more --parallel tp/pp, or a smaller --model");
            char what[64] = "";
            if (R->S > 1) snprintf(what, sizeof what, " on pipeline stage %u", q);
            OS_FAIL(OS_ERR_RANGE, m->name, "memory", hint,
                    "weights + gradients + Adam states need %.1f GB per GPU%s under %s, the GPU has %.1f GB", state / 1e9,
                    what, replay_setup_name(cfg->setup), cl->mem_bytes / 1e9);
        }
        R->stage_free[q] = cl->mem_bytes - state;
        R->stage_layers[q] = 0;
        for (uint32_t c = 0; c < R->V; c++) {
            uint32_t v = layout_vstage(L, q, c);
            R->stage_layers[q] += L->layer0[v + 1] - L->layer0[v];
        }
        /* a stage's gradient buckets (pipelines: synchronised after its last backward), the
         * distributed optimizer's parameter all-gather, and its optimizer step */
        double rb = cfg->grad_reduce_bytes ? (double)cfg->grad_reduce_bytes : (double)m->param_bytes;
        double B = cfg->ddp_buckets;
        if (cfg->setup == SETUP_DDP)
            R->sgrad[q] = sim_from_seconds((cfg->allreduce == AR_TREE ? net_allreduce_tree : net_allreduce_ring)(&R->G, params * rb / B));
        else R->sgrad[q] = sim_from_seconds(net_reduce_scatter(&R->G, params * rb / B));
        R->sag[q] = sim_from_seconds(net_allgather(&R->G, params * m->param_bytes / B));
        double per_gpu = params / L->tp / (cfg->setup == SETUP_DDP ? 1 : shard);
        double os_ = cfg->optimizer ? cost_optimizer_s(&R->cm, per_gpu) : 0;
        R->sopt[q] = sim_from_seconds(os_);
        if (os_ > R->opt_s) R->opt_s = os_;
    }
    sum->state_bytes_per_gpu = worst_state;
    R->mem_free = R->stage_free[0];
    for (uint32_t q = 1; q < R->S; q++) R->mem_free = OS_MIN(R->mem_free, R->stage_free[q]);
    /* activations kept for backward, per LLM token per layer on one GPU (TP and CP split them) */
    R->act_layer_token = (cfg->recompute ? ACT_BYTES_RECOMPUTE_H : ACT_BYTES_PER_TOKEN_LAYER_H) * (double)m->llm.hidden /
                         L->tp / L->cp;
    R->act_layer_floor = ACT_BYTES_RECOMPUTE_H * (double)m->llm.hidden / L->tp / L->cp;
    double most_layers = 0;
    for (uint32_t q = 0; q < R->S; q++) most_layers = OS_MAX(most_layers, R->stage_layers[q]);
    /* the per-example checks (build_work): one example alone on the fullest stage */
    R->act_per_token = R->act_layer_token * most_layers;
    R->act_floor_per_token = R->act_layer_floor * most_layers;
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
    OS_CHECK(setup_layout(R, sum));
    if (cfg->mb_policy == MBP_KK && cfg->micro_batch_tokens == 0)
        OS_FAIL(OS_ERR_ARG, "replay", "--mb-policy", "give the budget with --micro-batch-tokens T",
                "mb-kk picks the micro-batch count from a token budget");
    if (cfg->mb_policy == MBP_KK && cfg->micro_batch)
        OS_FAIL(OS_ERR_ARG, "replay", "--mb-policy", "drop --micro-batch (mb-kk sets the count from the budget)",
                "mb-kk and --micro-batch N both set the micro-batch count");
    if (cfg->mb_policy == MBP_KK) OS_CHECK(mb_scratch_create(&R->mbs));
    for (uint32_t p = 0; p < R->P; p++) cost_unit_prepare(&R->unit[p], &R->cm, p);
    map_modalities(R, t);
    R->trace = t;

    /* the trace's DP against the cluster's */
    if (trace_n_steps(t) > 0 && !cfg->regroup) {
        const TraceStep *s0;
        OS_CHECK(trace_read_step(t, cfg->first_step < trace_n_steps(t) ? cfg->first_step : 0, &s0));
        if (s0->dp != cl->dp) {
            char hint[200];
            snprintf(hint, sizeof hint, "add --regroup to re-deal each global batch of %u examples to DP %u, "
                                        "or choose --gpus/--parallel so that DP = %u", s0->n_examples, cl->dp, s0->dp);
            OS_FAIL(OS_ERR_ARG, trace_path(t), "/steps.dp", hint, "the trace was drawn for DP %u but the cluster has DP %u",
                    s0->dp, cl->dp);
        }
    }

    /* no pipeline: gradient collectives per module, one FSDP layer group's all-gather (a
     * reduce-scatter costs the same) or one DDP bucket's all-reduce, over the gradient group */
    for (uint32_t p = 0; p < R->P; p++) {
        const StackSpec *sp = p < m->n_enc ? &m->enc[p].stack : &m->llm;
        double bytes = module_params(m, p) * m->param_bytes;
        uint32_t G = cfg->fsdp_groups ? cfg->fsdp_groups : sp->layers;
        if (G > PROG_MAX_GROUPS) G = PROG_MAX_GROUPS;
        R->groups[p] = G;
        double d, rb = cfg->grad_reduce_bytes ? (double)cfg->grad_reduce_bytes : (double)m->param_bytes;
        double gbytes = bytes / m->param_bytes * rb; /* the gradients, in their reduction dtype */
        if (cfg->setup != SETUP_DDP) d = net_allgather(&R->G, bytes / G);
        else d = (cfg->allreduce == AR_TREE ? net_allreduce_tree : net_allreduce_ring)(&R->G, gbytes / cfg->ddp_buckets);
        R->gdur[p] = sim_from_seconds(d);
        /* FSDP's post-backward hook prepares each unit's unsharded gradient on the stream the
         * reduce-scatter then runs on: the cast to the reduce dtype when it differs (read the
         * parameter dtype, write the reduce dtype) and the pre-division by the predivide factor
         * (read and write the reduce dtype), memory-bound at the achieved HBM bandwidth
         * (torch/distributed/fsdp/_runtime_utils.py _post_backward_hook, _reduce_grad,
         * _div_if_needed; bench/fidelity/data/SOURCES-stack.md) */
        double prep = 0;
        if (cfg->setup != SETUP_DDP && R->G.dp > 1 && cfg->calib->hbm_bw > 0) {
            double per = (rb != m->param_bytes ? m->param_bytes + rb : 0) + 2.0 * rb;
            prep = bytes / m->param_bytes / G / cl->tp * per / cfg->calib->hbm_bw;
        }
        R->rsdur[p] = sim_from_seconds(cfg->setup != SETUP_DDP ? prep + net_reduce_scatter(&R->G, gbytes / G) : d);
    }
    /* the gradient-norm all-reduce before the optimizer (a few bytes: its latency) */
    R->clip_dur = cfg->grad_clip && R->W > 1 && (R->G.dp > 1 || R->S > 1)
                      ? sim_from_seconds(net_allreduce_ring(&R->G, 4.0 * cl->tp) + (R->S > 1 ? cl->base_lat : 0))
                      : 0;
    R->slowdown = cfg->overlap_slowdown >= 0 ? cfg->overlap_slowdown : cfg->calib->overlap_slowdown;
    if (!(R->slowdown >= 0 && R->slowdown < 1))
        OS_FAIL(OS_ERR_ARG, "replay", "overlap slowdown", "a fraction in [0, 1)", "%g", R->slowdown);
    OS_CHECK(engine_create(&R->engine, cfg->engine_kind, (size_t)R->W * 2 + 64));
    OS_CHECK(net_scratch_create(&R->net, cl));
    OS_CHECK(policy_scratch_create(&R->pol));
    os_arena_init(&R->arena);
    R->pc = calloc((size_t)R->D * R->P, sizeof *R->pc);
    ALLOC_CHECK(R->pc);
    OS_CHECK(ensure_prog(R, R->V > 1 ? R->S : 1));
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
    if (cfg->n_steps && cfg->n_steps < total - first) last = first + cfg->n_steps; /* no wrap for huge --steps */
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
        res.balancer_s = res.balancer_measured_s = os_thread_cpu_now() - t0;
        /* --balancer-cost replaces the measurement everywhere, so output is reproducible */
        if (cfg->balancer_cost_s >= 0) res.balancer_s = cfg->balancer_cost_s;
        OS_CHECK(plan_check(&pl, &w, cfg->policy->name));
        int clamped = 0;
        uint32_t MB = 1;
        if (cfg->mb_policy == MBP_KK) OS_CHECK(pack_kk(&R, &w, &b, &pl, &MB));
        else MB = pack_microbatches(&R, &w, &b, &pl, &clamped);
        sum->mb_clamped += (uint64_t)clamped;
        res.micro_batches = MB;
        /* the interleaved schedule runs a multiple of pp micro-batches (Megatron-LM requires
         * it): a step with fewer runs empty ones at the end, as ranks with fewer already do */
        if (R.V > 1 && MB % R.S) MB += R.S - MB % R.S;
        OS_CHECK(ensure_prog(&R, MB));
        if (MB < R.S) sum->mb_below_pp++;
        OS_CHECK(cost_ranks(&R, &w, &b, &pl, MB, &res));
        OS_CHECK(pipe_step(&R, MB, &res));
        if (cfg->policy->kind == POLICY_POST) OS_CHECK(cost_moves(&R, &w, &b, &pl, MB, &res));
        SimTime bal = cfg->policy->kind != POLICY_POST ? 0 : plan_overlap(&R, &pl, &res, cfg->balancer_cost_s >= 0);
        SimTime end;
        int record = cfg->timeline_path && k == cfg->timeline_step;
        R.prog->rec_tokens = record ? R.rec_tok : NULL;
        R.prog->rec_flops = record ? R.rec_flop : NULL;
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
            /* the keys the timeline figure titles its panel with (analysis/plot.h) */
            char meta[1024];
            replay_timeline_meta(meta, sizeof meta, cfg->policy->name, s->index, R.m->name, R.cl->gpus);
            if (R.S > 1) {
                size_t ml = strlen(meta);
                snprintf(meta + ml, sizeof meta - ml, "# layout: %s\n", sum->layout);
            }
            /* thousands of ranks make a file no viewer opens: a sample that always holds the
             * most and the least loaded rank of every stage, said in the CSV's head */
            uint8_t *keep = malloc(R.prog->W);
            ALLOC_CHECK(keep);
            uint32_t kept = prog_timeline_sample(R.prog, cfg->timeline_ranks, keep);
            double busy = 0;
            for (uint32_t q = 0; q < R.prog->W; q++) busy += sim_to_seconds(R.prog->ranks[q].busy);
            size_t ml = strlen(meta);
            snprintf(meta + ml, sizeof meta - ml,
                     "# ranks: %u per stage, %u here (%s)\n# compute: mean %.9f s per rank over all %u\n", R.prog->D,
                     kept, kept < R.prog->D ? "the most and the least loaded, then evenly spaced: --timeline-ranks"
                                            : "every rank", busy / R.prog->W, R.prog->W);
            st = prog_write_timeline(R.prog, cfg->timeline_path, csv, names, R.cl->dp_per_node, meta, keep);
            free(keep);
            OS_CHECK(st);
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
        sum->tp_comm_s_per_step += res.tp_comm_s;
        sum->cp_comm_s_per_step += res.cp_comm_s;
        sum->bubble_s_per_step += res.bubble_s;
        sum->p2p_s_per_step += res.p2p_s;
        sum->act_bytes_peak = OS_MAX(sum->act_bytes_peak, res.act_bytes_peak);
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
    sum->tp_comm_s_per_step /= dn;
    sum->cp_comm_s_per_step /= dn;
    sum->bubble_s_per_step /= dn;
    sum->p2p_s_per_step /= dn;
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
