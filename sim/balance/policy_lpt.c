/* policy_lpt.c — "lpt": the loader assigns examples by longest-processing-time greedy on
 *   the LLM-phase cost (a*S + c*S^2 from the cost model).
 * Implements: balance_lpt. Does not: see the encoders (their imbalance stays: that is the
 *   point of comparing with post). Source: DESIGN.md §4; REFERENCE.md "LLaVA
 *   split_to_even_chunks" (greedy to the shortest chunk, without the equal-count rule). */
#include "sim/balance/policy_internal.h"

OsStatus balance_lpt(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    double mx = 0.0;
    OS_CHECK(pol_validate(w, "lpt"));
    OS_CHECK(part_lpt(out->home, &mx, w->ex_cost, w->N, w->D, NULL, NULL, s->ps));
    pol_pre_finish(out, w);
fail:
    return st;
}
