/* tol.h — the comparison every GPU self-test makes against its CPU reference (STYLE.md
 * habit 6: |gpu - ref| <= atol + rtol |ref|), in plain C so that its corner cases are tested
 * on a machine without a device (tests/test_exec_tol.c).
 * Implements: the worst ratio |got - ref| / (atol + rtol |ref|) over n values (<= 1 passes),
 *   where an exact match counts 0 even with atol = 0 and ref = 0 (the copy kernels compare
 *   with atol 0: an untouched zero row must pass, not give 0/0), and any NaN or infinity in
 *   got makes the result INFINITY, which no fmax() of later checks can drop (fmax ignores a
 *   NaN operand, so returning NaN would turn a broken kernel into a pass).
 * Does not: decide pass/fail (tests/test_exec_gpu.c asserts worst <= 1).
 * Header-only (static inline): used by the .cu self-tests and by C tests alike. */
#ifndef OS_EXEC_TOL_H
#define OS_EXEC_TOL_H

#include <math.h>
#include <stddef.h>

static inline double exec_worst(const float *got, const double *ref, size_t n, double atol, double rtol) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double g = (double)got[i], diff = fabs(g - ref[i]);
        if (!isfinite(g) || isnan(diff)) return INFINITY;
        if (diff == 0) continue; /* exact: passes even at atol = 0, ref = 0 */
        double r = diff / (atol + rtol * fabs(ref[i])); /* +inf when the bound is 0 */
        if (r > w) w = r;
    }
    return w;
}

#endif
