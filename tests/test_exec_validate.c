/* test_exec_validate.c — validate's arithmetic (exec/validate.h) and the executor's memory
 * estimate (exec/budget.h), on hand-computed cases: the emulated step composed along its
 * barriers, the signed error and MFU of a row, MAPE skipping steps without a number, and the
 * byte count of a tiny model. */
#include <criterion/criterion.h>
#include <math.h>

#include "exec/budget.h"
#include "exec/validate.h"

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

Test(exec_validate, budget_of_a_tiny_model_by_hand) {
    ModelSpec m = {0};
    m.llm = (StackSpec){.layers = 1, .hidden = 4, .ffn = 8, .heads = 2, .kv_heads = 1, .vocab = 10,
                        .gated_mlp = 0, .causal = 1};
    /* params: norms 4 + 4, qkv (2 + 2) * 2 rows x 4 = 32, O 16, up 32, down 32 -> 120 a layer,
     * + final norm 4 + embedding 40 + LM head 40 = 204 */
    cr_assert_eq(model_params(&m), 204);
    ExecBudget b;
    exec_budget(&b, &m, 3, NULL, 3, NULL);
    cr_assert_float_eq(b.weights, 408, 1e-9);
    cr_assert_float_eq(b.grads, 816, 1e-9);
    /* kept per token per layer: 4 H + qkv 8 + att 4 + up 8 + act 8 = 44; (44 + H) * 3 rows * 2 B */
    cr_assert_float_eq(b.activations, 288, 1e-9);
    /* attention 3^2 * 2 heads * 10 B = 180; logits 3 * 10 * 6 = 180; 2 grad rows: 3 * 8 * 4 = 96 */
    cr_assert_float_eq(b.scratch, 456, 1e-9);
    cr_assert_float_eq(b.total, 1968, 1e-9);
}
