/* policy_kk.c — "kk": the loader assigns examples by Karmarkar-Karp largest differencing on
 *   the LLM-phase cost, as verl's sequence balancer does.
 * Implements: balance_kk. Does not: see the encoders; no equal-count constraint.
 * Source: DESIGN.md §4; REFERENCE.md "Karmarkar–Karp (verl)". */
#include "sim/balance/policy_internal.h"

OsStatus balance_kk(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    double mx = 0.0;
    OS_CHECK(pol_validate(w, "kk"));
    OS_CHECK(part_kk(out->home, &mx, w->ex_cost, w->N, w->D, s->ps));
    pol_pre_finish(out, w);
fail:
    return st;
}
