/* policy_sorted.c — "sorted": the loader sorts the global batch by LLM tokens (longest first)
 *   and deals it round-robin, the length-grouping trick of LLaVA-style samplers.
 * Implements: balance_sorted. Does not: look at encoder cost or the quadratic term.
 * Source: DESIGN.md §4; REFERENCE.md "LLaVA split_to_even_chunks" (the length-grouped family). */
#include "sim/balance/policy_internal.h"

OsStatus balance_sorted(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    double mx = 0.0;
    OS_CHECK(pol_validate(w, "sorted"));
    OS_CHECK(POL_GROW(s->w, s->w_cap, w->N));
    for (uint32_t i = 0; i < w->N; i++) s->w[i] = (double)w->ex_tokens[i];
    OS_CHECK(part_sorted_rr(out->home, &mx, s->w, w->N, w->D, s->ps));
    pol_pre_finish(out, w);
fail:
    return st;
}
