/* policy_post_enc.c — "post-enc": post-balance the encoder phases only; the LLM phase runs at
 *   the home rank, so every encoder output travels back home. This is what open frameworks
 *   that balance only the vision encoder do.
 * Implements: balance_post_enc. Does not: honor cap_llm_tokens (the LLM batch is as drawn).
 * Source: REFERENCE.md opening paragraph (greedy longest-first, min-heap, outputs go home). */
#include "sim/balance/policy_internal.h"

OsStatus balance_post_enc(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    uint32_t m = 0;
    OS_CHECK(pol_validate(w, "post-enc"));
    for (uint32_t i = 0; i < w->N; i++) out->home[i] = out->ex_rank[i] = w->drawn[i];
    for (uint32_t e = 0; e + 1 < w->P; e++) {
        double t0 = os_thread_cpu_now();
        OS_CHECK(pol_post_phase(out->it_rank, &m, w, e, s, "post-enc"));
        pol_phase_time(out, e, t0);
    }
    out->hierarchical = 0;
fail:
    return st;
}
