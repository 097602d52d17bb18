/* test_exec_tol.c — exec/tol.h, the comparison every GPU self-test (tests/test_exec_gpu.c)
 * makes: hand-computed ratios, exact matches at atol = 0 (the copy kernels' untouched zero
 * rows), and NaN/infinity anywhere in the GPU's output as a failure that survives fmax(). */
#include <criterion/criterion.h>
#include <math.h>

#include "exec/tol.h"

Test(exec_tol, hand_computed_worst_ratio) {
    const float got[3] = {1.0f, 2.5f, -1.0f};
    const double ref[3] = {1.0, 2.0, -1.5};
    /* |0.5| / (0.1 + 0.2 * 2) = 1.0 and |0.5| / (0.1 + 0.2 * 1.5) = 1.25 */
    cr_assert_float_eq(exec_worst(got, ref, 3, 0.1, 0.2), 1.25, 1e-12);
    cr_assert_float_eq(exec_worst(got, ref, 1, 0.1, 0.2), 0.0, 0);
    cr_assert_float_eq(exec_worst(got, ref, 0, 0.1, 0.2), 0.0, 0);
}

Test(exec_tol, exact_zero_rows_pass_with_zero_atol) {
    /* rows.cu / step.cu compare copies with atol 0: 0 vs 0 was 0/0 = NaN before */
    const float got[4] = {0.0f, 0.5f, 0.0f, -0.25f};
    const double ref[4] = {0.0, 0.5, 0.0, -0.25};
    cr_assert_eq(exec_worst(got, ref, 4, 0, 1e-12), 0.0);
}

Test(exec_tol, nonzero_where_zero_expected_fails_with_zero_atol) {
    const float got[2] = {0.0f, 1e-30f};
    const double ref[2] = {0.0, 0.0};
    cr_assert(isinf(exec_worst(got, ref, 2, 0, 1e-12)));
}

Test(exec_tol, nan_or_inf_anywhere_fails_and_survives_fmax) {
    const double ref[4] = {1, 1, 1, 1};
    for (int at = 0; at < 4; at++) {
        float got[4] = {1, 1, 1, 1};
        got[at] = NAN;
        double w = exec_worst(got, ref, 4, 1e-2, 1e-2);
        cr_assert(isinf(w) && w > 0, "NaN at %d gave %g", at, w);
        cr_assert(!(fmax(0.3, w) <= 1.0), "fmax dropped the failure (NaN at %d)", at);
        got[at] = INFINITY;
        cr_assert(isinf(exec_worst(got, ref, 4, 1e-2, 1e-2)), "inf at %d", at);
    }
    /* a NaN in the reference is a failure too, never a pass */
    const float ok[2] = {1, 1};
    const double bad[2] = {1, NAN};
    cr_assert(isinf(exec_worst(ok, bad, 2, 1e-2, 1e-2)));
}
