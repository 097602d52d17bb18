/* pipesim.c — a request trace through a pipeline, per step and stage. See pipesim.h.
 *
 * Where a request is: at the first stage, on the rank that drew it (the trace's dealing); after
 * each stage, on the rank that ran it there (its outputs live there). A stage's StepWork has
 * `drawn` = where each request is, so post-balancing keeps homes and moves only what it must
 * (its partitioner keeps the drawn split when that is no worse). A pre-balancing policy at the
 * FIRST stage decides at the data loader, before anything is read: its moves are free, as in
 * training; at later stages there is no loader and every policy's moves are charged.
 * Timing per step (the steps run one after another, each from the previous one's end):
 *   barrier stage: start = max over ranks and predecessors of their end, + the exposed
 *     balancer (post: its modelled planning charge, policy_charge_s, and the 8-byte-per-request
 *     lengths all-gather) + the
 *     all-to-all; end[r] = start + compute[r];
 *   streaming stage: start[r] = max(end of r's predecessors, the same for every rank sending
 *     r a request) + the balancer (planned from the trace's fields ahead of the stage, charged
 *     on every rank) + the all-to-all when r sends or receives; end[r] = start[r] + compute[r].
 * The schedule is static (each rank's requests and order are fixed by the plan), so these
 * event times are what a discrete-event run of it would give, without the queue. */
#include "sim/diffusion/pipesim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/diffusion/dops.h"
#include "sim/engine.h"
#include "sim/program.h"

void pipe_config_init(PipeConfig *c) {
    memset(c, 0, sizeof *c);
    c->policy = policy_find("none");
    c->popt.objective = OBJ_COST;
    c->balancer_cost_s = -1.0;
    c->grad_bytes_per_param = 4.0; /* PyTorch DDP under AMP reduces the fp32 gradients */
}

typedef struct {
    uint32_t D, S, N;
    /* per request */
    uint32_t *loc;        /* [S*N] rank after stage s */
    uint32_t *drawn, *home, *ex_rank, *tok;
    double *cost, *bwd;   /* a request's seconds, and (training) their backward part */
    uint64_t *bytes;
    /* per rank */
    double *end;          /* [S*D] end of stage s on rank r */
    double *load, *ready, *start, *bload; /* bload: training, the backward part of load */
    SimTime *dur;         /* [D * 2] training: each rank's forward and backward (ns) */
    uint8_t *touch;       /* [D] sends or receives in this stage's all-to-all */
    NetMove *moves;
    size_t cap_n;
} PipeBufs;

static void bufs_free(PipeBufs *b) {
    void *p[] = {b->loc, b->drawn, b->home, b->ex_rank, b->tok, b->cost, b->bwd, b->bytes, b->end, b->load,
                 b->ready, b->start, b->bload, b->dur, b->touch, b->moves};
    for (size_t i = 0; i < OS_ARRAY_LEN(p); i++) free(p[i]);
    memset(b, 0, sizeof *b);
}

static OsStatus bufs_reserve(PipeBufs *b, uint32_t N, uint32_t D, uint32_t S) {
    OsStatus st = OS_OK;
    if (!b->end) {
        b->end = calloc((size_t)S * D, sizeof *b->end);
        b->load = calloc(D, sizeof *b->load);
        b->ready = calloc(D, sizeof *b->ready);
        b->start = calloc(D, sizeof *b->start);
        b->touch = calloc(D, sizeof *b->touch);
        b->bload = calloc(D, sizeof *b->bload);
        b->dur = calloc((size_t)D * 2, sizeof *b->dur);
        ALLOC_CHECK(b->end && b->load && b->ready && b->start && b->touch && b->bload && b->dur);
    }
    if (N > b->cap_n) { /* grows to the largest step, then reused (STYLE habit 4) */
        size_t n = N;
#define RE(f, k)                                                      \
    do {                                                              \
        void *q_ = realloc(b->f, (k) * sizeof *b->f);                 \
        ALLOC_CHECK(q_);                                              \
        b->f = q_;                                                    \
    } while (0)
        RE(loc, n * S);
        RE(drawn, n);
        RE(home, n);
        RE(ex_rank, n);
        RE(tok, n);
        RE(cost, n);
        RE(bwd, n);
        RE(bytes, n);
        RE(moves, n);
#undef RE
        b->cap_n = N;
    }
    b->D = D, b->S = S, b->N = N;
fail:
    return st;
}

static double dmax(const double *v, uint32_t n) {
    double m = 0;
    for (uint32_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* PyTorch DDP's default gradient bucket (bucket_cap_mb = 25, torch/nn/parallel/distributed.py). */
#define PIPE_DDP_BUCKET_BYTES (25.0 * 1024 * 1024)

/* Parameters of the denoisers a training stage updates (the stage's model). */
static double train_params(const Stage *s) { return dm_params(s->model); }

OsStatus pipe_run(PipeSummary *sum, const PipeConfig *cfg, Trace *t, const T2iRequests *req) {
    OsStatus st = OS_OK;
    PipeBufs b;
    PolicyScratch *ps = NULL;
    Engine *eng = NULL;
    Prog *pg = NULL;
    SimTime eclock = 0; /* the engine's clock only moves forward: each training step starts where the last ended */
    NetScratch *ns = NULL;
    StageCoster *sc = NULL;
    memset(&b, 0, sizeof b);
    memset(sum, 0, sizeof *sum);
    const Pipeline *P = cfg->pipe;
    const char *tp = trace_path(t);
    if (!P || !cfg->calib || !cfg->policy) OS_FAIL(OS_ERR_ARG, "pipeline", NULL, NULL, "missing pipeline, calibration or policy");
    OS_CHECK(cluster_validate(&cfg->cluster));
    uint32_t D = cfg->cluster.dp, S = P->n;
    OS_CHECK(policy_scratch_create(&ps));
    OS_CHECK(net_scratch_create(&ns, &cfg->cluster));
    OS_CHECK(stage_coster_create(&sc, cfg->calib));
    sum->n_stages = S;
    sum->gpus = cfg->cluster.gpus;
    sum->conv_frac = dops_conv_frac(cfg->calib);
    sum->conv_measured = cfg->calib->conv_frac > 0;
    snprintf(sum->calib_name, sizeof sum->calib_name, "%s", cfg->calib->name);
    StageRole role[PIPE_MAX_STAGES];
    for (uint32_t s = 0; s < S; s++) {
        const Stage *sg = &P->st[s];
        snprintf(sum->st[s].name, sizeof sum->st[s].name, "%s", sg->name);
        sum->st[s].kind = sg->kind;
        role[s] = cfg->mode == PIPE_INFER ? ROLE_INFER : sg->kind == STG_GENERATE ? ROLE_TRAIN : ROLE_SKIPPED;
        sum->st[s].role = role[s];
    }
    if (cfg->mode == PIPE_FINETUNE) {
        int any = 0;
        for (uint32_t s = 0; s < S; s++) any |= role[s] == ROLE_TRAIN;
        if (!any) OS_FAIL(OS_ERR_ARG, P->where, "--mode finetune", "add a generate stage (its denoiser trains)", "no stage has a denoiser to fine-tune");
    }
    if (req && req->n && req->n != trace_n_examples(t))
        OS_FAIL(OS_ERR_ARG, tp, "/requests", NULL, "%llu requests for %llu examples", (unsigned long long)req->n,
                (unsigned long long)trace_n_examples(t));

    trace_rewind(t);
    uint64_t total = trace_n_steps(t), first = cfg->first_step, last = total;
    if (first >= total)
        OS_FAIL(OS_ERR_ARG, tp, "--skip", NULL, "the trace has %llu steps", (unsigned long long)total);
    if (cfg->n_steps && first + cfg->n_steps < last) last = first + cfg->n_steps;
    double now = 0;
    for (uint64_t k = first; k < last; k++) {
        const TraceStep *ts;
        OS_CHECK(trace_read_step(t, k, &ts));
        if (!cfg->regroup && ts->dp != D)
            OS_FAIL(OS_ERR_FORMAT, tp, "/steps.dp", "add --regroup",
                    "step %llu was drawn for DP %u, the cluster has DP %u", (unsigned long long)ts->index, ts->dp, D);
        uint32_t N = ts->n_examples;
        OS_CHECK(bufs_reserve(&b, N, D, S));
        for (uint32_t i = 0; i < N; i++)
            b.drawn[i] = ts->dp == D ? i / (N / D) : (uint32_t)((uint64_t)i * D / N);
        double step_end = 0;
        for (uint32_t oi = 0; oi < S; oi++) {
            uint32_t s = P->order[oi];
            const Stage *sg = &P->st[s];
            PipeStageSum *ss = &sum->st[s];
            double *end = b.end + (size_t)s * D;
            /* inputs: where each request is, and when each rank's predecessors ended */
            const uint32_t *in = sg->n_after ? b.loc + (size_t)sg->after[0] * N : b.drawn;
            for (uint32_t r = 0; r < D; r++) {
                double rd = now;
                for (uint32_t q = 0; q < sg->n_after; q++) rd = fmax(rd, b.end[(size_t)sg->after[q] * D + r]);
                b.ready[r] = rd;
            }
            uint32_t *out = b.loc + (size_t)s * N;
            if (role[s] == ROLE_SKIPPED) {
                memcpy(out, in, N * sizeof *out);
                memcpy(end, b.ready, D * sizeof *end);
                continue;
            }
            int train = role[s] == ROLE_TRAIN;
            double cost_sum = 0;
            for (uint32_t i = 0; i < N; i++) {
                ReqFields f;
                ReqCost c;
                /* the request's /requests row (UINT64_MAX without request tables: defaults) */
                OS_CHECK(stage_resolve(&f, sg, req, t2i_request_row(req, k, i), tp));
                OS_CHECK(stage_request_cost(&c, sc, sg, &f, train));
                b.cost[i] = c.seconds;
                b.bwd[i] = c.bwd_seconds;
                b.tok[i] = c.tokens;
                b.bytes[i] = c.in_bytes;
                cost_sum += c.seconds;
                ss->images += c.images;
                ss->model_flops += c.model_flops;
                ss->exec_flops += c.exec_flops;
            }
            StepWork w = {.D = D, .P = 1, .N = N, .M = 0, .dp_per_node = cfg->cluster.dp_per_node, .drawn = in,
                          .ex_cost = b.cost, .ex_tokens = b.tok, .ex_bytes = b.bytes, .opt = &cfg->popt};
            Plan pl = {.home = b.home, .ex_rank = b.ex_rank, .it_rank = NULL, .hierarchical = 0};
            double t0 = os_thread_cpu_now();
            OS_CHECK(cfg->policy->fn(&pl, &w, ps));
            double plan_s = os_thread_cpu_now() - t0;
            OS_CHECK(plan_check(&pl, &w, cfg->policy->name));
            int post = cfg->policy->kind == POLICY_POST;
            double bal = 0, lens = 0;
            ss->planned_s += plan_s; /* measured, reported beside the charge */
            if (post) { /* the deterministic charge (DESIGN.md §4: rankings never depend on host timing) */
                bal = cfg->balancer_cost_s >= 0 ? cfg->balancer_cost_s : policy_charge_s(cfg->policy, N, 0);
                lens = net_allgather(&cfg->cluster, 8.0 * N);
            }
            /* moves: the loader places a pre-balanced request at the first stage for free */
            int loader = !post && sg->n_after == 0;
            size_t nm = 0;
            uint64_t moved = 0;
            for (uint32_t r = 0; r < D; r++) b.load[r] = b.bload[r] = 0;
            double load_sum = 0;
            for (uint32_t i = 0; i < N; i++) {
                uint32_t dst = pl.ex_rank[i], src = loader ? dst : in[i];
                if (src != dst && b.bytes[i]) b.moves[nm++] = (NetMove){src, dst, b.bytes[i]};
                moved += src != dst;
                b.load[dst] += b.cost[i];
                b.bload[dst] += b.bwd[i];
                load_sum += b.cost[i];
                out[i] = dst;
            }
            /* conservation: every request computed exactly once in this stage */
            if (fabs(load_sum - cost_sum) > 1e-9 * fmax(1.0, cost_sum))
                OS_FAIL(OS_ERR_INTERNAL, "pipeline", sg->name, NULL, "step %llu: %.9g s of requests computed, %.9g s drawn",
                        (unsigned long long)k, load_sum, cost_sum);
            NetA2AStats as;
            memset(&as, 0, sizeof as);
            double a2a = 0;
            if (nm) {
                a2a = pl.hierarchical ? net_alltoallv_hier(&cfg->cluster, b.moves, nm, ns, &as)
                                      : net_alltoallv(&cfg->cluster, b.moves, nm, ns, &as);
                if (isnan(a2a)) OS_FAIL(OS_ERR_INTERNAL, "pipeline", sg->name, NULL, "all-to-all: %s", os_last_error());
            }
            /* start times */
            double ready_all = dmax(b.ready, D), first_start = INFINITY;
            if (sg->sync == SYNC_BARRIER) {
                for (uint32_t r = 0; r < D; r++) b.start[r] = ready_all + bal + lens + a2a;
            } else {
                for (uint32_t r = 0; r < D; r++) b.start[r] = b.ready[r], b.touch[r] = 0;
                for (size_t m = 0; m < nm; m++) { /* a receiver waits for its senders' inputs */
                    double rs = b.ready[b.moves[m].src];
                    if (rs > b.start[b.moves[m].dst]) b.start[b.moves[m].dst] = rs;
                    b.touch[b.moves[m].src] = b.touch[b.moves[m].dst] = 1;
                }
                for (uint32_t r = 0; r < D; r++) b.start[r] += bal + lens + (b.touch[r] ? a2a : 0);
            }
            double last_end = 0;
            for (uint32_t r = 0; r < D; r++) {
                end[r] = b.start[r] + b.load[r];
                first_start = fmin(first_start, b.ready[r]);
                last_end = fmax(last_end, end[r]);
            }
            double lmax = dmax(b.load, D), lmean = load_sum / D;
            if (train) {
                /* the training step through the MLLM replay's step program (sim/program.h): DDP's
                 * gradient buckets all-reduced as the backward produces them, overlapping the rest of
                 * it, compute slowed while NCCL runs beside it, the gradient-norm all-reduce and the
                 * AdamW step; each rank starts when its inputs are there (its wait is charged as the
                 * start of its forward: only the step's end is read back) */
                double prm = train_params(sg), gbytes = prm * cfg->grad_bytes_per_param;
                uint32_t B = (uint32_t)ceil(gbytes / PIPE_DDP_BUCKET_BYTES);
                if (B < 1) B = 1;
                if (B > 1024) B = 1024;
                SimTime bucket = sim_from_seconds(net_allreduce_ring(&cfg->cluster, gbytes / B));
                double opt = prm * cost_optimizer_bytes_per_param() / cfg->calib->hbm_bw + 10 * cfg->calib->kernel_launch_s;
                double clip = D > 1 ? net_allreduce_ring(&cfg->cluster, 4.0) : 0;
                ProgSpec spec = {.D = D, .P = 1, .M = 1, .fsdp = SHARD_DDP, .buckets = B, .grad_coll_dur = &bucket,
                                 .clip_dur = sim_from_seconds(clip), .opt_dur = sim_from_seconds(opt),
                                 .slowdown = cfg->calib->overlap_slowdown};
                double t0 = INFINITY, compute_end = 0;
                for (uint32_t r = 0; r < D; r++) t0 = fmin(t0, b.start[r]);
                for (uint32_t r = 0; r < D; r++) {
                    b.dur[2 * r] = sim_from_seconds(b.start[r] - t0 + b.load[r] - b.bload[r]);
                    b.dur[2 * r + 1] = sim_from_seconds(b.bload[r]);
                    compute_end = fmax(compute_end, b.start[r] + b.load[r]);
                }
                if (!eng) OS_CHECK(engine_create(&eng, ENGINE_HEAP, (size_t)D * 2 + 64));
                OS_CHECK(prog_create(&pg, &spec));
                SimTime stop;
                OS_CHECK(prog_run_step(pg, eng, eclock, b.dur, 0, 0, &stop));
                prog_destroy(pg);
                pg = NULL;
                double step_end_t = t0 + sim_to_seconds(stop - eclock);
                eclock = stop;
                for (uint32_t r = 0; r < D; r++) end[r] = step_end_t;
                last_end = step_end_t;
                /* what the gradients cost beyond the compute: the exposed part of their sync */
                ss->grad_sync_s += fmax(0.0, step_end_t - compute_end - opt - clip);
                ss->optimizer_s += opt;
            }
            /* a barrier stage runs from its barrier (waiting for the previous stage's stragglers
             * is that stage's imbalance); a streaming one from its first rank's start */
            ss->span_s += last_end - (sg->sync == SYNC_BARRIER ? ready_all : first_start);
            ss->compute_max_s += lmax;
            ss->compute_mean_s += lmean;
            ss->oracle_s += policy_oracle_phase(&w, 0);
            ss->imbalance += lmean > 0 ? lmax / lmean : 1.0;
            ss->balancer_s += bal;
            ss->lengths_s += lens;
            ss->a2a_s += a2a;
            ss->busy_gpu_s += load_sum;
            ss->requests += N;
            ss->moved += moved;
            ss->bytes_intra += as.intra_bytes;
            ss->bytes_inter += as.inter_bytes;
            step_end = fmax(step_end, last_end);
        }
        for (uint32_t s = 0; s < S; s++) step_end = fmax(step_end, dmax(b.end + (size_t)s * D, D));
        now = step_end;
        sum->steps++;
        sum->requests += N;
    }
    sum->total_s = now;
    for (uint32_t s = 0; s < S; s++) {
        PipeStageSum *ss = &sum->st[s];
        if (sum->steps) ss->imbalance /= (double)sum->steps;
        sum->model_flops += ss->model_flops;
        sum->exec_flops += ss->exec_flops;
        sum->busy_gpu_hours += ss->busy_gpu_s / 3600.0;
    }
    sum->gpu_hours = sum->total_s * sum->gpus / 3600.0;
fail:
    bufs_free(&b);
    prog_destroy(pg);
    engine_destroy(eng);
    policy_scratch_destroy(ps);
    net_scratch_destroy(ns);
    stage_coster_destroy(sc);
    return st;
}
