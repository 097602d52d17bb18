/* program.c — see program.h. The rank state machine follows a conservative discrete-event
 * scheme: a rank runs its ops in order at the engine's current time; a compute op schedules
 * the rank's next advance at now + duration; a blocking collective parks the rank until the
 * last member arrives, whose arrival schedules one completion event that wakes all members;
 * an asynchronous collective is issued onto the comm stream (FIFO, the same order on every
 * rank, so it starts at max(last member's issue, previous collective's end)) and the rank goes
 * on; a wait parks the rank until that collective's completion event.
 * Events per step: one per (rank, non-empty compute op) + one per collective. */
#include "sim/program.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* ---- building ------------------------------------------------------------------------- */

static OsStatus add_op(Prog *p, OpKind kind, uint8_t tag, uint8_t pass, uint16_t part,
                       uint16_t nparts, uint32_t coll, const char *name, uint16_t mb) {
    OsStatus st = os_grow((void **)&p->ops, &p->cap_ops, p->n_ops + 1, sizeof(Op));
    if (st != OS_OK) return st;
    p->ops[p->n_ops++] = (Op){.kind = (uint8_t)kind, .tag = tag, .pass = pass, .part = part,
                              .nparts = nparts, .mb = mb, .coll = coll, .name = name, .idle_tag = tag};
    return OS_OK;
}

/* The builder's context: which stage's list is being written and who takes part. */
typedef struct {
    uint8_t stage;     /* stage whose DP group runs this list's DP collectives */
    uint32_t members;  /* its D workers */
    uint16_t chunk;    /* model chunk of the compute ops written now */
} Ctx;

/* Returns the new collective's index through *idx. */
static OsStatus add_coll(Prog *p, const Ctx *x, uint32_t *idx, int async, uint8_t tag, CollRole role,
                         uint8_t enc, uint16_t mb, SimTime dur, const char *name) {
    OsStatus st = os_grow((void **)&p->colls, &p->cap_colls, p->n_colls + 1, sizeof(Coll));
    if (st != OS_OK) return st;
    p->colls[p->n_colls] = (Coll){.dur = dur, .async = (uint8_t)async, .tag = tag, .role = (uint8_t)role,
                                  .enc = enc, .mb = mb, .stage = x->stage, .members = x->members,
                                  .name = name, .waiters = -1, .after = -1};
    *idx = (uint32_t)p->n_colls++;
    return OS_OK;
}

static OsStatus add_sync(Prog *p, const Ctx *x, uint8_t tag, CollRole role, uint8_t enc, uint16_t mb,
                         SimTime dur, const char *name) {
    uint32_t c;
    OsStatus st = add_coll(p, x, &c, 0, tag, role, enc, mb, dur, name);
    if (st == OS_OK) st = add_op(p, OP_SYNC, tag, 0, 0, 0, c, name, mb);
    return st;
}

static OsStatus add_async(Prog *p, const Ctx *x, uint32_t *c, uint8_t tag, SimTime dur, const char *name) {
    OsStatus st = add_coll(p, x, c, 1, tag, COLL_FIXED, 0, 0, dur, name);
    if (st == OS_OK) st = add_op(p, OP_ASYNC, tag, 0, 0, 0, *c, name, 0);
    return st;
}

static OsStatus add_compute(Prog *p, const Ctx *x, uint8_t tag, uint8_t pass, uint16_t part, uint16_t nparts,
                            const char *name, uint16_t mb) {
    OsStatus st = add_op(p, OP_COMPUTE, tag, pass, part, nparts, 0, name, mb);
    if (st == OS_OK) p->ops[p->n_ops - 1].chunk = x->chunk;
    return st;
}

static uint32_t groups_of(const ProgSpec *s, uint8_t m) { return s->groups ? s->groups[m] : s->group; }

/* Forward pass of module m, micro-batch k: FSDP gathers each layer group's parameters
 * (prefetching the next group on the comm stream while this one computes); DDP just computes. */
static OsStatus build_forward(Prog *p, const Ctx *x, const ProgSpec *s, uint8_t m, uint16_t k) {
    OsStatus st = OS_OK;
    if (s->fsdp == SHARD_DDP || p->staged) return add_compute(p, x, m, 0, 0, 1, "fwd", k);
    uint32_t G = groups_of(s, m), ag[PROG_MAX_GROUPS];
    OS_CHECK(add_async(p, x, &ag[0], m, s->grad_coll_dur[m], "allgather"));
    for (uint32_t g = 0; g < G; g++) {
        if (g + 1 < G) OS_CHECK(add_async(p, x, &ag[g + 1], m, s->grad_coll_dur[m], "allgather"));
        OS_CHECK(add_op(p, OP_WAIT, m, 0, 0, 0, ag[g], "wait-params", k));
        OS_CHECK(add_compute(p, x, m, 0, (uint16_t)g, (uint16_t)G, "fwd", k));
    }
fail:
    return st;
}

/* Backward pass of module m, micro-batch k: FULL_SHARD re-gathers each group (in reverse),
 * SHARD_GRAD_OP still holds them from the forward; both reduce-scatter a group's gradients as
 * soon as it is done, every micro-batch (PyTorch FSDP without no_sync, as Composer runs it).
 * DDP all-reduces bucket b when its part of the LAST micro-batch's backward completes,
 * overlapping the rest (no_sync before). *last: the last async collective. With a pipeline
 * the gradients are synchronised after the stage's last backward instead (build_stage_sync). */
static OsStatus build_backward(Prog *p, const Ctx *x, const ProgSpec *s, uint8_t m, uint16_t k, uint32_t *last) {
    OsStatus st = OS_OK;
    if (p->staged) return add_compute(p, x, m, 1, 0, 1, "bwd", k);
    if (s->fsdp == SHARD_DDP) {
        uint32_t B = s->buckets;
        int sync = k + 1u == p->M;
        if (!sync) return add_compute(p, x, m, 1, 0, 1, "bwd", k);
        for (uint32_t b = 0; b < B; b++) {
            uint32_t c;
            OS_CHECK(add_compute(p, x, m, 1, (uint16_t)b, (uint16_t)B, "bwd", k));
            OS_CHECK(add_async(p, x, &c, m, s->grad_coll_dur[m], "allreduce"));
            *last = c;
        }
        return OS_OK;
    }
    uint32_t G = groups_of(s, m), ag[PROG_MAX_GROUPS];
    int regather = s->fsdp == SHARD_FULL;
    if (regather) OS_CHECK(add_async(p, x, &ag[G - 1], m, s->grad_coll_dur[m], "allgather"));
    for (uint32_t q = 0; q < G; q++) {
        uint32_t g = G - 1 - q, rs;
        if (regather) {
            if (g > 0) OS_CHECK(add_async(p, x, &ag[g - 1], m, s->grad_coll_dur[m], "allgather"));
            OS_CHECK(add_op(p, OP_WAIT, m, 0, 0, 0, ag[g], "wait-params", k));
        }
        OS_CHECK(add_compute(p, x, m, 1, (uint16_t)g, (uint16_t)G, "bwd", k));
        OS_CHECK(add_async(p, x, &rs, m, s->rs_dur ? s->rs_dur[m] : s->grad_coll_dur[m], "reduce-scatter"));
        *last = rs;
    }
fail:
    return st;
}

/* Does phase m have work on virtual stage v? (No pipeline: everything is on stage 0.) */
static int on_v(const Prog *p, const ProgSpec *s, uint32_t m, uint32_t v) {
    if (p->S * p->V == 1) return 1;
    return s->on_vstage[(size_t)m * p->S * p->V + v] != 0;
}

/* One micro-batch's forward on virtual stage v: receive the activations (v > 0), run the
 * encoders placed here (with post-balancing: each behind its all-to-all), the LLM layers
 * placed here, send the activations on. Post-balancing happens on the first virtual stage. */
static OsStatus build_vforward(Prog *p, Ctx *x, const ProgSpec *s, uint32_t v, uint16_t k) {
    OsStatus st = OS_OK;
    uint32_t SV = p->S * p->V;
    uint8_t llm = (uint8_t)(p->P - 1), pipe = (uint8_t)PROG_TAG_PIPE(p->P);
    x->chunk = (uint16_t)(v / p->S);
    if (v > 0) OS_CHECK(add_op(p, OP_RECV, pipe, 0, 0, 0, (uint32_t)prog_xfer_slot(p, k, v - 1, 0), "recv-act", k));
    for (uint8_t e = 0; e < llm; e++) {
        if (!on_v(p, s, e, v)) continue;
        if (s->post) OS_CHECK(add_sync(p, x, e, COLL_A2A_IN, e, k, 0, "a2a-inputs"));
        OS_CHECK(build_forward(p, x, s, e, k));
    }
    /* encoder outputs (and text) go straight to the rank that runs the example in the LLM */
    if (s->post && v == 0) OS_CHECK(add_sync(p, x, llm, COLL_A2A_OUT, 0, k, 0, "a2a-embeddings"));
    if (on_v(p, s, llm, v)) OS_CHECK(build_forward(p, x, s, llm, k));
    if (v + 1 < SV) OS_CHECK(add_op(p, OP_SEND, pipe, 0, 0, 0, (uint32_t)prog_xfer_slot(p, k, v, 0), "send-act", k));
fail:
    return st;
}

static OsStatus build_vbackward(Prog *p, Ctx *x, const ProgSpec *s, uint32_t v, uint16_t k, uint32_t *last) {
    OsStatus st = OS_OK;
    uint32_t SV = p->S * p->V;
    uint8_t llm = (uint8_t)(p->P - 1), pipe = (uint8_t)PROG_TAG_PIPE(p->P);
    x->chunk = (uint16_t)(v / p->S);
    if (v + 1 < SV) OS_CHECK(add_op(p, OP_RECV, pipe, 0, 0, 0, (uint32_t)prog_xfer_slot(p, k, v, 1), "recv-grad", k));
    if (on_v(p, s, llm, v)) OS_CHECK(build_backward(p, x, s, llm, k, last));
    if (s->post && v == 0) OS_CHECK(add_sync(p, x, llm, COLL_A2A_GRAD, 0, k, 0, "a2a-grads"));
    for (int e = (int)llm - 1; e >= 0; e--)
        if (on_v(p, s, (uint32_t)e, v)) OS_CHECK(build_backward(p, x, s, (uint8_t)e, k, last));
    if (v > 0) OS_CHECK(add_op(p, OP_SEND, pipe, 0, 0, 0, (uint32_t)prog_xfer_slot(p, k, v - 1, 1), "send-grad", k));
fail:
    return st;
}

/* Megatron-LM's pipeline order for stage st (schedules.py): j-th forward / backward over the
 * M * V (micro-batch, chunk) pairs. Chunk of the j-th: (j mod S*V) / S (backward: reversed);
 * micro-batch: (j / (S*V)) * S + j mod S. Warm-up forwards: 1F1B min(S - st - 1, M);
 * interleaved (S - st - 1) * 2 + (V - 1) * S, or all of them when M == S; then one forward
 * and one backward in turn; the cool-down backwards. */
static void pipe_pick(const Prog *p, uint32_t j, int fwd, uint32_t *k, uint32_t *chunk) {
    uint32_t S = p->S, V = p->V;
    if (V == 1) {
        *k = j;
        *chunk = 0;
        return;
    }
    uint32_t c = (j % (S * V)) / S;
    *chunk = fwd ? c : V - 1 - c;
    *k = (j / (S * V)) * S + j % S;
}

static OsStatus build_stage(Prog *p, const ProgSpec *s, uint32_t stage, uint32_t *last) {
    OsStatus st = OS_OK;
    Ctx x = {.stage = (uint8_t)stage, .members = p->D, .chunk = 0};
    uint32_t S = p->S, V = p->V, M = p->M, total = M * V, warm;
    if (V == 1) warm = OS_MIN(S - stage - 1, M);
    else warm = M == S ? total : OS_MIN((S - stage - 1) * 2 + (V - 1) * S, total);
    uint32_t fj = 0, bj = 0;
    for (; fj < warm; fj++) {
        uint32_t k, c;
        pipe_pick(p, fj, 1, &k, &c);
        OS_CHECK(build_vforward(p, &x, s, c * S + stage, (uint16_t)k));
    }
    while (bj < total) {
        uint32_t k, c;
        if (fj < total) {
            pipe_pick(p, fj++, 1, &k, &c);
            OS_CHECK(build_vforward(p, &x, s, c * S + stage, (uint16_t)k));
        }
        pipe_pick(p, bj++, 0, &k, &c);
        OS_CHECK(build_vbackward(p, &x, s, c * S + stage, (uint16_t)k, last));
    }
fail:
    return st;
}

/* A pipeline stage's gradient synchronisation in its DP group, after its last backward: DDP
 * all-reduces its buckets; SHARD_GRAD_OP (the distributed optimizer) reduce-scatters them.
 * Megatron-LM runs it after the pipeline flush unless --overlap-grad-reduce. */
static OsStatus build_stage_sync(Prog *p, const ProgSpec *s, uint32_t stage, uint32_t *last) {
    OsStatus st = OS_OK;
    Ctx x = {.stage = (uint8_t)stage, .members = p->D};
    uint8_t tag_sync = (uint8_t)PROG_TAG_SYNC(p->P);
    SimTime d = s->stage_grad_dur ? s->stage_grad_dur[stage] : 0;
    for (uint32_t b = 0; b < s->buckets && p->D > 1; b++)
        OS_CHECK(add_async(p, &x, last, tag_sync, d, s->fsdp == SHARD_GRAD_OP ? "reduce-scatter" : "allreduce"));
fail:
    return st;
}

OsStatus prog_create(Prog **out, const ProgSpec *s) {
    OsStatus st = OS_OK;
    Prog *p = NULL;
    *out = NULL;
    uint32_t M = s->M ? s->M : 1, gmax = 0, S = s->S ? s->S : 1, V = s->V ? s->V : 1;
    for (uint32_t m = 0; m < s->P && s->fsdp != SHARD_DDP && S == 1; m++) gmax = OS_MAX(gmax, groups_of(s, m));
    if (s->P < 1 || s->P + 4 > PROG_MAX_TAGS || s->D < 1 || M > PROG_MAX_MB || s->fsdp < 0 || s->fsdp > 2 ||
        (s->fsdp != SHARD_DDP && S == 1 && (gmax < 1 || gmax > PROG_MAX_GROUPS)) ||
        ((s->fsdp == SHARD_DDP || S > 1 || s->stage_sync) && (s->buckets < 1 || s->buckets > 65535)) ||
        !(s->slowdown >= 0 && s->slowdown < 1) || S > PROG_MAX_STAGES || (size_t)S * V > 65535 ||
        (size_t)S * s->D > UINT32_MAX / 2)
        return os_fail(OS_ERR_ARG, "replay", "program", NULL,
                       "bad program shape (P=%u D=%u M=%u S=%u V=%u groups<=%u buckets=%u slowdown=%g)", s->P, s->D,
                       M, S, V, gmax, s->buckets, s->slowdown);
    for (uint32_t m = 0; m < s->P && s->fsdp != SHARD_DDP && S == 1; m++)
        if (groups_of(s, m) < 1)
            return os_fail(OS_ERR_ARG, "replay", "program", NULL, "module %u has no FSDP group", m);
    if (s->stage_sync && s->fsdp == SHARD_FULL)
        return os_fail(OS_ERR_ARG, "replay", "--setup", "use --setup ddp or fsdp-grad-op (the distributed optimizer)",
                       "FULL_SHARD re-gathers parameters per layer: it has no end-of-backward gradient sync");
    if (S * V > 1) {
        if (!s->on_vstage)
            return os_fail(OS_ERR_ARG, "replay", "program", NULL, "a pipeline needs the phases' stage placement");
        if (s->fsdp == SHARD_FULL)
            return os_fail(OS_ERR_ARG, "replay", "--setup", "use --setup ddp or fsdp-grad-op (the distributed optimizer) with pp > 1",
                           "FSDP FULL_SHARD with pipeline parallelism is not modelled");
        if (V > 1 && M % S != 0)
            return os_fail(OS_ERR_ARG, "replay", "--parallel",
                           "choose --micro-batch so that every step has a multiple of pp micro-batches, or vp=1",
                           "the interleaved schedule needs the micro-batch count (%u) to be a multiple of pp (%u), as "
                           "Megatron-LM requires", M, S);
        for (uint32_t e = 0; e + 1 < s->P && s->post; e++)
            for (uint32_t v = 1; v < S * V; v++)
                if (s->on_vstage[(size_t)e * S * V + v])
                    return os_fail(OS_ERR_ARG, "replay", "--pp-layout", "place every encoder on stage 0 for post-balancing",
                                   "post-balancing with a pipeline rebalances on the first stage; encoder %u runs on "
                                   "virtual stage %u", e, v);
    }
    p = calloc(1, sizeof *p);
    ALLOC_CHECK(p);
    p->D = s->D;
    p->P = s->P;
    p->M = M;
    p->S = S;
    p->V = V;
    p->W = S * s->D;
    p->staged = S > 1 || s->stage_sync;
    p->slowdown = s->slowdown;
    for (uint32_t q = 0; q < S; q++) p->stage_opt[q] = s->stage_opt_dur ? s->stage_opt_dur[q] : s->opt_dur;
    p->ranks = calloc(p->W, sizeof *p->ranks);
    ALLOC_CHECK(p->ranks);
    p->wheap = calloc(p->W, sizeof *p->wheap);
    ALLOC_CHECK(p->wheap);
    for (uint32_t q = 0; q < S; q++) p->sref[q] = (StageRef){p, q};
    p->xfers_per_replica = (size_t)M * (S * V - 1) * 2;
    p->n_xfers = p->xfers_per_replica * s->D;
    if (p->n_xfers) {
        p->xfers = calloc(p->n_xfers, sizeof *p->xfers);
        ALLOC_CHECK(p->xfers);
    }
    uint8_t P = (uint8_t)s->P;
    uint8_t tag_sync = (uint8_t)PROG_TAG_SYNC(P), tag_bal = (uint8_t)PROG_TAG_BALANCE(P),
            tag_opt = (uint8_t)PROG_TAG_OPTIM(P);
    /* every worker's closing collectives: one object each, in every stage's list */
    Ctx all = {.stage = PROG_ALL_STAGES, .members = p->W};
    uint32_t clip = UINT32_MAX, done;
    if (s->clip_dur > 0) OS_CHECK(add_coll(p, &all, &clip, 0, tag_opt, COLL_FIXED, 0, 0, s->clip_dur, "allreduce-gradnorm"));
    OS_CHECK(add_coll(p, &all, &done, 0, tag_sync, COLL_FIXED, 0, 0, 0, "step-end"));
    p->lengths_coll = -1;
    for (uint32_t q = 0; q < S; q++) {
        Ctx x = {.stage = (uint8_t)q, .members = p->D};
        uint32_t last = UINT32_MAX;
        p->op_begin[q] = p->n_ops;
        if (s->post && q == 0) {
            /* OrchMLLM: every rank gathers all ranks' lengths, then runs the same balancer; the
             * op charges the planning that precedes the first all-to-all */
            p->lengths_coll = (int32_t)p->n_colls;
            OS_CHECK(add_sync(p, &x, tag_bal, COLL_LENGTHS, 0, 0, 0, "allgather-lengths"));
            OS_CHECK(add_op(p, OP_COMPUTE, tag_bal, 2, 0, 1, 0, "balance", 0));
        }
        OS_CHECK(build_stage(p, s, q, &last));
        if (p->staged) OS_CHECK(build_stage_sync(p, s, q, &last));
        p->final_wait_op[q] = (uint32_t)p->n_ops;
        if (last == UINT32_MAX) { /* one DDP rank: nothing to wait for; a free marker collective */
            OS_CHECK(add_async(p, &x, &last, tag_sync, 0, "grads-done"));
            p->final_wait_op[q] = (uint32_t)p->n_ops;
        }
        OS_CHECK(add_op(p, OP_WAIT, tag_sync, 0, 0, 0, last, "wait-grads", 0));
        /* with a pipeline the first barrier of every stage is where the flush waits */
        uint8_t flush = (uint8_t)(S > 1 ? PROG_TAG_PIPE(P) : 0);
        if (clip != UINT32_MAX) {
            OS_CHECK(add_op(p, OP_SYNC, tag_opt, 0, 0, 0, clip, "allreduce-gradnorm", 0));
            if (S > 1) p->ops[p->n_ops - 1].idle_tag = flush;
        }
        if (p->stage_opt[q] > 0) OS_CHECK(add_op(p, OP_COMPUTE, tag_opt, 3, 0, 1, 0, "optimizer", 0));
        if (p->staged && s->fsdp == SHARD_GRAD_OP && p->D > 1) {
            /* the distributed optimizer gathers the updated parameter shards back */
            uint32_t ag = 0;
            for (uint32_t b = 0; b < s->buckets; b++)
                OS_CHECK(add_async(p, &x, &ag, tag_opt, s->stage_ag_dur ? s->stage_ag_dur[q] : 0, "allgather-params"));
            OS_CHECK(add_op(p, OP_WAIT, tag_opt, 0, 0, 0, ag, "wait-params", 0));
        }
        OS_CHECK(add_op(p, OP_SYNC, tag_sync, 0, 0, 0, done, "step-end", 0));
        if (S > 1) p->ops[p->n_ops - 1].idle_tag = flush;
    }
    p->op_begin[S] = p->n_ops;
    p->local_end = calloc((size_t)p->W * p->n_colls, sizeof *p->local_end);
    ALLOC_CHECK(p->local_end);
    *out = p;
    return OS_OK;
fail:
    prog_destroy(p);
    return st;
}

void prog_set_reference(Prog *p, int ref) {
    if (p) p->ref_clock = ref != 0;
}

void prog_destroy(Prog *p) {
    if (!p) return;
    free(p->ops);
    free(p->colls);
    free(p->ranks);
    free(p->wheap);
    free(p->local_end);
    free(p->xfers);
    free(p->spans);
    free(p);
}

/* ---- running -------------------------------------------------------------------------- */

static void span(Prog *p, uint32_t r, uint8_t tag, uint8_t kind, const char *name, SimTime a, SimTime b) {
    if (!p->record || b <= a) return;
    if (os_grow((void **)&p->spans, &p->cap_spans, p->n_spans + 1, sizeof(Span)) != OS_OK) {
        p->err = OS_ERR_NOMEM;
        return;
    }
    p->spans[p->n_spans++] = (Span){.rank = r, .tag = tag, .kind = kind, .name = name, .start = a, .end = b};
}

/* Index of a compute op's pass in the dur array (and the rec_* annotations). */
static size_t dur_index(const Prog *p, const RankRun *r, const Op *op) {
    return prog_dur_index(p, r->rank, op->tag, op->mb, op->chunk, op->pass);
}

/* A compute op's span, with its tokens and its part of the pass's model FLOPs. */
static void span_compute(Prog *p, const RankRun *r, const Op *op, SimTime a, SimTime b) {
    size_t before = p->n_spans;
    span(p, r->rank, op->tag, 0, op->name, a, b);
    if (p->n_spans == before || op->pass > 1) return;
    Span *s = &p->spans[p->n_spans - 1];
    size_t i = dur_index(p, r, op);
    s->mb = op->mb;
    s->part = op->part, s->nparts = op->nparts;
    if (p->rec_tokens) s->tokens = p->rec_tokens[i]; /* each layer group runs every token */
    if (p->rec_flops) s->flops = p->rec_flops[i] / op->nparts;
}

static SimTime compute_dur(const Prog *p, const RankRun *r, const Op *op) {
    if (op->pass == 2) return p->balance_dur;
    if (op->pass == 3) return p->stage_opt[r->stage];
    SimTime total = p->dur[dur_index(p, r, op)];
    SimTime base = total / op->nparts;
    /* the last part takes the remainder, so the parts add up to the pass exactly */
    return op->part + 1u == op->nparts ? total - base * (op->nparts - 1) : base;
}

static void advance(RankRun *r);

/* Time arithmetic that cannot wrap: a step longer than PROG_TIME_MAX (about 73 years) means a
 * duration came from an absurd rate or bandwidth; the run is stopped with OS_ERR_RANGE naming
 * the op (prog_run_step) instead of going on with wrapped times. */
#define PROG_TIME_MAX ((SimTime)INT64_MAX / 4)
static SimTime tadd(Prog *p, SimTime a, SimTime b, const char *what) {
    if (b < 0 || a > PROG_TIME_MAX - b) {
        if (p->err == OS_OK) p->err = OS_ERR_RANGE, p->err_what = what;
        return PROG_TIME_MAX;
    }
    return a + b;
}

/* A slowed op ends now: its span and busy time. */
static void comp_finish(Prog *p, RankRun *r, SimTime now) {
    const Op *op = &p->ops[r->pc];
    SimTime d = now - r->comp_start;
    if (d > r->comp_full) r->slowed += d - r->comp_full;
    span_compute(p, r, op, r->comp_start, now);
    r->busy += d;
    r->tag_busy[op->tag] += d;
    r->t = now;
    r->computing = 0;
    r->comp_ev = 0;
}

static void on_compute_done(Engine *e, EventId id, void *data) {
    (void)e;
    (void)id;
    RankRun *r = data;
    Prog *p = r->prog;
    if (r->computing) comp_finish(p, r, engine_now(p->engine)); /* the reference twin's slowed op */
    r->pc++;
    advance(r);
}

static double stage_rate(const Prog *p, uint32_t s) { return p->comm_active[s] > 0 ? 1.0 - p->slowdown : 1.0; }

/* ---- the overlap slowdown: the per-stage work clock (Prog.wclk) ---- */

static void wclk_sync(Prog *p, uint32_t s, SimTime now) {
    p->wclk[s] += (double)(now - p->wclk_t[s]) * stage_rate(p, s);
    p->wclk_t[s] = now;
}

static int slot_before(const ClockSlot *a, const ClockSlot *b) {
    return a->target < b->target || (a->target == b->target && a->seq < b->seq);
}

static void wheap_push(Prog *p, uint32_t s, ClockSlot x) {
    ClockSlot *h = p->wheap + (size_t)s * p->D;
    uint32_t i = p->wclk_n[s]++;
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (!slot_before(&x, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = x;
}

static ClockSlot wheap_pop(Prog *p, uint32_t s) {
    ClockSlot *h = p->wheap + (size_t)s * p->D, top = h[0];
    uint32_t n = --p->wclk_n[s], i = 0;
    if (n == 0) return top;
    ClockSlot x = h[n];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && slot_before(&h[c + 1], &h[c])) c++;
        if (!slot_before(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    return top;
}

static void on_clock(Engine *e, EventId id, void *data);

/* (Re)arm stage s's one event: when its earliest target is reached at the current rate (the
 * same rounding as the twin's comp_schedule, from the clock's last sync). */
static void wclk_arm(Prog *p, uint32_t s) {
    if (p->wclk_ev[s]) engine_cancel(p->engine, p->wclk_ev[s]);
    p->wclk_ev[s] = 0;
    if (p->wclk_n[s] == 0) return;
    const ClockSlot *top = p->wheap + (size_t)s * p->D;
    double left = ceil((top->target - p->wclk[s]) / stage_rate(p, s) - 1e-6);
    if (!(left > 0)) left = 0;
    SimTime end = tadd(p, p->wclk_t[s], left < (double)PROG_TIME_MAX ? (SimTime)left : PROG_TIME_MAX,
                       p->ops[p->ranks[top->rank].pc].name);
    p->wclk_ev[s] = engine_at(p->engine, end, on_clock, &p->sref[s], NULL);
    if (p->wclk_ev[s] == 0) p->err = OS_ERR_NOMEM;
}

/* Stage s's earliest op is done: finish it, advance its rank, re-arm for the next. */
static void on_clock(Engine *e, EventId id, void *data) {
    (void)id;
    const StageRef *sr = data;
    Prog *p = sr->prog;
    uint32_t s = sr->stage;
    SimTime now = engine_now(e);
    p->wclk_ev[s] = 0;
    wclk_sync(p, s, now);
    ClockSlot top = wheap_pop(p, s);
    RankRun *r = &p->ranks[top.rank];
    comp_finish(p, r, now);
    r->pc++;
    advance(r); /* may start the rank's next op on this clock, which arms it */
    if (!p->wclk_ev[s]) wclk_arm(p, s);
}

/* A slowed compute op of d ns at full speed starts now on rank r's stage clock. */
static void wclk_start(Prog *p, RankRun *r, SimTime d) {
    uint32_t s = r->stage;
    wclk_sync(p, s, r->t);
    ClockSlot x = {p->wclk[s] + (double)d, p->wseq++, r->rank}; /* its end on the clock */
    wheap_push(p, s, x);
    /* a new earliest op moves the stage's event (seq is unique: the top is x or another) */
    if (!p->wclk_ev[s] || p->wheap[(size_t)s * p->D].seq == x.seq) wclk_arm(p, s);
}

/* ---- the overlap slowdown: the reference twin (every op re-timed at every change) ---- */

/* Schedule the in-flight compute op's end from its remaining work and current rate. */
static void comp_schedule(Prog *p, RankRun *r) {
    double left = ceil(r->comp_rem / r->comp_rate - 1e-6);
    SimTime end = tadd(p, r->comp_t0, left < (double)PROG_TIME_MAX ? (SimTime)left : PROG_TIME_MAX, p->ops[r->pc].name);
    if (end < r->comp_t0) end = r->comp_t0;
    r->comp_ev = engine_at(p->engine, end, on_compute_done, r, NULL);
    if (r->comp_ev == 0) p->err = OS_ERR_NOMEM;
}

/* The twin: every op in flight on the stage's workers is re-timed at the new rate. */
static void ref_changed(Prog *p, uint32_t stage, SimTime now) {
    double rate = stage_rate(p, stage);
    for (uint32_t i = 0; i < p->D; i++) {
        RankRun *r = &p->ranks[(size_t)stage * p->D + i];
        if (!r->computing || r->comp_rate == rate) continue;
        r->comp_rem -= (double)(now - r->comp_t0) * r->comp_rate;
        if (r->comp_rem < 0) r->comp_rem = 0;
        r->comp_t0 = now;
        r->comp_rate = rate;
        engine_cancel(p->engine, r->comp_ev);
        comp_schedule(p, r);
    }
}

/* A stage's comm stream starts (delta +1) or stops (-1) a collective at `now`: every op in
 * flight on that stage's workers changes speed (all of them are members of its DP
 * collectives). */
static void comm_changed(Prog *p, uint32_t stage, SimTime now, int delta) {
    if (p->ref_clock) {
        p->comm_active[stage] += delta;
        ref_changed(p, stage, now);
        return;
    }
    double before = stage_rate(p, stage);
    wclk_sync(p, stage, now);
    p->comm_active[stage] += delta;
    if (stage_rate(p, stage) != before) wclk_arm(p, stage);
}

static void on_coll_start(Engine *e, EventId id, void *data) {
    (void)id;
    Coll *c = data;
    comm_changed(c->prog, c->stage, engine_now(e), +1);
}

static void wake(Prog *p, RankRun *r, const Coll *c) {
    const Op *op = &p->ops[r->pc];
    SimTime wait_end = op->kind == OP_SYNC ? c->start : c->end;
    SimTime from = r->wait_since;
    if (op->kind == OP_WAIT) {
        /* the part this rank's own comm stream explains is exposed comm, the rest is idle */
        SimTime own = p->local_end[(size_t)r->rank * p->n_colls + op->coll];
        if (own > from) {
            SimTime d = (own < wait_end ? own : wait_end) - from;
            r->comm += d;
            r->tag_comm[op->tag] += d;
            span(p, r->rank, op->tag, 1, c->name, from, from + d);
            from += d;
        }
    }
    SimTime idle = wait_end - from;
    r->idle += idle;
    r->tag_idle[op->idle_tag] += idle;
    span(p, r->rank, op->idle_tag, 2, op->idle_tag == PROG_TAG_PIPE(p->P) ? "bubble" : "idle", from, wait_end);
    if (op->kind == OP_SYNC) {
        SimTime d = c->end - c->start;
        r->comm += d;
        r->tag_comm[op->tag] += d;
        span(p, r->rank, op->tag, 1, c->name, c->start, c->end);
    }
    r->t = c->end;
    r->pc++;
    advance(r);
}

static void on_coll_done(Engine *e, EventId id, void *data) {
    (void)id;
    Coll *c = data;
    Prog *p = c->prog;
    if (c->async && p->slowdown > 0 && c->end > c->start) comm_changed(p, c->stage, engine_now(e), -1);
    /* wake in rank order (the list is LIFO): deterministic and readable timelines */
    int32_t head = c->waiters;
    c->waiters = -1;
    int32_t rev = -1;
    while (head >= 0) {
        int32_t nx = p->ranks[head].next_waiter;
        p->ranks[head].next_waiter = rev;
        rev = head;
        head = nx;
    }
    while (rev >= 0) {
        RankRun *r = &p->ranks[rev];
        rev = r->next_waiter;
        r->next_waiter = -1;
        wake(p, r, c);
    }
}

/* A pipeline receive completes: until the sender issued the message the worker sat in the
 * bubble (idle), after that it waited for the bytes (comm). */
static void on_xfer_arrived(Engine *e, EventId id, void *data) {
    (void)e;
    (void)id;
    RankRun *r = data;
    Prog *p = r->prog;
    const Op *op = &p->ops[r->pc];
    Xfer *x = prog_xfer(p, r->replica, op->coll);
    SimTime arrive = tadd(p, x->sent, x->dur, op->name), from = r->wait_since, tx = x->sent > from ? x->sent : from;
    if (tx > from) {
        r->idle += tx - from;
        r->tag_idle[op->tag] += tx - from;
        span(p, r->rank, op->tag, 2, "bubble", from, tx);
    }
    if (arrive > tx) {
        r->comm += arrive - tx;
        r->tag_comm[op->tag] += arrive - tx;
        span(p, r->rank, op->tag, 1, op->name, tx, arrive);
    }
    x->waiter = -1;
    r->t = arrive;
    r->pc++;
    advance(r);
}

static void park(Prog *p, RankRun *r, Coll *c) {
    r->wait_since = r->t;
    r->next_waiter = c->waiters;
    c->waiters = (int32_t)r->rank;
    (void)p;
}

static void schedule(Prog *p, SimTime t, EventFn *fn, void *data) {
    if (engine_at(p->engine, t, fn, data, NULL) == 0) p->err = OS_ERR_NOMEM;
}

static void advance(RankRun *r) {
    Prog *p = r->prog;
    size_t end = p->op_begin[r->stage + 1];
    while (r->pc < end) {
        const Op *op = &p->ops[r->pc];
        Coll *c = &p->colls[op->coll];
        switch ((OpKind)op->kind) {
        case OP_COMPUTE: {
            SimTime d = compute_dur(p, r, op);
            if (d > 0 && p->slowdown > 0 && op->pass != 2) {
                /* GPU work beside the comm stream: its end moves with the collectives */
                r->computing = 1;
                r->comp_full = d;
                r->comp_start = r->t;
                if (!p->ref_clock) {
                    wclk_start(p, r, d);
                    return;
                }
                r->comp_rem = (double)d;
                r->comp_t0 = r->t;
                r->comp_rate = stage_rate(p, r->stage);
                comp_schedule(p, r);
                return;
            }
            if (d > 0) {
                span_compute(p, r, op, r->t, r->t + d);
                r->busy += d;
                r->tag_busy[op->tag] += d;
                r->t = tadd(p, r->t, d, op->name);
                schedule(p, r->t, on_compute_done, r);
                return;
            }
            r->pc++;
            continue;
        }
        case OP_SYNC:
            park(p, r, c);
            if (r->t > c->max_arr || c->arrived == 0) c->max_arr = r->t;
            if (++c->arrived == c->members) {
                c->start = c->max_arr;
                if (c->after >= 0) { /* every member passed colls[after]: its end is known */
                    SimTime ready = p->colls[c->after].end + c->after_delay;
                    if (ready > c->start) c->start = ready;
                }
                c->end = tadd(p, c->start, c->dur, c->name);
                c->known = 1;
                schedule(p, c->end, on_coll_done, c);
            }
            return;
        case OP_ASYNC:
            r->local_tail = tadd(p, OS_MAX(r->t, r->local_tail), c->dur, c->name);
            p->local_end[(size_t)r->rank * p->n_colls + op->coll] = r->local_tail;
            if (r->t > c->max_arr || c->arrived == 0) c->max_arr = r->t;
            if (++c->arrived == c->members) {
                /* every member issued every earlier collective too, so the tail is final */
                c->start = OS_MAX(c->max_arr, p->comm_tail[c->stage]);
                c->end = tadd(p, c->start, c->dur, c->name);
                c->known = 1;
                p->comm_tail[c->stage] = c->end;
                /* the collective on every member's comm stream (overlapped with its compute) */
                uint32_t nm = c->stage == PROG_ALL_STAGES ? p->W : p->D;
                for (uint32_t w = 0; p->record && c->end > c->start && w < nm; w++) {
                    uint32_t wk = c->stage == PROG_ALL_STAGES ? w : c->stage * p->D + w;
                    span(p, wk, c->tag, 1, c->name, c->start, c->end);
                    if (p->n_spans) p->spans[p->n_spans - 1].track = 1;
                }
                if (p->slowdown > 0 && c->end > c->start) schedule(p, c->start, on_coll_start, c);
                schedule(p, c->end, on_coll_done, c);
            }
            r->pc++;
            continue;
        case OP_WAIT:
            if (r->pc == p->final_wait_op[r->stage]) r->final_wait_at = r->t;
            if (c->known && c->end <= r->t) {
                r->pc++;
                continue;
            }
            park(p, r, c);
            return;
        case OP_SEND: {
            /* eager: the message leaves now and arrives dur later; a receiver already parked
             * on it wakes then */
            Xfer *x = prog_xfer(p, r->replica, op->coll);
            x->sent = r->t;
            if (x->waiter >= 0) schedule(p, tadd(p, x->sent, x->dur, op->name), on_xfer_arrived, &p->ranks[x->waiter]);
            r->pc++;
            continue;
        }
        case OP_RECV: {
            Xfer *x = prog_xfer(p, r->replica, op->coll);
            if (x->sent >= 0 && tadd(p, x->sent, x->dur, op->name) <= r->t) {
                r->pc++;
                continue;
            }
            r->wait_since = r->t;
            x->waiter = (int32_t)r->rank;
            if (x->sent >= 0) schedule(p, tadd(p, x->sent, x->dur, op->name), on_xfer_arrived, r);
            return;
        }
        }
    }
}

OsStatus prog_run_step(Prog *p, Engine *e, SimTime start, const SimTime *dur, SimTime balance_dur,
                       int record, SimTime *end) {
    p->dur = dur;
    p->balance_dur = balance_dur;
    p->engine = e;
    p->step_start = start;
    p->err = OS_OK;
    p->err_what = NULL;
    p->record = record;
    p->n_spans = 0;
    for (uint32_t q = 0; q < p->S; q++) {
        p->comm_tail[q] = start;
        p->comm_active[q] = 0;
        p->wclk[q] = 0;
        p->wclk_t[q] = start;
        p->wclk_ev[q] = 0;
        p->wclk_n[q] = 0;
    }
    p->wseq = 0;
    for (size_t i = 0; i < p->n_colls; i++) {
        Coll *c = &p->colls[i];
        c->arrived = 0;
        c->max_arr = start;
        c->start = c->end = 0;
        c->known = 0;
        c->waiters = -1;
        c->prog = p;
    }
    for (size_t i = 0; i < p->n_xfers; i++) {
        p->xfers[i].sent = -1;
        p->xfers[i].waiter = -1;
    }
    for (uint32_t w = 0; w < p->W; w++) {
        RankRun *rr = &p->ranks[w];
        memset(rr, 0, sizeof *rr);
        rr->rank = w;
        rr->stage = w / p->D;
        rr->replica = w % p->D;
        rr->pc = (uint32_t)p->op_begin[rr->stage];
        rr->t = start;
        rr->local_tail = start;
        rr->next_waiter = -1;
        rr->prog = p;
    }
    for (uint32_t w = 0; w < p->W; w++) advance(&p->ranks[w]);
    OsStatus st = engine_run(e);
    if (st != OS_OK) return st;
    if (p->err == OS_ERR_RANGE)
        return os_fail(p->err, "replay", p->err_what ? p->err_what : "op",
                       "check the calibration's rates and the bandwidth/latency options",
                       "the simulated step passes %.0f years at this op: a duration far beyond any real GPU's",
                       sim_to_seconds(PROG_TIME_MAX) / 3.15576e7);
    if (p->err != OS_OK) return os_fail(p->err, "replay", "engine", NULL, "out of memory while simulating");
    SimTime mx = start;
    for (uint32_t w = 0; w < p->W; w++) {
        const RankRun *rr = &p->ranks[w];
        if (rr->pc != p->op_begin[rr->stage + 1])
            return os_fail(OS_ERR_INTERNAL, "replay", "engine", NULL, "worker %u (stage %u) stopped at op %u of %zu",
                           w, rr->stage, rr->pc, p->op_begin[rr->stage + 1]);
        if (rr->t > mx) mx = rr->t;
    }
    *end = mx;
    return OS_OK;
}

/* ---- timeline ------------------------------------------------------------------------- */

static const char *const KIND_NAMES[] = {"compute", "comm", "idle"};

uint32_t prog_timeline_sample(const Prog *p, uint32_t per_stage, uint8_t *keep) {
    if (per_stage == 0 || per_stage >= p->D) {
        memset(keep, 1, p->W);
        return p->D;
    }
    memset(keep, 0, p->W);
    uint32_t most = 0, K = per_stage < 2 ? 2 : per_stage;
    for (uint32_t s = 0; s < p->S; s++) {
        const RankRun *rr = p->ranks + (size_t)s * p->D;
        uint32_t slow = 0, fast = 0, n = 0;
        for (uint32_t i = 1; i < p->D; i++) {
            if (rr[i].busy > rr[slow].busy) slow = i;
            if (rr[i].busy < rr[fast].busy) fast = i;
        }
        keep[s * p->D + slow] = keep[s * p->D + fast] = 1;
        for (uint32_t k = 0; k < K; k++) keep[s * p->D + (uint32_t)((uint64_t)k * (p->D - 1) / (K - 1))] = 1;
        for (uint32_t i = 0; i < p->D; i++) n += keep[s * p->D + i];
        if (n > most) most = n;
    }
    return most;
}

OsStatus prog_write_timeline(const Prog *p, const char *json_path, const char *csv_path,
                             const char *const *tag_names, uint32_t dp_per_node, const char *csv_meta,
                             const uint8_t *keep) {
    OsStatus st = OS_OK;
    OsOutFile js, cs;
    int js_open = 0, cs_open = 0;
    if (dp_per_node == 0) dp_per_node = 1;
    OS_CHECK(os_outfile_open(&js, json_path, 1));
    js_open = 1;
    OS_CHECK(os_outfile_open(&cs, csv_path, 1));
    cs_open = 1;
    /* Chrome trace event format: complete events ("ph":"X", ts/dur in microseconds), one
     * process per node and one thread per DP rank, plus name metadata ("ph":"M"). */
    fprintf(js.fp, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    uint32_t nodes = (p->W + dp_per_node - 1) / dp_per_node;
    int first = 1;
    for (uint32_t n = 0; n < nodes; n++) {
        int any = !keep; /* a node only when one of its workers is in the file */
        for (uint32_t r = n * dp_per_node; keep && r < p->W && r < (n + 1) * dp_per_node; r++) any |= keep[r];
        if (!any) continue;
        fprintf(js.fp, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"node %u\"}}",
                first ? "" : ",\n", n, n);
        first = 0;
    }
    /* two tracks per worker: its compute stream (tid = worker) and its comm stream (tid = W +
     * worker), where the asynchronous collectives run beside the compute */
    for (uint32_t r = 0; r < p->W; r++)
        for (int tr = 0; tr < 2 && (!keep || keep[r]); tr++) {
            char who[64];
            if (p->S == 1) snprintf(who, sizeof who, "dp rank %u", r);
            else snprintf(who, sizeof who, "stage %u dp rank %u", r / p->D, r % p->D);
            fprintf(js.fp, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":\"%s%s\"}}",
                    r / dp_per_node, tr ? p->W + r : r, who, tr ? " comm stream" : "");
        }
    if (csv_meta) fputs(csv_meta, cs.fp);
    fprintf(cs.fp, "rank,node,phase,op,kind,start_s,end_s,stage,replica\n");
    for (size_t i = 0; i < p->n_spans; i++) {
        const Span *s = &p->spans[i];
        if (keep && !keep[s->rank]) continue;
        double ts = (double)(s->start - p->step_start) * 1e-3, du = (double)(s->end - s->start) * 1e-3;
        fprintf(js.fp, ",\n{\"name\":\"%s %s\",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%u,\"tid\":%u",
                tag_names[s->tag], s->name, KIND_NAMES[s->kind], ts, du, s->rank / dp_per_node,
                s->track ? p->W + s->rank : s->rank);
        if (s->kind == 0 && (s->tokens > 0 || s->flops > 0))
            fprintf(js.fp, ",\"args\":{\"micro_batch\":%u,\"part\":\"%u/%u\",\"tokens\":%.0f,\"model_flops\":%.6g}}", s->mb,
                    s->part + 1u, s->nparts ? s->nparts : 1u, s->tokens, s->flops);
        else if (s->track)
            fprintf(js.fp, ",\"args\":{\"overlapped\":true}}");
        else
            fputs("}", js.fp);
        if (s->track) continue; /* the CSV is the compute stream: busy + idle + comm = the step */
        fprintf(cs.fp, "%u,%u,%s,%s,%s,%.9f,%.9f,%u,%u\n", s->rank, s->rank / dp_per_node, tag_names[s->tag], s->name,
                KIND_NAMES[s->kind], (double)(s->start - p->step_start) * 1e-9,
                (double)(s->end - p->step_start) * 1e-9, s->rank / p->D, s->rank % p->D);
    }
    fprintf(js.fp, "\n]}\n");
    js_open = 0;
    OS_CHECK(os_outfile_commit(&js));
    cs_open = 0;
    OS_CHECK(os_outfile_commit(&cs));
    return OS_OK;
fail:
    if (js_open) os_outfile_abort(&js);
    if (cs_open) os_outfile_abort(&cs);
    return st;
}
