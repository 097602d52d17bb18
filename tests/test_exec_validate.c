/* test_exec_validate.c — validate's arithmetic (exec/validate.h) and the executor's memory
 * plan (exec/memplan.h), on hand-computed cases: the emulated step composed along its
 * barriers, the signed error and MFU of a row, MAPE skipping steps without a number; the byte
 * layout of a tiny model's flat buffers and activation block; and the growth rule: under
 * --emulate GPU 0 holds every rank's WORST step, so the estimate is the sum over ranks of
 * each rank's worst step, larger than any single step's sum (issue 10, defect 6). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "exec/memplan.h"
#include "exec/plan.h"
#include "exec/validate.h"
#include "sim/policy.h"

/* D = 2, P = 2 (one encoder, then the LLM); rank-major [r*P + p]. */
static const double FWD[4] = {1, 2, 3, 1}, BWD[4] = {2, 4, 1, 2};
static const double COMM[4] = {0.5, 0.25, 0.125, 1};

Test(exec_validate, emulated_step_with_barriers_by_hand) {
    const int moves[2] = {1, 1};
    ExecEmuStep e = {2, 2, FWD, BWD, moves, COMM, NULL};
    double compute = 0, comm = 0;
    /* 0.5 | enc fwd: 1.5, 3.5 | 3.5 + .25 | llm: 9.75, 6.75 | 9.75 + .125 | enc bwd: 11.875,
     * 10.875 | sync: 11.875 + 1 */
    cr_assert_float_eq(exec_emu_step(&e, &compute, &comm), 12.875, 1e-12);
    cr_assert_float_eq(compute, 9.0, 1e-12); /* rank 0: 1 + 2 + 4 + 2 */
    cr_assert_float_eq(comm, 1.875, 1e-12);
}

Test(exec_validate, emulated_step_without_moves_waits_only_for_the_sync) {
    const int moves[2] = {0, 0};
    ExecEmuStep e = {2, 2, FWD, BWD, moves, COMM, NULL};
    double compute = 0, comm = 0;
    cr_assert_float_eq(exec_emu_step(&e, &compute, &comm), 10.0, 1e-12); /* max(9, 7) + 1 */
    cr_assert_float_eq(compute, 9.0, 1e-12);
    cr_assert_float_eq(comm, 1.0, 1e-12);
}

Test(exec_validate, emulated_step_is_at_least_compute_plus_sync) {
    /* invariant on arbitrary values: composed >= slowest rank's compute + the sync */
    double f[12], b[12];
    const int moves[3] = {1, 0, 1};
    const double comm[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    for (int i = 0; i < 12; i++) f[i] = (i * 7 % 5) + 0.5, b[i] = (i * 3 % 4) + 0.25;
    ExecEmuStep e = {4, 3, f, b, moves, comm, NULL};
    double compute, c;
    double t = exec_emu_step(&e, &compute, &c);
    cr_assert(t >= compute + 0.6 - 1e-12);
    cr_assert(t <= compute * 4 + c + 1e-12);
}

Test(exec_validate, row_error_and_mfu_by_hand) {
    ExecValRow r = {.step = 3, .measured_s = 2.0, .emulated_s = NAN, .predicted_s = 2.5};
    exec_val_row_finish(&r, 4e15, 2, 1e15);
    cr_assert_float_eq(r.error_frac, 0.25, 1e-12);
    cr_assert_float_eq(r.mfu, 1.0, 1e-12); /* 4e15 / (2 s * 2 GPUs * 1e15) */
    ExecValRow e = {.step = 4, .measured_s = NAN, .emulated_s = 4.0, .predicted_s = 3.0};
    exec_val_row_finish(&e, 4e15, 2, 1e15);
    cr_assert_float_eq(e.error_frac, -0.25, 1e-12);
    cr_assert_float_eq(e.mfu, 0.5, 1e-12);
    ExecValRow none = {.step = 5, .measured_s = NAN, .emulated_s = NAN, .predicted_s = 3.0};
    exec_val_row_finish(&none, 4e15, 2, 1e15);
    cr_assert(isnan(none.error_frac) && isnan(none.mfu));
    ExecValRow rows[3] = {r, e, none};
    cr_assert_float_eq(exec_val_mape(rows, 3), 0.25, 1e-12);
    cr_assert(isnan(exec_val_mape(rows + 2, 1)));
}

Test(exec_validate, memory_layout_of_a_tiny_model_by_hand) {
    ModelSpec m = {0};
    m.llm = (StackSpec){.layers = 1, .hidden = 4, .ffn = 8, .heads = 2, .kv_heads = 1, .vocab = 10,
                        .gated_mlp = 0, .causal = 1};
    /* params: norms 4 + 4, qkv (2 + 2) * 2 rows x 4 = 32, O 16, up 32, down 32 -> 120 a layer,
     * + final norm 4 + embedding 40 + LM head 40 = 204 */
    cr_assert_eq(model_params(&m), 204);
    ExecMemModel mm;
    exec_mem_model(&mm, &m, 3, EXEC_ATTN_FUSED);
    /* one module, 128-element aligned (256), padded to D = 3 (258) */
    cr_assert_eq(mm.total, 258);
    cr_assert_eq(mm.fused[0], 0, "head dim 2 is below the fused kernel's 8: the cuBLAS twin");
    /* activations of 3 rows, every array its own 256-byte slot: x (2 x 3 x 4 x 2 = 48), n1,
     * att, xm, n2 (24 each), qkv (3 x 8 x 2), u, h (3 x 8 x 2), r1, r2 (12), out (24), rf (12) */
    ExecActsLayout a;
    exec_acts_layout(&a, &mm.L[0], 3, 0);
    cr_assert_eq(a.x, 0);
    cr_assert_eq(a.n1, 256);
    cr_assert_eq(a.rf, 11 * 256);
    cr_assert_eq(a.total, 12 * 256, "12 arrays and an empty LSE: %zu", a.total);
    exec_acts_layout(&a, &mm.L[0], 3, 1);
    cr_assert_eq(a.total, 13 * 256, "with the LSE (1 layer x 2 heads x 3 rows fp32)");
    /* the scratch of the cuBLAS twin grows with the longest sequence squared */
    ExecScratchLayout s1, s2;
    exec_scratch_layout(&s1, &mm, 3, 3);
    exec_scratch_layout(&s2, &mm, 3, 30);
    cr_assert_eq(s2.total - s1.total, 2 * (exec_mem_al(900 * 4) - exec_mem_al(9 * 4)) +
                                          2 * (exec_mem_al(900 * 2) - exec_mem_al(9 * 2)));
    /* the fused path keeps no n x n matrix */
    ModelSpec f = m;
    f.llm.hidden = 32, f.llm.heads = 2, f.llm.kv_heads = 1, f.llm.ffn = 64; /* head dim 16 */
    exec_mem_model(&mm, &f, 1, EXEC_ATTN_FUSED);
    cr_assert_eq(mm.fused[0], 1);
    exec_scratch_layout(&s1, &mm, 3, 3);
    exec_scratch_layout(&s2, &mm, 3, 3000);
    cr_assert_eq(s1.total, s2.total, "fused attention: scratch does not depend on the sequence length");
}

/* Two ranks, text only, 4 examples: rank 0 drew the long ones in step A, rank 1 in step B. */
typedef struct {
    uint32_t drawn[4], tok[4];
    double cost[4];
    uint64_t bytes[4];
    PolicyOptions po;
    StepWork w;
} TwoRanks;

static void two_ranks(TwoRanks *t, const uint32_t *len) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 4; i++) t->drawn[i] = (uint32_t)i / 2, t->tok[i] = len[i], t->cost[i] = len[i], t->bytes[i] = 4ull * len[i];
    t->po = (PolicyOptions){.objective = OBJ_COST, .seed = 1};
    t->w = (StepWork){.D = 2, .P = 3, .N = 4, .M = 0, .dp_per_node = 2, .drawn = t->drawn, .ex_cost = t->cost,
                      .ex_tokens = t->tok, .ex_bytes = t->bytes, .opt = &t->po};
}

static void track_step(ExecMemTrack *mt, const ModelSpec *m, const uint32_t *len, ExecMemCount *one) {
    TwoRanks t;
    uint32_t home[4], exr[4], itr[1];
    Plan p = {.home = home, .ex_rank = exr, .it_rank = itr};
    PolicyScratch *ps = NULL;
    ExecStepPlan sp;
    uint64_t id[4] = {1, 2, 3, 4};
    two_ranks(&t, len);
    cr_assert_eq(policy_scratch_create(&ps), OS_OK);
    cr_assert_eq(policy_find("none")->fn(&p, &t.w, ps), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_step_plan_build(&sp, &p, &t.w, m), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_mem_track_step(mt, m, &sp, id), OS_OK, "%s", os_last_error());
    if (one) { /* this step alone, on a fresh tracker */
        ExecMemTrack fresh;
        cr_assert_eq(exec_mem_track_init(&fresh, m, 2, 1, 0, EXEC_ATTN_FUSED), OS_OK);
        cr_assert_eq(exec_mem_track_step(&fresh, m, &sp, id), OS_OK);
        exec_mem_track_count(&fresh, one);
        exec_mem_track_free(&fresh);
    }
    exec_step_plan_free(&sp);
    policy_scratch_destroy(ps);
}

Test(exec_validate, emulate_memory_is_the_sum_of_each_ranks_worst_step) {
    const ModelSpec *m = model_preset_find("tiny");
    cr_assert_not_null(m);
    const uint32_t a[4] = {300, 300, 5, 5}, b[4] = {5, 5, 300, 300};
    ExecMemTrack mt;
    ExecMemCount one_a, one_b, both;
    cr_assert_eq(exec_mem_track_init(&mt, m, 2, 1, 0, EXEC_ATTN_FUSED), OS_OK);
    track_step(&mt, m, a, &one_a);
    track_step(&mt, m, b, &one_b);
    exec_mem_track_count(&mt, &both);
    cr_assert_float_eq(one_a.total, one_b.total, 1e-9, "the two steps are mirror images");
    /* rank 0 keeps step A's block, rank 1 step B's: both long blocks are held at once */
    cr_assert(both.activations > one_a.activations * 1.5, "held %.0f vs one step %.0f", both.activations,
              one_a.activations);
    cr_assert(both.total > one_a.total, "held %.0f vs one step %.0f", both.total, one_a.total);
    /* and exactly: each rank's own worst, summed */
    ExecMemTrack r0, r1;
    ExecMemCount c0, c1;
    cr_assert_eq(exec_mem_track_init(&r0, m, 2, 0, 0, EXEC_ATTN_FUSED), OS_OK);
    cr_assert_eq(exec_mem_track_init(&r1, m, 2, 0, 1, EXEC_ATTN_FUSED), OS_OK);
    track_step(&r0, m, a, NULL), track_step(&r0, m, b, NULL);
    track_step(&r1, m, a, NULL), track_step(&r1, m, b, NULL);
    exec_mem_track_count(&r0, &c0), exec_mem_track_count(&r1, &c1);
    cr_assert_float_eq(both.activations, c0.activations + c1.activations, 1e-9);
    cr_assert_float_eq(both.index, c0.index + c1.index, 1e-9);
    exec_mem_track_free(&r0), exec_mem_track_free(&r1), exec_mem_track_free(&mt);
}
