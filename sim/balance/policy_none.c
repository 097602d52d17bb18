/* policy_none.c — "none": every rank keeps the mini-batch it drew (Megatron-LM baseline).
 * Implements: balance_none. Does not: move anything. Source: DESIGN.md §4. */
#include "sim/balance/policy_internal.h"

OsStatus balance_none(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    (void)s;
    OS_CHECK(pol_validate(w, "none"));
    for (uint32_t i = 0; i < w->N; i++) out->home[i] = w->drawn[i];
    pol_pre_finish(out, w);
fail:
    return st;
}
