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
                              .nparts = nparts, .mb = mb, .coll = coll, .name = name};
    return OS_OK;
}

/* Returns the new collective's index through *idx. */
static OsStatus add_coll(Prog *p, uint32_t *idx, int async, uint8_t tag, CollRole role, uint8_t enc,
                         uint16_t mb, SimTime dur, const char *name) {
    OsStatus st = os_grow((void **)&p->colls, &p->cap_colls, p->n_colls + 1, sizeof(Coll));
    if (st != OS_OK) return st;
    p->colls[p->n_colls] = (Coll){.dur = dur, .async = (uint8_t)async, .tag = tag, .role = (uint8_t)role,
                                  .enc = enc, .mb = mb, .name = name, .waiters = -1, .after = -1};
    *idx = (uint32_t)p->n_colls++;
    return OS_OK;
}

static OsStatus add_sync(Prog *p, uint8_t tag, CollRole role, uint8_t enc, uint16_t mb, SimTime dur,
                         const char *name) {
    uint32_t c;
    OsStatus st = add_coll(p, &c, 0, tag, role, enc, mb, dur, name);
    if (st == OS_OK) st = add_op(p, OP_SYNC, tag, 0, 0, 0, c, name, mb);
    return st;
}

static OsStatus add_async(Prog *p, uint32_t *c, uint8_t tag, SimTime dur, const char *name) {
    OsStatus st = add_coll(p, c, 1, tag, COLL_FIXED, 0, 0, dur, name);
    if (st == OS_OK) st = add_op(p, OP_ASYNC, tag, 0, 0, 0, *c, name, 0);
    return st;
}

static uint32_t groups_of(const ProgSpec *s, uint8_t m) { return s->groups ? s->groups[m] : s->group; }

/* Forward pass of module m, micro-batch k: FSDP gathers each layer group's parameters
 * (prefetching the next group on the comm stream while this one computes); DDP just computes. */
static OsStatus build_forward(Prog *p, const ProgSpec *s, uint8_t m, uint16_t k) {
    OsStatus st = OS_OK;
    if (s->fsdp == SHARD_DDP) return add_op(p, OP_COMPUTE, m, 0, 0, 1, 0, "fwd", k);
    uint32_t G = groups_of(s, m), ag[PROG_MAX_GROUPS];
    OS_CHECK(add_async(p, &ag[0], m, s->grad_coll_dur[m], "allgather"));
    for (uint32_t g = 0; g < G; g++) {
        if (g + 1 < G) OS_CHECK(add_async(p, &ag[g + 1], m, s->grad_coll_dur[m], "allgather"));
        OS_CHECK(add_op(p, OP_WAIT, m, 0, 0, 0, ag[g], "wait-params", k));
        OS_CHECK(add_op(p, OP_COMPUTE, m, 0, (uint16_t)g, (uint16_t)G, 0, "fwd", k));
    }
fail:
    return st;
}

/* Backward pass of module m, micro-batch k: FULL_SHARD re-gathers each group (in reverse),
 * SHARD_GRAD_OP still holds them from the forward; both reduce-scatter a group's gradients as
 * soon as it is done, every micro-batch (PyTorch FSDP without no_sync, as Composer runs it).
 * DDP all-reduces bucket b when its part of the LAST micro-batch's backward completes,
 * overlapping the rest (no_sync before). *last: the last async collective. */
static OsStatus build_backward(Prog *p, const ProgSpec *s, uint8_t m, uint16_t k, uint32_t *last) {
    OsStatus st = OS_OK;
    if (s->fsdp == SHARD_DDP) {
        uint32_t B = s->buckets;
        int sync = k + 1u == (s->M ? s->M : 1u);
        if (!sync) return add_op(p, OP_COMPUTE, m, 1, 0, 1, 0, "bwd", k);
        for (uint32_t b = 0; b < B; b++) {
            uint32_t c;
            OS_CHECK(add_op(p, OP_COMPUTE, m, 1, (uint16_t)b, (uint16_t)B, 0, "bwd", k));
            OS_CHECK(add_async(p, &c, m, s->grad_coll_dur[m], "allreduce"));
            *last = c;
        }
        return OS_OK;
    }
    uint32_t G = groups_of(s, m), ag[PROG_MAX_GROUPS];
    int regather = s->fsdp == SHARD_FULL;
    if (regather) OS_CHECK(add_async(p, &ag[G - 1], m, s->grad_coll_dur[m], "allgather"));
    for (uint32_t q = 0; q < G; q++) {
        uint32_t g = G - 1 - q, rs;
        if (regather) {
            if (g > 0) OS_CHECK(add_async(p, &ag[g - 1], m, s->grad_coll_dur[m], "allgather"));
            OS_CHECK(add_op(p, OP_WAIT, m, 0, 0, 0, ag[g], "wait-params", k));
        }
        OS_CHECK(add_op(p, OP_COMPUTE, m, 1, (uint16_t)g, (uint16_t)G, 0, "bwd", k));
        OS_CHECK(add_async(p, &rs, m, s->rs_dur ? s->rs_dur[m] : s->grad_coll_dur[m], "reduce-scatter"));
        *last = rs;
    }
fail:
    return st;
}

OsStatus prog_create(Prog **out, const ProgSpec *s) {
    OsStatus st = OS_OK;
    Prog *p = NULL;
    *out = NULL;
    uint32_t M = s->M ? s->M : 1, gmax = 0;
    for (uint32_t m = 0; m < s->P && s->fsdp != SHARD_DDP; m++) gmax = OS_MAX(gmax, groups_of(s, m));
    if (s->P < 1 || s->P + 3 > PROG_MAX_TAGS || s->D < 1 || M > PROG_MAX_MB || s->fsdp < 0 || s->fsdp > 2 ||
        (s->fsdp != SHARD_DDP && (gmax < 1 || gmax > PROG_MAX_GROUPS)) ||
        (s->fsdp == SHARD_DDP && (s->buckets < 1 || s->buckets > 65535)) || !(s->slowdown >= 0 && s->slowdown < 1))
        return os_fail(OS_ERR_ARG, "replay", "program", NULL,
                       "bad program shape (P=%u D=%u M=%u groups<=%u buckets=%u slowdown=%g)", s->P, s->D, M, gmax,
                       s->buckets, s->slowdown);
    for (uint32_t m = 0; m < s->P && s->fsdp != SHARD_DDP; m++)
        if (groups_of(s, m) < 1)
            return os_fail(OS_ERR_ARG, "replay", "program", NULL, "module %u has no FSDP group", m);
    p = calloc(1, sizeof *p);
    ALLOC_CHECK(p);
    p->D = s->D;
    p->P = s->P;
    p->M = M;
    p->slowdown = s->slowdown;
    p->opt_dur = s->opt_dur;
    p->ranks = calloc(s->D, sizeof *p->ranks);
    ALLOC_CHECK(p->ranks);
    uint8_t P = (uint8_t)s->P, llm = (uint8_t)(s->P - 1);
    uint8_t tag_sync = (uint8_t)PROG_TAG_SYNC(P), tag_bal = (uint8_t)PROG_TAG_BALANCE(P),
            tag_opt = (uint8_t)PROG_TAG_OPTIM(P);
    uint32_t last = UINT32_MAX;
    p->lengths_coll = -1;
    if (s->post) {
        /* OrchMLLM: every rank gathers all ranks' lengths, then runs the same balancer; the
         * op charges the planning that precedes the first all-to-all */
        p->lengths_coll = (int32_t)p->n_colls;
        OS_CHECK(add_sync(p, tag_bal, COLL_LENGTHS, 0, 0, 0, "allgather-lengths"));
        OS_CHECK(add_op(p, OP_COMPUTE, tag_bal, 2, 0, 1, 0, "balance", 0));
    }
    for (uint32_t k32 = 0; k32 < M; k32++) {
        uint16_t k = (uint16_t)k32;
        for (uint8_t e = 0; e < llm; e++) {
            if (s->post) OS_CHECK(add_sync(p, e, COLL_A2A_IN, e, k, 0, "a2a-inputs"));
            OS_CHECK(build_forward(p, s, e, k));
        }
        /* encoder outputs (and text) go straight to the rank that runs the example in the LLM */
        if (s->post) OS_CHECK(add_sync(p, llm, COLL_A2A_OUT, 0, k, 0, "a2a-embeddings"));
        OS_CHECK(build_forward(p, s, llm, k));
        OS_CHECK(build_backward(p, s, llm, k, &last));
        if (s->post) OS_CHECK(add_sync(p, llm, COLL_A2A_GRAD, 0, k, 0, "a2a-grads"));
        for (int e = (int)llm - 1; e >= 0; e--) OS_CHECK(build_backward(p, s, (uint8_t)e, k, &last));
    }
    p->final_wait_op = (uint32_t)p->n_ops;
    if (last == UINT32_MAX) { /* one DDP rank: nothing to wait for; a free marker collective */
        OS_CHECK(add_async(p, &last, tag_sync, 0, "grads-done"));
        p->final_wait_op = (uint32_t)p->n_ops;
    }
    OS_CHECK(add_op(p, OP_WAIT, tag_sync, 0, 0, 0, last, "wait-grads", 0));
    if (s->clip_dur > 0) OS_CHECK(add_sync(p, tag_opt, COLL_FIXED, 0, 0, s->clip_dur, "allreduce-gradnorm"));
    if (s->opt_dur > 0) OS_CHECK(add_op(p, OP_COMPUTE, tag_opt, 3, 0, 1, 0, "optimizer", 0));
    OS_CHECK(add_sync(p, tag_sync, COLL_FIXED, 0, 0, 0, "step-end"));
    p->local_end = calloc((size_t)s->D * p->n_colls, sizeof *p->local_end);
    ALLOC_CHECK(p->local_end);
    *out = p;
    return OS_OK;
fail:
    prog_destroy(p);
    return st;
}

void prog_destroy(Prog *p) {
    if (!p) return;
    free(p->ops);
    free(p->colls);
    free(p->ranks);
    free(p->local_end);
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

static SimTime compute_dur(const Prog *p, uint32_t r, const Op *op) {
    if (op->pass == 2) return p->balance_dur;
    if (op->pass == 3) return p->opt_dur;
    SimTime total = p->dur[(((size_t)r * p->P + op->tag) * p->M + op->mb) * 2 + op->pass];
    SimTime base = total / op->nparts;
    /* the last part takes the remainder, so the parts add up to the pass exactly */
    return op->part + 1u == op->nparts ? total - base * (op->nparts - 1) : base;
}

static void advance(RankRun *r);

static void on_compute_done(Engine *e, EventId id, void *data) {
    (void)e;
    (void)id;
    RankRun *r = data;
    Prog *p = r->prog;
    if (r->computing) { /* a slowed op: its span and busy time end now */
        const Op *op = &p->ops[r->pc];
        SimTime now = engine_now(p->engine), d = now - r->comp_start;
        if (d > r->comp_full) r->slowed += d - r->comp_full;
        span(p, r->rank, op->tag, 0, op->name, r->comp_start, now);
        r->busy += d;
        r->tag_busy[op->tag] += d;
        r->t = now;
        r->computing = 0;
        r->comp_ev = 0;
    }
    r->pc++;
    advance(r);
}

/* Schedule the in-flight compute op's end from its remaining work and current rate. */
static void comp_schedule(Prog *p, RankRun *r) {
    SimTime end = r->comp_t0 + (SimTime)ceil(r->comp_rem / r->comp_rate - 1e-6);
    if (end < r->comp_t0) end = r->comp_t0;
    r->comp_ev = engine_at(p->engine, end, on_compute_done, r, NULL);
    if (r->comp_ev == 0) p->err = OS_ERR_NOMEM;
}

/* The comm stream started or stopped a collective at `now`: every rank's op in flight changes
 * speed (all DP ranks are members of every collective, so all of them see it). */
static void comm_changed(Prog *p, SimTime now) {
    double rate = p->comm_active > 0 ? 1.0 - p->slowdown : 1.0;
    for (uint32_t i = 0; i < p->D; i++) {
        RankRun *r = &p->ranks[i];
        if (!r->computing || r->comp_rate == rate) continue;
        r->comp_rem -= (double)(now - r->comp_t0) * r->comp_rate;
        if (r->comp_rem < 0) r->comp_rem = 0;
        r->comp_t0 = now;
        r->comp_rate = rate;
        engine_cancel(p->engine, r->comp_ev);
        comp_schedule(p, r);
    }
}

static void on_coll_start(Engine *e, EventId id, void *data) {
    (void)id;
    Coll *c = data;
    Prog *p = c->prog;
    p->comm_active++;
    comm_changed(p, engine_now(e));
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
    r->tag_idle[op->tag] += idle;
    span(p, r->rank, op->tag, 2, "idle", from, wait_end);
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
    if (c->async && p->slowdown > 0 && c->end > c->start) {
        p->comm_active--;
        comm_changed(p, engine_now(e));
    }
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
    while (r->pc < p->n_ops) {
        const Op *op = &p->ops[r->pc];
        Coll *c = &p->colls[op->coll];
        switch ((OpKind)op->kind) {
        case OP_COMPUTE: {
            SimTime d = compute_dur(p, r->rank, op);
            if (d > 0 && p->slowdown > 0 && op->pass != 2) {
                /* GPU work beside the comm stream: its end moves with the collectives */
                r->computing = 1;
                r->comp_full = d;
                r->comp_rem = (double)d;
                r->comp_t0 = r->comp_start = r->t;
                r->comp_rate = p->comm_active > 0 ? 1.0 - p->slowdown : 1.0;
                comp_schedule(p, r);
                return;
            }
            if (d > 0) {
                span(p, r->rank, op->tag, 0, op->name, r->t, r->t + d);
                r->busy += d;
                r->tag_busy[op->tag] += d;
                r->t += d;
                schedule(p, r->t, on_compute_done, r);
                return;
            }
            r->pc++;
            continue;
        }
        case OP_SYNC:
            park(p, r, c);
            if (r->t > c->max_arr || c->arrived == 0) c->max_arr = r->t;
            if (++c->arrived == p->D) {
                c->start = c->max_arr;
                if (c->after >= 0) { /* every member passed colls[after]: its end is known */
                    SimTime ready = p->colls[c->after].end + c->after_delay;
                    if (ready > c->start) c->start = ready;
                }
                c->end = c->start + c->dur;
                c->known = 1;
                schedule(p, c->end, on_coll_done, c);
            }
            return;
        case OP_ASYNC:
            r->local_tail = OS_MAX(r->t, r->local_tail) + c->dur;
            p->local_end[(size_t)r->rank * p->n_colls + op->coll] = r->local_tail;
            if (r->t > c->max_arr || c->arrived == 0) c->max_arr = r->t;
            if (++c->arrived == p->D) {
                /* every member issued every earlier collective too, so comm_tail is final */
                c->start = OS_MAX(c->max_arr, p->comm_tail);
                c->end = c->start + c->dur;
                c->known = 1;
                p->comm_tail = c->end;
                if (p->slowdown > 0 && c->end > c->start) schedule(p, c->start, on_coll_start, c);
                schedule(p, c->end, on_coll_done, c);
            }
            r->pc++;
            continue;
        case OP_WAIT:
            if (r->pc == p->final_wait_op) r->final_wait_at = r->t;
            if (c->known && c->end <= r->t) {
                r->pc++;
                continue;
            }
            park(p, r, c);
            return;
        }
    }
}

OsStatus prog_run_step(Prog *p, Engine *e, SimTime start, const SimTime *dur, SimTime balance_dur,
                       int record, SimTime *end) {
    p->dur = dur;
    p->balance_dur = balance_dur;
    p->engine = e;
    p->comm_tail = start;
    p->step_start = start;
    p->err = OS_OK;
    p->record = record;
    p->n_spans = 0;
    p->comm_active = 0;
    for (size_t i = 0; i < p->n_colls; i++) {
        Coll *c = &p->colls[i];
        c->arrived = 0;
        c->max_arr = start;
        c->start = c->end = 0;
        c->known = 0;
        c->waiters = -1;
        c->prog = p;
    }
    for (uint32_t r = 0; r < p->D; r++) {
        RankRun *rr = &p->ranks[r];
        memset(rr, 0, sizeof *rr);
        rr->rank = r;
        rr->t = start;
        rr->local_tail = start;
        rr->next_waiter = -1;
        rr->prog = p;
    }
    for (uint32_t r = 0; r < p->D; r++) advance(&p->ranks[r]);
    OsStatus st = engine_run(e);
    if (st != OS_OK) return st;
    if (p->err != OS_OK) return os_fail(p->err, "replay", "engine", NULL, "out of memory while simulating");
    SimTime mx = start;
    for (uint32_t r = 0; r < p->D; r++) {
        const RankRun *rr = &p->ranks[r];
        if (rr->pc != p->n_ops)
            return os_fail(OS_ERR_INTERNAL, "replay", "engine", NULL, "rank %u stopped at op %u of %zu",
                           r, rr->pc, p->n_ops);
        if (rr->t > mx) mx = rr->t;
    }
    *end = mx;
    return OS_OK;
}

/* ---- timeline ------------------------------------------------------------------------- */

static const char *const KIND_NAMES[] = {"compute", "comm", "idle"};

OsStatus prog_write_timeline(const Prog *p, const char *json_path, const char *csv_path,
                             const char *const *tag_names, uint32_t dp_per_node) {
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
    uint32_t nodes = (p->D + dp_per_node - 1) / dp_per_node;
    int first = 1;
    for (uint32_t n = 0; n < nodes; n++) {
        fprintf(js.fp, "%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,\"args\":{\"name\":\"node %u\"}}",
                first ? "" : ",\n", n, n);
        first = 0;
    }
    for (uint32_t r = 0; r < p->D; r++)
        fprintf(js.fp, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":\"dp rank %u\"}}",
                r / dp_per_node, r, r);
    fprintf(cs.fp, "rank,node,phase,op,kind,start_s,end_s\n");
    for (size_t i = 0; i < p->n_spans; i++) {
        const Span *s = &p->spans[i];
        double ts = (double)(s->start - p->step_start) * 1e-3, du = (double)(s->end - s->start) * 1e-3;
        fprintf(js.fp, ",\n{\"name\":\"%s %s\",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%u,\"tid\":%u}",
                tag_names[s->tag], s->name, KIND_NAMES[s->kind], ts, du, s->rank / dp_per_node, s->rank);
        fprintf(cs.fp, "%u,%u,%s,%s,%s,%.9f,%.9f\n", s->rank, s->rank / dp_per_node, tag_names[s->tag], s->name,
                KIND_NAMES[s->kind], (double)(s->start - p->step_start) * 1e-9,
                (double)(s->end - p->step_start) * 1e-9);
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
