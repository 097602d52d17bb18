/* policy_post.c — "post": OrchMLLM Batch Post-Balancing. Ranks keep what they drew; before
 *   each encoder phase its items are rebalanced for that phase's cost, then the LLM phase's
 *   examples for theirs; bin b is rank b. Encoder outputs go straight to their example's LLM
 *   rank (direct routing), gradients retrace the moves in backward.
 * Implements: balance_post. Does not: try to keep data local (post-node does).
 * Source: DESIGN.md §4; OrchMLLM (arXiv 2503.23830) as summarised in REFERENCE.md. */
#include "sim/balance/policy_internal.h"

OsStatus balance_post(Plan *out, const StepWork *w, PolicyScratch *s) {
    OsStatus st = OS_OK;
    uint32_t m = 0;
    OS_CHECK(pol_validate(w, "post"));
    for (uint32_t i = 0; i < w->N; i++) out->home[i] = w->drawn[i];
    for (uint32_t e = 0; e + 1 < w->P; e++) {
        double t0 = os_thread_cpu_now();
        OS_CHECK(pol_post_phase(out->it_rank, &m, w, e, s, "post"));
        pol_phase_time(out, e, t0);
    }
    double t0 = os_thread_cpu_now();
    OS_CHECK(pol_post_llm(out->ex_rank, w, s, "post"));
    pol_phase_time(out, w->P - 1, t0);
    out->hierarchical = 0;
fail:
    return st;
}
