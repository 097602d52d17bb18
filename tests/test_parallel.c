/* test_parallel.c — tensor, pipeline and context parallelism end to end (sim/layout.h,
 * sim/replay.h, cli --parallel): a pipelined step with one micro-batch is the sum of its stages'
 * slices; interleaving shrinks the bubble and conserves tokens; TP's sequence-parallel
 * collectives are charged exactly as the alpha-beta forms price them, and overlap only hides
 * them; a stage whose in-flight activations cannot fit is refused with the amounts; every bad
 * layout gets one error naming its option; fewer micro-batches than stages is warned. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "sim/layout.h"
#include "sim/replay.h"

typedef struct {
    StepResult r[4];
    int n;
} Sink;

static OsStatus keep(const StepResult *r, void *u) {
    Sink *s = u;
    if (s->n < 4) s->r[s->n] = *r;
    s->n++;
    return OS_OK;
}

static ModelSpec g_model;
static Calib g_calib;

/* A replay of model `tiny` (its LLM widened to `layers` layers) on `gpus` GPUs laid out as
 * tp x pp (vp chunks), DDP, no optimizer, no slowdown; zero-cost network unless real_net. */
static void config(ReplayConfig *c, uint32_t gpus, uint32_t tp, uint32_t pp, uint32_t vp, uint32_t layers, int real_net) {
    replay_config_init(c);
    cr_assert_eq(model_resolve(&g_model, "tiny"), OS_OK, "%s", os_last_error());
    g_model.llm.layers = layers;
    calib_default_h100(&g_calib);
    c->model = &g_model;
    c->calib = &g_calib;
    c->setup = SETUP_DDP;
    c->policy = policy_find("none");
    c->balancer_cost_s = 0.0;
    c->par.tp = tp, c->par.pp = pp, c->par.vp = vp;
    cr_assert_eq(cluster_init_parallel(&c->cluster, gpus, 8, tp, pp, 1), OS_OK, "%s", os_last_error());
    if (!real_net) {
        c->cluster.intra_lat = c->cluster.inter_lat = c->cluster.base_lat = c->cluster.nvls_lat = 0.0;
        c->cluster.intra_bw = c->cluster.inter_bw = 1e30;
    }
    c->optimizer = 0;
    c->grad_clip = 0;
    c->overlap_slowdown = 0.0;
}

static Trace *text_trace(const char *name, uint32_t n, uint32_t text, uint32_t dp) {
    ThEx ex[64];
    cr_assert(n <= 64);
    for (uint32_t i = 0; i < n; i++) ex[i] = (ThEx){text + i, 0, 0, 0, 0};
    const char *path = th_write_trace(name, ex, n, dp, 1);
    cr_assert_not_null(path, "%s", os_last_error());
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    return t;
}

/* One micro-batch through two stages: nothing overlaps, so the step is stage 0's forward, stage
 * 1's forward, stage 1's backward, stage 0's backward — each the cost model's price of that
 * stage's slice (layer 0 with the embedding; layer 1 with the final norm and LM head). */
Test(parallel, one_micro_batch_is_the_sum_of_its_stages) {
    Trace *t = text_trace("pp-one.h5", 1, 300, 1);
    ReplayConfig c;
    config(&c, 2, 1, 2, 1, 2, 0);
    ReplaySummary sum;
    Sink sink = {0};
    cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
    CostModel cm = {.model = &g_model, .calib = &g_calib, .tp = 1, .cp = 1};
    uint32_t len = 300;
    CostSlice s0 = {.layers = 1, .embed = 1, .head = 0}, s1 = {.layers = 1, .embed = 0, .head = 1};
    PhaseCost a, b;
    cr_assert_eq(cost_phase_slice(&a, &cm, 2, &len, 1, &s0), OS_OK);
    cr_assert_eq(cost_phase_slice(&b, &cm, 2, &len, 1, &s1), OS_OK);
    SimTime want = sim_from_seconds(a.fwd_s) + sim_from_seconds(b.fwd_s) + sim_from_seconds(b.bwd_s) +
                   sim_from_seconds(a.bwd_s);
    cr_assert_eq(sink.n, 1);
    cr_assert_eq(sim_from_seconds(sink.r[0].step_s), want, "step %lld ns, stages %lld ns",
                 (long long)sim_from_seconds(sink.r[0].step_s), (long long)want);
    /* each stage idles while the other computes: the bubble is the other stage's time */
    double bubble = ((double)(sim_from_seconds(b.fwd_s) + sim_from_seconds(b.bwd_s)) +
                     (double)(sim_from_seconds(a.fwd_s) + sim_from_seconds(a.bwd_s))) / 2 * 1e-9;
    cr_assert_float_eq(sink.r[0].bubble_s, bubble, 1e-12, "bubble %g vs %g", sink.r[0].bubble_s, bubble);
    cr_assert_eq(sink.r[0].llm_tokens, 300u, "tokens counted once, not once per stage");
    cr_assert_eq(sum.mb_below_pp, 1u, "one micro-batch for two stages is flagged");
    trace_close(t);
}

/* Eight micro-batches over four stages: the interleaved schedule (2 chunks) idles less than
 * 1F1B; both compute every token once (replay_run checks it) and the same FLOPs. */
Test(parallel, interleaving_shrinks_the_bubble) {
    Trace *t = text_trace("pp-vp.h5", 8, 200, 1);
    double bubble[2], flops[2];
    for (int k = 0; k < 2; k++) {
        ReplayConfig c;
        config(&c, 4, 1, 4, k ? 2 : 1, 8, 0);
        c.micro_batch = 1;
        ReplaySummary sum;
        Sink sink = {0};
        cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
        cr_assert_eq(sink.r[0].micro_batches, 8u);
        cr_assert_eq(sum.mb_below_pp, 0u);
        bubble[k] = sink.r[0].bubble_s;
        flops[k] = sink.r[0].model_flops;
        cr_assert(bubble[k] > 0);
        cr_assert(sink.r[0].busy_s + sink.r[0].idle_s + sink.r[0].comm_s <= sink.r[0].step_s * (1 + 1e-12));
    }
    cr_assert(bubble[1] < bubble[0], "interleaved bubble %g, 1F1B %g", bubble[1], bubble[0]);
    cr_assert_float_eq(flops[0], flops[1], 1e-9 * flops[0]);
    trace_close(t);
}

/* TP 2 with sequence parallelism: per LLM layer an all-gather and a reduce-scatter before and
 * after attention and the MLP, forward and backward: 4 (AG + RS) of tokens x hidden x 2 bytes
 * per layer over the TP group. --tp-overlap can only hide part of it. */
Test(parallel, tp_collectives_priced_per_layer) {
    Trace *t = text_trace("tp.h5", 1, 512, 1);
    ReplayConfig c;
    config(&c, 2, 2, 1, 1, 2, 1);
    ReplaySummary sum;
    Sink sink = {0};
    cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
    Cluster tg = cluster_tp_group(&c.cluster);
    double bytes = 512.0 * g_model.llm.hidden * g_model.act_bytes;
    double want = 4 * (net_allgather(&tg, bytes) + net_reduce_scatter(&tg, bytes)) * g_model.llm.layers;
    cr_assert(want > 0);
    cr_assert_float_eq(sink.r[0].tp_comm_s, want, 1e-12 * want, "tp comm %g, by hand %g", sink.r[0].tp_comm_s, want);
    double exposed = sink.r[0].tp_comm_s;
    c.par.tp_overlap = 1;
    Sink s2 = {0};
    cr_assert_eq(replay_run(&sum, &c, t, keep, &s2), OS_OK, "%s", os_last_error());
    cr_assert(s2.r[0].tp_comm_s <= exposed && s2.r[0].tp_comm_s >= 0);
    cr_assert(s2.r[0].step_s <= sink.r[0].step_s);
    trace_close(t);
}

/* Memory per stage: stage 0 of a 2-stage 1F1B pipeline holds min(M, 2) = 2 micro-batches of its
 * layer. A GPU with room for one (even with recomputation) but not two is refused, with the
 * amounts. */
Test(parallel, stage_memory_refused_with_amounts) {
    Trace *t = text_trace("pp-mem.h5", 2, 1000, 1);
    ReplayConfig c;
    config(&c, 2, 1, 2, 1, 2, 0);
    c.micro_batch = 1;
    c.recompute = RECOMPUTE_FULL;
    Layout L = c.par;
    cr_assert_eq(layout_resolve(&L, 2, 8, &g_model), OS_OK, "%s", os_last_error());
    double state = (double)layout_vstage_params(&L, &g_model, 0) * 16.0; /* DDP: 16 B/param */
    double one = 1001.0 * 2.0 * g_model.llm.hidden;                     /* the floor: 2h bytes/token/layer */
    c.cluster.mem_bytes = state + 1.5 * one;
    ReplaySummary sum;
    os_clear_error();
    cr_assert_eq(replay_run(&sum, &c, t, NULL, NULL), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "pipeline stage 0"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "GB"), "%s", os_last_error());
    c.cluster.mem_bytes = state + 2.5 * one;
    os_clear_error();
    cr_assert_eq(replay_run(&sum, &c, t, NULL, NULL), OS_OK, "%s", os_last_error());
    trace_close(t);
}

/* ---- the command line ------------------------------------------------------------------ */

static char g_trace[1024];

static void make_trace(void) {
    ThEx ex[16];
    for (int i = 0; i < 16; i++) ex[i] = (ThEx){100u + 7u * (uint32_t)i, (uint32_t)(i % 2), 64, (uint32_t)(i % 3 == 0), 40};
    const char *p = th_write_trace("par-cli.h5", ex, 16, 2, 2);
    cr_assert_not_null(p, "%s", os_last_error());
    snprintf(g_trace, sizeof g_trace, "%s", p);
}

static void expect_error(const char *opts, const char *needle) {
    char args[4096], *out = NULL;
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --regroup %s", g_trace, opts);
    int rc = th_run(&out, args);
    cr_assert_neq(rc, 0, "%s: should fail\n%s", opts, out);
    cr_assert(strstr(out, needle), "%s: expected '%s' in:\n%s", opts, needle, out);
    free(out);
}

Test(parallel, bad_layouts_name_their_option) {
    make_trace();
    expect_error("--gpus 8 --parallel tp=3", "--parallel");                    /* does not divide */
    expect_error("--gpus 32 --parallel tp=16", "--allow-cross-node-tp");       /* TP across nodes */
    expect_error("--gpus 8 --parallel pp=4", "--parallel pp");                 /* 4 stages, 2 layers */
    expect_error("--gpus 8 --parallel pp=2 --pp-layout image=2", "--pp-layout"); /* no stage 2 */
    expect_error("--gpus 8 --parallel pp=2 --pp-layout video=0", "--pp-layout"); /* no such encoder */
    expect_error("--gpus 8 --parallel tp=2,qq=2", "--parallel");               /* unknown key */
    expect_error("--gpus 8 --tp 2 --parallel tp=4", "--tp");                   /* disagree */
}

Test(parallel, fewer_micro_batches_than_stages_is_warned) {
    make_trace();
    char args[4096], *out = NULL;
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --regroup --gpus 4 --parallel pp=2 --setup ddp", g_trace);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "fewer micro-batches than pipeline stages"), "%s", out);
    cr_assert(strstr(out, "pipeline     bubble"), "%s", out);
    cr_assert(strstr(out, "# layout: tp 1, pp 2"), "%s", out);
    free(out);
    /* FULL_SHARD with a pipeline is refused, naming --setup */
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --regroup --gpus 4 --parallel pp=2 --setup fsdp", g_trace);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(out, "--setup"), "%s", out);
    free(out);
}

/* The Megatron-LM baseline row: the smallest layout that fits (tp 1, pp 1 for a tiny model),
 * its own row in compare's table and CSV; a layout can be forced; bad baseline options are named. */
Test(parallel, compare_has_a_megatron_row) {
    make_trace();
    char args[4096], *out = NULL, csv[1024];
    snprintf(csv, sizeof csv, "%s", th_tmp("base.csv"));
    snprintf(args, sizeof args, "compare %s --model tiny --no-progress --gpus 8 --regroup --policies none,post --baseline megatron --csv %s",
             g_trace, csv);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "\nmegatron "), "%s", out);
    cr_assert(strstr(out, "baseline megatron: tp 1, pp 1"), "%s", out);
    cr_assert(strstr(out, "Throughput against it: none"), "%s", out);
    free(out);
    FILE *fp = fopen(csv, "r");
    cr_assert_not_null(fp);
    char line[8192];
    int rows = 0, mega = 0;
    int orc = 0;
    while (fgets(line, sizeof line, fp)) rows++, mega += strncmp(line, "megatron,", 9) == 0, orc += strncmp(line, "oracle,", 7) == 0;
    fclose(fp);
    cr_assert_eq(rows, 5, "header + none + post + megatron + the oracle row");
    cr_assert_eq(mega, 1);
    cr_assert_eq(orc, 1);
    snprintf(args, sizeof args, "compare %s --model tiny --no-progress --gpus 8 --regroup --policies none --baseline megatron --baseline-parallel tp=2,pp=2",
             g_trace);
    rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "tp 2 + sequence parallel, pp 2 (1F1B)"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "compare %s --model tiny --no-progress --gpus 8 --regroup --baseline megatron --baseline-parallel tp=3", g_trace);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "--baseline-parallel"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "compare %s --model tiny --no-progress --gpus 8 --regroup --baseline deepspeed", g_trace);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "--baseline"), "%s", out);
    free(out);
}

/* mb-kk: the count comes from the token budget (here 2 examples of ~300 tokens per 700), at
 * least the pipeline depth; every token is still computed once (replay_run checks it); it
 * needs the budget and refuses --micro-batch beside it. Against drawn order on a pipeline with
 * unequal micro-batches it never makes the step slower by more than the rounding of a cost. */
Test(parallel, mb_kk_micro_batches) {
    ThEx ex[12];
    for (uint32_t i = 0; i < 12; i++) ex[i] = (ThEx){i % 3 == 0 ? 600u : 100u + 10 * i, 0, 0, 0, 0};
    const char *path = th_write_trace("mbkk.h5", ex, 12, 1, 1);
    cr_assert_not_null(path, "%s", os_last_error());
    Trace *t;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    ReplayConfig c;
    config(&c, 2, 1, 2, 1, 2, 0);
    c.mb_policy = MBP_KK;
    c.micro_batch_tokens = 700;
    ReplaySummary sum;
    Sink sink = {0};
    cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
    uint32_t total = 0;
    for (uint32_t i = 0; i < 12; i++) total += ex[i].text;
    cr_assert_eq(sink.r[0].llm_tokens, total);
    cr_assert_geq(sink.r[0].micro_batches, (total + 699) / 700, "at least the budget's count");
    cr_assert_geq(sink.r[0].micro_batches, 2u, "at least the pipeline depth");
    c.micro_batch_tokens = 0;
    os_clear_error();
    cr_assert_eq(replay_run(&sum, &c, t, NULL, NULL), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "--micro-batch-tokens"), "%s", os_last_error());
    c.micro_batch_tokens = 700, c.micro_batch = 2;
    os_clear_error();
    cr_assert_eq(replay_run(&sum, &c, t, NULL, NULL), OS_ERR_ARG);
    trace_close(t);
}

/* The calibration table and a model file are inputs: an output aimed at one is refused before
 * any work; a table with an absurd rate is refused naming its line. */
Test(parallel, calibration_is_an_input_and_its_rates_are_checked) {
    make_trace();
    char cal[1024], bad[1024], args[4096], *out = NULL;
    snprintf(cal, sizeof cal, "%s", th_tmp("in.calib"));
    snprintf(bad, sizeof bad, "%s", th_tmp("bad.calib"));
    snprintf(args, sizeof args, "calibrate --default -o %s", cal);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --regroup --gpus 2 --calibration %s --csv %s", g_trace, cal, cal);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(out, "input"), "%s", out);
    free(out);
    /* the same table with one GEMM rate of 1e-300 FLOP/s */
    FILE *in = fopen(cal, "r"), *wr = fopen(bad, "w");
    cr_assert(in && wr);
    char line[512];
    int done = 0;
    while (fgets(line, sizeof line, in)) {
        if (!done && !strncmp(line, "gemm ", 5)) {
            fputs("gemm 256 256 256 1e-300\n", wr);
            done = 1;
        } else fputs(line, wr);
    }
    fclose(in);
    fclose(wr);
    cr_assert(done);
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --regroup --gpus 2 --calibration %s", g_trace, bad);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(out, "line"), "%s", out);
    free(out);
}

/* The timeline's compute spans carry their tokens and model FLOPs as Perfetto args: the LLM's
 * forward spans of the recorded step add up to the step's LLM tokens; the FSDP collectives that
 * overlap the compute appear on each worker's comm-stream track. */
Test(parallel, timeline_spans_carry_tokens_and_an_overlap_track) {
    Trace *t = text_trace("tl-args.h5", 8, 150, 2);
    ReplayConfig c;
    config(&c, 2, 1, 1, 1, 2, 1);
    c.setup = SETUP_FSDP;
    c.micro_batch = 2;
    char json[1024];
    snprintf(json, sizeof json, "%s", th_tmp("tl-args.json"));
    c.timeline_path = json;
    ReplaySummary sum;
    Sink sink = {0};
    cr_assert_eq(replay_run(&sum, &c, t, keep, &sink), OS_OK, "%s", os_last_error());
    FILE *fp = fopen(json, "r");
    cr_assert_not_null(fp);
    char line[4096];
    double tokens = 0;
    int overlapped = 0, comm_tracks = 0;
    while (fgets(line, sizeof line, fp)) {
        const char *a = strstr(line, "\"tokens\":");
        /* every layer group of a pass runs all its tokens: count the first part's */
        if (strstr(line, "\"name\":\"llm fwd\"") && strstr(line, "\"part\":\"1/") && a) tokens += strtod(a + 9, NULL);
        overlapped += strstr(line, "\"overlapped\":true") != NULL;
        comm_tracks += strstr(line, "comm stream\"") != NULL;
    }
    fclose(fp);
    cr_assert_float_eq(tokens, (double)sink.r[0].llm_tokens, 1e-6, "%g vs %llu", tokens,
                       (unsigned long long)sink.r[0].llm_tokens);
    cr_assert(overlapped > 0, "no collective on a comm-stream track");
    cr_assert_eq(comm_tracks, 2, "one comm-stream track per worker");
    trace_close(t);
}

/* advise --baseline megatron: the advice says how the recommended policy compares with the row
 * a Megatron-LM user would run, and the CSV carries that row before the oracle's. */
Test(parallel, advise_sets_the_advice_beside_megatron) {
    make_trace();
    char args[4096], *out = NULL, csv[1024];
    snprintf(csv, sizeof csv, "%s", th_tmp("adv-base.csv"));
    snprintf(args, sizeof args, "advise %s --model tiny --no-progress --gpus 8 --regroup -p none,post --baseline megatron --csv %s",
             g_trace, csv);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "  megatron     tp 1, pp 1") && strstr(out, "x its throughput"), "%s", out);
    free(out);
    FILE *fp = fopen(csv, "r");
    cr_assert_not_null(fp);
    char line[8192], last[64] = "", prev[64] = "";
    while (fgets(line, sizeof line, fp)) {
        snprintf(prev, sizeof prev, "%s", last);
        snprintf(last, sizeof last, "%.20s", line);
    }
    fclose(fp);
    cr_assert(!strncmp(prev, "megatron,", 9) && !strncmp(last, "oracle,", 7), "%s / %s", prev, last);
    snprintf(args, sizeof args, "advise %s --model tiny --no-progress --gpus 8 --regroup --baseline-padded", g_trace);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "--baseline megatron"), "%s", out);
    free(out);
}
