/* test_replay.c — the simulator end to end on hand-made traces: one rank with no
 * communication takes exactly the sum of its ops; identical ranks never idle; one slow rank
 * makes every other rank idle exactly the difference; tokens are conserved; heap and naive
 * engines agree to the nanosecond; the same input gives byte-identical output. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "sim/replay.h"

typedef ThEx Ex;

static const char *write_trace(const char *name, const Ex *ex, uint32_t n, uint32_t dp, uint32_t steps) {
    const char *p = th_write_trace(name, ex, n, dp, steps);
    cr_assert_not_null(p, "%s", os_last_error());
    return p;
}

typedef struct {
    StepResult r[8];
    int n;
} Sink;

static OsStatus keep(const StepResult *r, void *u) {
    Sink *s = u;
    if (s->n < 8) s->r[s->n] = *r;
    s->n++;
    return OS_OK;
}

static ModelSpec g_model;
static Calib g_calib;

static void config(ReplayConfig *c, uint32_t gpus, TrainSetup setup, const char *policy) {
    replay_config_init(c);
    cr_assert_eq(model_resolve(&g_model, "tiny"), OS_OK, "%s", os_last_error());
    calib_default_h100(&g_calib);
    c->model = &g_model;
    c->calib = &g_calib;
    c->setup = setup;
    c->policy = policy_find(policy);
    cr_assert_not_null(c->policy);
    c->balancer_cost_s = 0.0;
    cr_assert_eq(cluster_init(&c->cluster, gpus, 8, 1), OS_OK, "%s", os_last_error());
    /* a network with no latency and (practically) infinite bandwidth: collectives take 0 ns,
     * so the checks below are exact in nanoseconds */
    c->cluster.intra_lat = c->cluster.inter_lat = c->cluster.base_lat = c->cluster.nvls_lat = 0.0;
    c->cluster.intra_bw = c->cluster.inter_bw = 1e30;
    /* no optimizer step and no compute slowdown: steps are sums of phase times (the tests of
     * those two terms set them back) */
    c->optimizer = 0;
    c->grad_clip = 0;
    c->overlap_slowdown = 0.0;
}

static double phase_s(const CostModel *cm, uint32_t p, const uint32_t *lens, uint32_t n) {
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, cm, p, lens, n), OS_OK);
    return pc.fwd_s + pc.bwd_s;
}

static SimTime phase_ns(const CostModel *cm, uint32_t p, const uint32_t *lens, uint32_t n) {
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, cm, p, lens, n), OS_OK);
    return sim_from_seconds(pc.fwd_s) + sim_from_seconds(pc.bwd_s);
}

Test(replay, one_rank_takes_the_sum_of_its_ops) {
    Ex ex[2] = {{100, 1, 64, 0, 0}, {50, 0, 0, 1, 30}};
    const char *path = write_trace("one.h5", ex, 2, 1, 1);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    ReplayConfig c;
    config(&c, 1, SETUP_DDP, "none");
    ReplaySummary sum;
    Sink sink = {0};
    cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
    CostModel cm = {.model = &g_model, .calib = &g_calib};
    /* LLM lengths: text + ceil(len / ratio): 100 + 16 and 50 + 15 */
    uint32_t img[1] = {64}, aud[1] = {30}, llm[2] = {116, 65};
    SimTime want = phase_ns(&cm, 0, img, 1) + phase_ns(&cm, 1, aud, 1) + phase_ns(&cm, 2, llm, 2);
    cr_assert_eq(sink.n, 1);
    cr_assert_eq(sim_from_seconds(sink.r[0].step_s), want, "step %lld ns, sum of ops %lld ns",
                 (long long)sim_from_seconds(sink.r[0].step_s), (long long)want);
    cr_assert_eq(sim_from_seconds(sink.r[0].busy_s), want);
    cr_assert_eq(sink.r[0].idle_s, 0.0);
    cr_assert_eq(sink.r[0].llm_tokens, 116u + 65u);
    trace_close(t);
}

Test(replay, identical_ranks_never_idle) {
    Ex ex[8];
    for (int i = 0; i < 8; i++) ex[i] = (Ex){200, 1, 128, 1, 40};
    const char *path = write_trace("ident.h5", ex, 8, 4, 2);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    for (int setup = 0; setup < 2; setup++) {
        ReplayConfig c;
        config(&c, 4, (TrainSetup)setup, "none");
        c.cluster.intra_lat = 5e-6; /* real latencies: exposed comm, but still no idle */
        c.cluster.intra_bw = 450e9;
        ReplaySummary sum;
        Sink sink = {0};
        cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
        for (int k = 0; k < sink.n; k++) {
            cr_assert_eq(sink.r[k].idle_s, 0.0, "setup %d step %d idle %g", setup, k, sink.r[k].idle_s);
            cr_assert_float_eq(sink.r[k].busy_s + sink.r[k].idle_s + sink.r[k].comm_s, sink.r[k].step_s, 1e-12);
            for (uint32_t p = 0; p < sum.P; p++) cr_assert_float_eq(sink.r[k].phase_imbalance[p], 1.0, 1e-12);
        }
    }
    trace_close(t);
}

Test(replay, one_slow_rank_makes_the_others_idle_exactly_the_difference) {
    /* 4 ranks x 2 text-only examples; rank 3's second example is longer */
    Ex ex[8];
    for (int i = 0; i < 8; i++) ex[i] = (Ex){300, 0, 0, 0, 0};
    ex[7].text = 900;
    const char *path = write_trace("slow.h5", ex, 8, 4, 1);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    for (int setup = 0; setup < 2; setup++) {
        ReplayConfig c;
        config(&c, 4, (TrainSetup)setup, "none");
        ReplaySummary sum;
        Sink sink = {0};
        cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
        CostModel cm = {.model = &g_model, .calib = &g_calib};
        uint32_t fast[2] = {300, 300}, slow[2] = {300, 900};
        SimTime d = phase_ns(&cm, 2, slow, 2) - phase_ns(&cm, 2, fast, 2);
        cr_assert_gt(d, 0);
        /* mean idle over 4 ranks = 3 * d / 4 exactly; the slow rank never waits */
        SimTime idle_total = sim_from_seconds(sink.r[0].idle_s * 4.0);
        cr_assert(llabs(idle_total - 3 * d) <= 1, "setup %d: idle %lld ns, want 3 x %lld", setup,
                  (long long)idle_total, (long long)d);
        double ts = phase_s(&cm, 2, slow, 2), tf = phase_s(&cm, 2, fast, 2);
        cr_assert_float_eq(sink.r[0].phase_imbalance[2], ts / ((3.0 * tf + ts) / 4.0), 1e-12);
    }
    trace_close(t);
}

/* Every policy, both engines: tokens conserved, identical results from heap and naive. */
Test(replay, heap_and_naive_engines_agree_and_tokens_are_conserved) {
    Ex ex[16];
    uint64_t tokens = 0;
    for (int i = 0; i < 16; i++) {
        ex[i] = (Ex){(uint32_t)(50 + 37 * i % 400), (uint32_t)(i % 3), (uint32_t)(64 + 16 * (i % 5)),
                     (uint32_t)(i % 2), (uint32_t)(20 + 10 * (i % 4))};
        tokens += ex[i].text + ex[i].n_img * ((ex[i].img_len + 3) / 4) + ex[i].n_aud * ((ex[i].aud_len + 1) / 2);
    }
    const char *path = write_trace("pol.h5", ex, 16, 8, 2);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    for (uint32_t i = 0; i < policy_count(); i++) {
        for (int setup = 0; setup < 3; setup++) {
            ReplayConfig c;
            config(&c, 8, (TrainSetup)setup, policy_at(i)->name);
            c.cluster.intra_lat = 3e-6;
            c.cluster.intra_bw = 450e9;
            c.overlap_slowdown = 0.2; /* rescheduled compute ends: the engines must still agree */
            c.micro_batch = 1 + (uint32_t)setup;
            ReplaySummary s1, s2;
            Sink a = {0}, b = {0};
            cr_assert_eq(replay_run(&s1, &c, t, keep, &a), OS_OK, "%s: %s", policy_at(i)->name, os_last_error());
            c.engine_kind = ENGINE_NAIVE;
            cr_assert_eq(replay_run(&s2, &c, t, keep, &b), OS_OK, "%s", os_last_error());
            cr_assert_eq(a.n, 2);
            for (int k = 0; k < 2; k++) {
                cr_assert_eq(a.r[k].llm_tokens, tokens, "%s", policy_at(i)->name);
                cr_assert_eq(a.r[k].step_s, b.r[k].step_s, "%s step %d", policy_at(i)->name, k);
                cr_assert_eq(a.r[k].idle_s, b.r[k].idle_s);
                cr_assert_float_eq(a.r[k].busy_s + a.r[k].idle_s + a.r[k].comm_s, a.r[k].step_s, 1e-12);
                for (uint32_t p = 0; p < s1.P; p++)
                    cr_assert_geq(a.r[k].phase_max_s[p] + 1e-15, a.r[k].phase_oracle_s[p], "%s phase %u",
                                  policy_at(i)->name, p);
            }
            cr_assert_eq(s1.events, s2.events);
        }
    }
    trace_close(t);
}

/* Bad configurations give one clear error each. */
Test(replay, dp_mismatch_names_regroup) {
    Ex ex[4] = {{10, 0, 0, 0, 0}, {10, 0, 0, 0, 0}, {10, 0, 0, 0, 0}, {10, 0, 0, 0, 0}};
    const char *path = write_trace("dp.h5", ex, 4, 2, 1);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK);
    ReplayConfig c;
    config(&c, 4, SETUP_DDP, "none");
    ReplaySummary sum;
    os_clear_error();
    cr_assert_eq(replay_run(&sum, &c, t, NULL, NULL), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "--regroup"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "DP 2"), "%s", os_last_error());
    os_clear_error();
    c.regroup = 1;
    cr_assert_eq(replay_run(&sum, &c, t, NULL, NULL), OS_OK, "%s", os_last_error());
    trace_close(t);
}

Test(replay, an_example_no_gpu_can_hold_is_flagged) {
    Ex ex[1] = {{2000000000u, 0, 0, 0, 0}};
    const char *path = write_trace("huge.h5", ex, 1, 1, 1);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK);
    ReplayConfig c;
    config(&c, 1, SETUP_DDP, "none");
    ReplaySummary sum;
    os_clear_error();
    cr_assert_eq(replay_run(&sum, &c, t, NULL, NULL), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "example id 0"), "%s", os_last_error());
    trace_close(t);
}

/* The post-balancing overlap: phase p's all-to-all waits for its plan only when the host has
 * not finished planning it while the GPUs ran the earlier phases (program.h's `after`). */
#include "sim/program.h"

static SimTime run_overlap(SimTime llm_plan_ready, SimTime *idle) {
    SimTime grad[2] = {0, 0};
    ProgSpec spec = {.D = 2, .P = 2, .fsdp = 0, .group = 1, .buckets = 1, .post = 1, .grad_coll_dur = grad};
    Prog *pg = NULL;
    Engine *e = NULL;
    cr_assert_eq(prog_create(&pg, &spec), OS_OK, "%s", os_last_error());
    cr_assert_eq(engine_create(&e, ENGINE_HEAP, 16), OS_OK);
    /* per rank: encoder fwd 100, bwd 200; LLM fwd 1000, bwd 2000 (ns) */
    SimTime dur[2 * 2 * 2] = {100, 200, 1000, 2000, 100, 200, 1000, 2000};
    for (size_t c = 0; c < pg->n_colls; c++)
        if (pg->colls[c].role == COLL_A2A_OUT && llm_plan_ready >= 0) {
            pg->colls[c].after = pg->lengths_coll;
            pg->colls[c].after_delay = llm_plan_ready;
        }
    SimTime end = 0;
    cr_assert_eq(prog_run_step(pg, e, 0, dur, 10, 0, &end), OS_OK, "%s", os_last_error());
    *idle = pg->ranks[0].idle;
    cr_assert_eq(pg->ranks[1].idle, *idle);
    prog_destroy(pg);
    engine_destroy(e);
    return end;
}

Test(replay, later_phase_plans_overlap_the_gpu_work_before_them) {
    SimTime idle;
    /* balance 10 + encoder 100 + LLM 3000 + encoder bwd 200, all collectives free */
    cr_assert_eq(run_overlap(-1, &idle), 3310);
    cr_assert_eq(idle, 0);
    /* the LLM plan is ready at 60 ns, before the ranks reach its all-to-all at 110: hidden */
    cr_assert_eq(run_overlap(60, &idle), 3310);
    cr_assert_eq(idle, 0);
    /* ready at 510: every rank waits 400 ns at the embeddings' all-to-all */
    cr_assert_eq(run_overlap(510, &idle), 3710);
    cr_assert_eq(idle, 400);
}

/* Micro-batches: one rank, 6 text examples; by count (2 per micro-batch) and by token budget
 * the share runs as 3 micro-batches, and the step is exactly their sum (DDP, free network). */
Test(replay, micro_batches_split_the_share_and_add_up) {
    Ex ex[6];
    for (int i = 0; i < 6; i++) ex[i] = (Ex){100u + 10u * (uint32_t)i, 0, 0, 0, 0};
    const char *path = write_trace("mb.h5", ex, 6, 1, 1);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    ReplayConfig c;
    config(&c, 1, SETUP_DDP, "none");
    CostModel cm = {.model = &g_model, .calib = &g_calib};
    uint32_t m0[2] = {100, 110}, m1[2] = {120, 130}, m2[2] = {140, 150};
    SimTime want = phase_ns(&cm, 2, m0, 2) + phase_ns(&cm, 2, m1, 2) + phase_ns(&cm, 2, m2, 2);
    for (int mode = 0; mode < 2; mode++) {
        c.micro_batch = mode == 0 ? 2 : 0;
        c.micro_batch_tokens = mode == 1 ? 300 : 0; /* 100+110 fit, +120 would not; 140+150 do */
        ReplaySummary sum;
        Sink sink = {0};
        cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
        cr_assert_eq(sink.r[0].micro_batches, 3u, "mode %d", mode);
        cr_assert_eq(sim_from_seconds(sink.r[0].step_s), want, "mode %d: %lld vs %lld", mode,
                     (long long)sim_from_seconds(sink.r[0].step_s), (long long)want);
        cr_assert_eq(sum.mb_clamped, 0u);
    }
    /* a micro-batch larger than the share is clamped to it: one micro-batch, flagged */
    c.micro_batch = 64, c.micro_batch_tokens = 0;
    ReplaySummary sum;
    Sink sink = {0};
    cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
    cr_assert_eq(sink.r[0].micro_batches, 1u);
    cr_assert_eq(sum.mb_clamped, 1u);
    trace_close(t);
}

/* The optimizer step adds exactly its modelled time to a one-rank step (no collective to
 * overlap it), and the micro-batches of an FSDP run gather parameters each time: with a slow
 * network, 2 micro-batches cost more than twice the compute of one half each. */
Test(replay, optimizer_and_per_micro_batch_gathers) {
    Ex ex[8];
    for (int i = 0; i < 8; i++) ex[i] = (Ex){200, 0, 0, 0, 0};
    const char *path = write_trace("opt.h5", ex, 8, 2, 1);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    ReplayConfig c;
    config(&c, 2, SETUP_FSDP, "none");
    ReplaySummary off, on;
    cr_assert_eq(replay_run(&off, &c, t, NULL, NULL), OS_OK, "%s", os_last_error());
    c.optimizer = 1;
    cr_assert_eq(replay_run(&on, &c, t, NULL, NULL), OS_OK, "%s", os_last_error());
    CostModel cm = {.model = &g_model, .calib = &g_calib};
    double opt = cost_optimizer_s(&cm, (double)model_params(&g_model) / 2);
    cr_assert_gt(opt, 0);
    cr_assert(llabs(sim_from_seconds(on.step_mean_s - off.step_mean_s) - sim_from_seconds(opt)) <= 1,
              "optimizer %g s, step grew %g s", opt, on.step_mean_s - off.step_mean_s);
    cr_assert_float_eq(on.optimizer_s_per_step, opt, 1e-15);
    /* slow links: every all-gather is exposed; FULL_SHARD gathers per micro-batch, twice */
    c.optimizer = 0;
    c.cluster.intra_bw = 1e6; /* 1 MB/s */
    ReplaySummary one, two, gop;
    cr_assert_eq(replay_run(&one, &c, t, NULL, NULL), OS_OK, "%s", os_last_error());
    c.micro_batch = 2;
    cr_assert_eq(replay_run(&two, &c, t, NULL, NULL), OS_OK, "%s", os_last_error());
    cr_assert_gt(two.step_mean_s, 1.9 * one.step_mean_s, "2 micro-batches %g s, 1: %g s", two.step_mean_s,
                 one.step_mean_s);
    c.setup = SETUP_FSDP_GRAD_OP; /* gathers once per micro-batch: fewer bytes moved */
    cr_assert_eq(replay_run(&gop, &c, t, NULL, NULL), OS_OK, "%s", os_last_error());
    cr_assert_lt(gop.step_mean_s, two.step_mean_s);
    trace_close(t);
}

/* FSDP's post-backward gradient preparation (cast to the reduce dtype, pre-division) occupies
 * the reduce-scatter's stream: with a free network the exposed gradient sync is that work alone,
 * by hand the last unit's bytes over HBM: 14 B/param reducing bf16 gradients in fp32, 4 in bf16. */
Test(replay, fsdp_gradient_preparation_before_reduce_scatter) {
    Ex ex[4];
    for (int i = 0; i < 4; i++) ex[i] = (Ex){300, 0, 0, 0, 0};
    const char *path = write_trace("prep.h5", ex, 4, 2, 1);
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    double sync[2];
    for (int k = 0; k < 2; k++) {
        ReplayConfig c;
        config(&c, 2, SETUP_FSDP, "none");
        c.fsdp_groups = 1;
        c.grad_reduce_bytes = k ? 4 : 2;
        ReplaySummary sum;
        Sink sink = {0};
        cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
        sync[k] = sink.r[0].grad_sync_s;
    }
    /* the last reduce-scatter is the first encoder's (image), one group of all its parameters */
    double params = (double)stack_params(&g_model.enc[0].stack) + (double)model_projector_params(&g_model, 0);
    double want[2] = {params * 4.0 / g_calib.hbm_bw, params * 14.0 / g_calib.hbm_bw};
    for (int k = 0; k < 2; k++)
        cr_assert(fabs(sync[k] - want[k]) <= 2e-9 + 1e-6 * want[k], "%s: exposed %g s, by hand %g s", k ? "fp32" : "bf16",
                  sync[k], want[k]);
    trace_close(t);
}
