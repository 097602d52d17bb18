/* test_program.c — the step program (sim/program.h) run directly, with hand-computed
 * durations: the collectives each training setup issues per micro-batch (FSDP FULL_SHARD
 * gathers for forward and backward, SHARD_GRAD_OP for forward only, DDP all-reduces only in
 * the last micro-batch), the optimizer op, and the compute slowdown beside a running
 * collective, to the nanosecond. */
#include <criterion/criterion.h>
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
