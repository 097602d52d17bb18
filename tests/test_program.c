/* test_program.c — the step program (sim/program.h) run directly, with hand-computed
 * durations: the collectives each training setup issues per micro-batch (FSDP FULL_SHARD
 * gathers for forward and backward, SHARD_GRAD_OP for forward only, DDP all-reduces only in
 * the last micro-batch), the optimizer op, and the compute slowdown beside a running
 * collective, to the nanosecond. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "sim/program.h"

static size_t count_colls(const Prog *p, const char *name) {
    size_t n = 0;
    for (size_t i = 0; i < p->n_colls; i++) n += !strcmp(p->colls[i].name, name);
    return n;
}

static Prog *make(int fsdp, uint32_t M, uint32_t G, SimTime coll, SimTime opt, double slow) {
    SimTime grad[2] = {coll, coll};
    ProgSpec s = {.D = 2, .P = 1, .M = M, .fsdp = fsdp, .group = G, .buckets = 4, .grad_coll_dur = grad,
                  .opt_dur = opt, .slowdown = slow};
    Prog *p = NULL;
    os_clear_error();
    cr_assert_eq(prog_create(&p, &s), OS_OK, "%s", os_last_error());
    return p;
}

/* One module of G groups, M micro-batches:
 *   FULL_SHARD: per micro-batch G all-gathers (forward) + G (backward) + G reduce-scatters;
 *   SHARD_GRAD_OP: G all-gathers + G reduce-scatters;
 *   DDP: 4 bucket all-reduces, in the last micro-batch only. */
Test(program, collectives_per_setup_and_micro_batch) {
    Prog *p = make(SHARD_FULL, 3, 5, 10, 0, 0);
    cr_assert_eq(count_colls(p, "allgather"), 3u * 10);
    cr_assert_eq(count_colls(p, "reduce-scatter"), 3u * 5);
    prog_destroy(p);
    p = make(SHARD_GRAD_OP, 3, 5, 10, 0, 0);
    cr_assert_eq(count_colls(p, "allgather"), 3u * 5);
    cr_assert_eq(count_colls(p, "reduce-scatter"), 3u * 5);
    prog_destroy(p);
    p = make(SHARD_DDP, 3, 5, 10, 0, 0);
    cr_assert_eq(count_colls(p, "allreduce"), 4u);
    cr_assert_eq(count_colls(p, "allgather"), 0u);
    prog_destroy(p);
}

static SimTime run(Prog *p, const SimTime *dur) {
    Engine *e = NULL;
    cr_assert_eq(engine_create(&e, ENGINE_HEAP, 64), OS_OK);
    SimTime end = 0;
    os_clear_error();
    cr_assert_eq(prog_run_step(p, e, 0, dur, 0, 0, &end), OS_OK, "%s", os_last_error());
    for (uint32_t r = 0; r < p->D; r++) {
        const RankRun *rr = &p->ranks[r];
        cr_assert_eq(rr->busy + rr->idle + rr->comm, end, "rank %u: busy + idle + comm != step", r);
    }
    engine_destroy(e);
    return end;
}

/* DDP, 2 micro-batches, free collectives: the step is the sum of both micro-batches' passes
 * plus the optimizer (ns). dur[((r * P + p) * M + k) * 2 + pass]. */
Test(program, micro_batches_and_optimizer_add_up) {
    Prog *p = make(SHARD_DDP, 2, 1, 0, 777, 0);
    SimTime dur[2 * 1 * 2 * 2] = {100, 200, 30, 60, 100, 200, 30, 60};
    cr_assert_eq(run(p, dur), 100 + 200 + 30 + 60 + 777);
    prog_destroy(p);
}

/* FSDP FULL_SHARD, one micro-batch, 2 groups, every collective a ns each: forward issues
 * AG0 and AG1 at 0; AG0 runs [0, a), AG1 [a, 2a); group 0's forward (work W) starts at a and
 * runs beside AG1 for a ns at (1 - s): it ends at a + W + a s, its stretch is a s exactly. */
Test(program, compute_slows_while_a_collective_runs) {
    const SimTime a = 1000, W = 4000; /* forward of 2W split in two parts of W */
    SimTime dur[2 * 1 * 1 * 2] = {2 * W, 0, 2 * W, 0};
    Prog *p = make(SHARD_FULL, 1, 2, a, 0, 0.25);
    Engine *e = NULL;
    cr_assert_eq(engine_create(&e, ENGINE_HEAP, 64), OS_OK);
    SimTime end = 0;
    cr_assert_eq(prog_run_step(p, e, 0, dur, 0, 0, &end), OS_OK, "%s", os_last_error());
    /* the forward's first part is the only compute beside a collective: in backward (no work)
     * the re-gathers and reduce-scatters run with nothing to slow */
    cr_assert_eq(p->ranks[0].slowed, a / 4, "slowed %lld", (long long)p->ranks[0].slowed);
    cr_assert_eq(p->ranks[1].slowed, a / 4);
    cr_assert_eq(p->ranks[0].busy, 2 * W + a / 4);
    engine_destroy(e);
    prog_destroy(p);
    /* without the slowdown the same program takes exactly a / 4 less */
    Prog *q = make(SHARD_FULL, 1, 2, a, 0, 0);
    SimTime fast = run(q, dur);
    prog_destroy(q);
    cr_assert_eq(end - fast, a / 4);
}

/* The per-stage work clock against its reference twin (every in-flight op re-timed at every
 * rate change): FSDP on 64 ranks and DDP on 16, uneven per-rank durations that keep ops in
 * flight across many collective starts and ends, a 0.189 slowdown. Every rank's end, busy,
 * idle, comm and slowed time must agree (to the ns: they round the same way), on both setups
 * and over several seeds. */
Test(program, work_clock_matches_the_reference_twin) {
    const int setups[2] = {SHARD_FULL, SHARD_DDP};
    const uint32_t Ds[2] = {64, 16};
    for (int si = 0; si < 2; si++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            uint32_t D = Ds[si], P = 2, M = 3;
            SimTime grad[2] = {1500 + 100 * (SimTime)seed, 900};
            ProgSpec sp = {.D = D, .P = P, .M = M, .fsdp = setups[si], .group = 4, .buckets = 3,
                           .grad_coll_dur = grad, .clip_dur = 50, .opt_dur = 400, .slowdown = 0.189};
            Prog *a = NULL, *b = NULL;
            os_clear_error();
            cr_assert_eq(prog_create(&a, &sp), OS_OK, "%s", os_last_error());
            cr_assert_eq(prog_create(&b, &sp), OS_OK, "%s", os_last_error());
            prog_set_reference(b, 1);
            size_t n = (size_t)D * P * M * 2;
            SimTime *dur = malloc(n * sizeof *dur);
            cr_assert_not_null(dur);
            uint64_t x = seed * 0x9E3779B97F4A7C15ull;
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                dur[i] = 1000 + (SimTime)(x % 9000);
            }
            Engine *e = NULL, *f = NULL;
            cr_assert_eq(engine_create(&e, ENGINE_HEAP, 64), OS_OK);
            cr_assert_eq(engine_create(&f, ENGINE_HEAP, 64), OS_OK);
            SimTime ea = 0, eb = 0;
            cr_assert_eq(prog_run_step(a, e, 0, dur, 0, 0, &ea), OS_OK, "%s", os_last_error());
            cr_assert_eq(prog_run_step(b, f, 0, dur, 0, 0, &eb), OS_OK, "%s", os_last_error());
            cr_assert_eq(ea, eb, "setup %d seed %llu: %lld vs %lld", setups[si], (unsigned long long)seed,
                         (long long)ea, (long long)eb);
            SimTime slowed = 0;
            for (uint32_t r = 0; r < a->W; r++) {
                const RankRun *ra = &a->ranks[r], *rb = &b->ranks[r];
                cr_assert_eq(ra->t, rb->t, "rank %u", r);
                cr_assert_eq(ra->busy, rb->busy, "rank %u", r);
                cr_assert_eq(ra->idle, rb->idle, "rank %u", r);
                cr_assert_eq(ra->comm, rb->comm, "rank %u", r);
                cr_assert_eq(ra->slowed, rb->slowed, "rank %u", r);
                slowed += ra->slowed;
            }
            cr_assert_gt(slowed, 0, "the case never slowed anything: it would prove nothing");
            engine_destroy(e);
            engine_destroy(f);
            free(dur);
            prog_destroy(a);
            prog_destroy(b);
        }
}

Test(program, bad_shapes_are_refused) {
    SimTime grad[1] = {0};
    ProgSpec s = {.D = 1, .P = 1, .M = PROG_MAX_MB + 1, .fsdp = SHARD_FULL, .group = 1, .grad_coll_dur = grad};
    Prog *p = NULL;
    os_clear_error();
    cr_assert_eq(prog_create(&p, &s), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "program"), "%s", os_last_error());
    s.M = 1;
    s.slowdown = 1.0;
    cr_assert_eq(prog_create(&p, &s), OS_ERR_ARG);
    s.slowdown = 0;
    s.group = 0;
    cr_assert_eq(prog_create(&p, &s), OS_ERR_ARG);
    cr_assert_null(p);
}

/* ---- pipelines --------------------------------------------------------------------------- */

/* D replicas, one phase (the LLM), S stages x V chunks, M micro-batches; every (stage, chunk,
 * micro-batch) takes f forward and b backward; transfers take x; no gradient sync, optimizer or
 * clip. Returns the step time; the durations array is freed. */
static SimTime run_pipe(uint32_t D, uint32_t S, uint32_t V, uint32_t M, SimTime f, SimTime b, SimTime x,
                        Prog **out) {
    uint8_t on[64];
    for (uint32_t v = 0; v < S * V; v++) on[v] = 1;
    SimTime grad[1] = {0}, sgrad[16] = {0};
    ProgSpec s = {.D = D, .P = 1, .M = M, .S = S, .V = V, .on_vstage = on, .fsdp = SHARD_DDP, .buckets = 1,
                  .grad_coll_dur = grad, .stage_grad_dur = sgrad};
    Prog *p = NULL;
    os_clear_error();
    cr_assert_eq(prog_create(&p, &s), OS_OK, "%s", os_last_error());
    size_t n = (size_t)p->W * M * V * 2;
    SimTime *dur = malloc(n * sizeof *dur);
    for (size_t i = 0; i < n; i++) dur[i] = i % 2 ? b : f;
    for (size_t i = 0; i < p->n_xfers; i++) p->xfers[i].dur = x;
    Engine *e = NULL;
    cr_assert_eq(engine_create(&e, ENGINE_HEAP, 64), OS_OK);
    SimTime end = 0;
    os_clear_error();
    cr_assert_eq(prog_run_step(p, e, 0, dur, 0, 0, &end), OS_OK, "%s", os_last_error());
    for (uint32_t w = 0; w < p->W; w++) {
        const RankRun *rr = &p->ranks[w];
        cr_assert_eq(rr->busy + rr->idle + rr->comm, rr->t, "worker %u: busy + idle + comm != its end", w);
        cr_assert_eq(rr->busy, (SimTime)M * V * (f + b), "worker %u computes every (micro-batch, chunk)", w);
    }
    engine_destroy(e);
    free(dur);
    *out = p;
    return end;
}

/* 1F1B (Narayanan et al. 2021 §2.2.1): the step takes (M + S - 1)(f + b); every stage idles the
 * bubble (S - 1)(f + b), a fraction (S - 1) / (M + S - 1) of the step. */
Test(program, one_f_one_b_bubble) {
    const uint32_t cases[][3] = {{4, 8, 1}, {4, 4, 2}, {8, 32, 1}, {2, 1, 3}, {3, 7, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t S = cases[c][0], M = cases[c][1], D = cases[c][2];
        Prog *p = NULL;
        SimTime f = 1000, b = 2000;
        SimTime end = run_pipe(D, S, 1, M, f, b, 0, &p);
        cr_assert_eq(end, (SimTime)(M + S - 1) * (f + b), "S=%u M=%u: %lld", S, M, (long long)end);
        for (uint32_t w = 0; w < p->W; w++) {
            double bubble = (double)p->ranks[w].idle / (double)end;
            cr_assert_float_eq(bubble, (double)(S - 1) / (M + S - 1), 1e-9, "S=%u M=%u worker %u", S, M, w);
        }
        prog_destroy(p);
    }
}

/* Interleaved 1F1B with V chunks of 1/V of the work: the bubble shrinks V-fold,
 * step = M (f + b) + (S - 1)(f + b) / V (Narayanan et al. 2021 §2.2.2). */
Test(program, interleaved_bubble) {
    const uint32_t cases[][3] = {{4, 8, 2}, {4, 4, 2}, {2, 8, 4}, {4, 16, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t S = cases[c][0], M = cases[c][1], V = cases[c][2];
        Prog *p = NULL;
        SimTime f = 1000 * 4, b = 2000 * 4; /* whole-model times; a chunk takes 1/V */
        SimTime end = run_pipe(1, S, V, M, f / V, b / V, 0, &p);
        SimTime want = (SimTime)M * (f + b) + (SimTime)(S - 1) * (f + b) / V;
        cr_assert_eq(end, want, "S=%u M=%u V=%u: %lld, want %lld", S, M, V, (long long)end, (long long)want);
        prog_destroy(p);
    }
}

/* Transfers: with 1F1B and a transfer of x each way the first forward reaches the last stage
 * (S - 1)(f + x) after the start, and the critical path crosses 2 (S - 1) transfers; the
 * waiting splits into bubble (idle) and transfer (comm), each worker's adding up. */
Test(program, pipeline_transfers_on_the_critical_path) {
    Prog *p = NULL;
    SimTime f = 1000, b = 2000, x = 100;
    uint32_t S = 4, M = 8;
    SimTime end = run_pipe(2, S, 1, M, f, b, x, &p);
    cr_assert(end >= (SimTime)(M + S - 1) * (f + b) + 2 * (S - 1) * x, "%lld", (long long)end);
    SimTime comm = 0;
    for (uint32_t w = 0; w < p->W; w++) comm += p->ranks[w].comm;
    cr_assert(comm > 0);
    prog_destroy(p);
}

/* Refusals, each naming why: FULL_SHARD with a pipeline, an interleaved schedule whose
 * micro-batch count is not a multiple of pp, a pipeline without its placement. */
Test(program, pipeline_refusals) {
    uint8_t on[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    SimTime grad[1] = {0};
    ProgSpec s = {.D = 2, .P = 1, .M = 6, .S = 4, .V = 2, .on_vstage = on, .fsdp = SHARD_DDP, .buckets = 1,
                  .grad_coll_dur = grad};
    Prog *p = NULL;
    os_clear_error();
    cr_assert_eq(prog_create(&p, &s), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "multiple of pp"), "%s", os_last_error());
    s.M = 8;
    s.fsdp = SHARD_FULL;
    os_clear_error(); /* the record keeps the first error */
    cr_assert_eq(prog_create(&p, &s), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "FULL_SHARD"), "%s", os_last_error());
    s.fsdp = SHARD_DDP;
    s.on_vstage = NULL;
    cr_assert_eq(prog_create(&p, &s), OS_ERR_ARG);
    s.on_vstage = on;
    cr_assert_eq(prog_create(&p, &s), OS_OK, "%s", os_last_error());
    prog_destroy(p);
}

/* Durations that would wrap the clock (an absurd rate or bandwidth upstream) stop the step
 * with OS_ERR_RANGE naming the op, not wrapped times. */
Test(program, absurd_durations_are_refused_not_wrapped) {
    SimTime grad[1] = {0};
    ProgSpec s = {.D = 1, .P = 1, .M = 2, .fsdp = SHARD_DDP, .buckets = 1, .grad_coll_dur = grad};
    Prog *p = NULL;
    cr_assert_eq(prog_create(&p, &s), OS_OK, "%s", os_last_error());
    SimTime dur[4] = {INT64_MAX / 5, INT64_MAX / 5, INT64_MAX / 5, INT64_MAX / 5};
    Engine *e = NULL;
    cr_assert_eq(engine_create(&e, ENGINE_HEAP, 64), OS_OK);
    SimTime end = 0;
    os_clear_error();
    cr_assert_eq(prog_run_step(p, e, 0, dur, 0, 0, &end), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "fwd") || strstr(os_last_error(), "bwd"), "%s", os_last_error());
    engine_destroy(e);
    prog_destroy(p);
}
