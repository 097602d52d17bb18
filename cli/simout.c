/* simout.c — see simout.h. */
#include "cli/simout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "analysis/schema.h"

static int phase_of(uint32_t P, const char (*names)[32], const char *want) {
    for (uint32_t p = 0; p < P; p++)
        if (!strcmp(names[p], want)) return (int)p;
    return -1;
}

int simout_phase_index(const ReplaySummary *sum, const char *schema_phase) {
    return phase_of(sum->P, sum->phase_name, schema_phase);
}

void simout_step_csv_header(FILE *fp) { schema_write_header(fp, schema_find("step")); }

void simout_step_csv_row(FILE *fp, const char *policy, const StepResult *r, uint32_t P,
                         const char (*phase_name)[32]) {
    csv_put_str(fp, policy, 1);
    csv_put_u64(fp, r->step, 0);
    csv_put_u64(fp, r->n_examples, 0);
    csv_put_u64(fp, r->n_items, 0);
    csv_put_u64(fp, r->llm_tokens, 0);
    const double v[] = {r->step_s, r->busy_s, r->idle_s, r->comm_s, r->mfu, r->mfu_noattn, r->mfu_causal,
                        r->hfu, r->a2a_s, r->grad_sync_s, r->balancer_s};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) csv_put_f64(fp, v[i], 0);
    csv_put_u64(fp, r->bytes_intra, 0);
    csv_put_u64(fp, r->bytes_inter, 0);
    for (int k = 0; k < SCHEMA_N_PHASES; k++) {
        int p = phase_of(P, phase_name, SCHEMA_PHASES[k]);
        double x[5] = {NAN, NAN, NAN, NAN, NAN};
        if (p >= 0) {
            x[0] = r->phase_max_s[p];
            x[1] = r->phase_mean_s[p];
            x[2] = r->phase_oracle_s[p];
            x[3] = r->phase_imbalance[p];
            x[4] = r->phase_idle_frac[p];
        }
        for (int i = 0; i < 5; i++) csv_put_f64(fp, x[i], 0);
    }
    csv_end_row(fp);
}

void simout_step_json(FILE *fp, const char *policy, const StepResult *r, uint32_t P,
                      const char (*phase_name)[32]) {
    fprintf(fp, "{\"policy\":\"%s\",\"step\":%llu,\"n_examples\":%u,\"n_items\":%u,\"llm_tokens\":%llu,"
                "\"step_s\":%.9g,\"busy_s\":%.9g,\"idle_s\":%.9g,\"comm_s\":%.9g,\"mfu\":%.6g,\"mfu_noattn\":%.6g,"
                "\"mfu_causal\":%.6g,\"hfu\":%.6g,\"a2a_s\":%.9g,\"grad_sync_s\":%.9g,\"balancer_s\":%.9g,"
                "\"bytes_intra\":%llu,\"bytes_inter\":%llu,\"phases\":{",
            policy, (unsigned long long)r->step, r->n_examples, r->n_items, (unsigned long long)r->llm_tokens,
            r->step_s, r->busy_s, r->idle_s, r->comm_s, r->mfu, r->mfu_noattn, r->mfu_causal, r->hfu, r->a2a_s,
            r->grad_sync_s, r->balancer_s, (unsigned long long)r->bytes_intra, (unsigned long long)r->bytes_inter);
    for (uint32_t p = 0; p < P; p++)
        fprintf(fp, "%s\"%s\":{\"max_s\":%.9g,\"mean_s\":%.9g,\"oracle_s\":%.9g,\"imbalance\":%.6g,\"idle_frac\":%.6g}",
                p ? "," : "", phase_name[p], r->phase_max_s[p], r->phase_mean_s[p], r->phase_oracle_s[p],
                r->phase_imbalance[p], r->phase_idle_frac[p]);
    fprintf(fp, "}}");
}

void simout_loads_csv_header(FILE *fp) { schema_write_header(fp, schema_find("loads")); }
void simout_assign_csv_header(FILE *fp) { schema_write_header(fp, schema_find("assignment")); }

void simout_loads_csv_rows(FILE *fp, const char *policy, const StepResult *r, const char (*phase_name)[32],
                           uint32_t dp_per_node) {
    const StepWork *w = r->work;
    const Plan *pl = r->plan;
    /* units per (rank, phase), counted from the plan in one pass; the cost record has the
     * positions. A CSV writer outside the event loop: one small block per step. */
    uint32_t *units = calloc((size_t)r->D * r->P, sizeof *units);
    for (uint32_t i = 0; units && i < w->N; i++) units[(size_t)pl->ex_rank[i] * r->P + r->P - 1]++;
    for (uint32_t j = 0; units && j < w->M; j++) units[(size_t)pl->it_rank[j] * r->P + w->it_phase[j]]++;
    for (uint32_t rank = 0; rank < r->D; rank++)
        for (uint32_t p = 0; p < r->P; p++) {
            size_t k = (size_t)rank * r->P + p;
            const PhaseCost *c = &r->rank_phase[k];
            csv_put_str(fp, policy, 1);
            csv_put_u64(fp, r->step, 0);
            csv_put_u64(fp, rank, 0);
            csv_put_u64(fp, rank / (dp_per_node ? dp_per_node : 1), 0);
            csv_put_str(fp, phase_name[p], 0);
            if (units) csv_put_u64(fp, units[k], 0);
            else csv_put_f64(fp, NAN, 0); /* out of memory: the count is left empty, not wrong */
            csv_put_u64(fp, c->tokens, 0);
            csv_put_f64(fp, c->fwd_s, 0); /* one GPU's (the cost model prices the TP x CP slice) */
            csv_put_f64(fp, c->bwd_s, 0);
            csv_end_row(fp);
        }
    free(units);
}

void simout_assign_csv_rows(FILE *fp, const char *policy, const StepResult *r, const char (*phase_name)[32]) {
    const StepWork *w = r->work;
    const Plan *pl = r->plan;
    for (uint32_t i = 0; i < w->N + w->M; i++) {
        int item = i >= w->N;
        uint32_t j = i - w->N, ex = item ? w->it_example[j] : i;
        csv_put_str(fp, policy, 1);
        csv_put_u64(fp, r->step, 0);
        csv_put_str(fp, item ? "item" : "example", 0);
        csv_put_u64(fp, i, 0);
        csv_put_u64(fp, r->trace_step->examples[ex].id, 0);
        csv_put_str(fp, phase_name[item ? w->it_phase[j] : r->P - 1], 0);
        csv_put_u64(fp, item ? w->it_len[j] : w->ex_tokens[i], 0);
        csv_put_u64(fp, w->drawn[ex], 0);
        csv_put_u64(fp, pl->home[ex], 0);
        csv_put_u64(fp, item ? pl->it_rank[j] : pl->ex_rank[i], 0);
        csv_end_row(fp);
    }
}

void simout_summary(FILE *fp, const char *policy, const ReplaySummary *s) {
    fprintf(fp, "policy %s: %llu steps replayed\n", policy, (unsigned long long)s->steps);
    fprintf(fp, "  step time    mean %.4f s   p50 %.4f s   p99 %.4f s   (min %.4f, max %.4f)\n", s->step_mean_s,
            s->step_p50_s, s->step_p99_s, s->step_min_s, s->step_max_s);
    fprintf(fp, "  throughput   %.4g LLM tokens/s   %.4g samples/s\n", s->tokens_per_s, s->samples_per_s);
    fprintf(fp, "  MFU          %.1f%% (paper convention)   %.1f%% without attention   %.1f%% causal-aware   HFU %.1f%%\n",
            100 * s->mfu, 100 * s->mfu_noattn, 100 * s->mfu_causal, 100 * s->hfu);
    fprintf(fp, "  idle         %.1f%% of step time (mean over ranks and steps)\n", 100 * s->idle_frac);
    fprintf(fp, "  %-12s %-22s %s\n", "phase", "imbalance (max/mean)", "idle share of phase");
    for (uint32_t p = 0; p < s->P; p++)
        fprintf(fp, "  %-12s %-22.3f %.1f%%\n", s->phase_name[p], s->phase_imbalance[p], 100 * s->phase_idle_frac[p]);
    if (s->layout[0]) fprintf(fp, "  layout       %s\n", s->layout);
    if (s->tp_comm_s_per_step > 0 || s->cp_comm_s_per_step > 0)
        fprintf(fp, "  TP/CP comm   %.2f ms TP + %.2f ms CP exposed per GPU per step (inside busy)\n",
                1e3 * s->tp_comm_s_per_step, 1e3 * s->cp_comm_s_per_step);
    if (s->bubble_s_per_step > 0 || s->p2p_s_per_step > 0)
        fprintf(fp, "  pipeline     bubble %.2f ms (%.1f%% of the step), stage-to-stage transfers %.2f ms per GPU per step\n",
                1e3 * s->bubble_s_per_step, s->step_mean_s > 0 ? 100 * s->bubble_s_per_step / s->step_mean_s : 0.0,
                1e3 * s->p2p_s_per_step);
    fprintf(fp, "  rebalancing  %.3g GB intra-node + %.3g GB inter-node per step; all-to-all %.2f ms/step; balancer %.3f ms/step\n",
            s->bytes_intra_per_step / 1e9, s->bytes_inter_per_step / 1e9, 1e3 * s->a2a_s_per_step,
            1e3 * s->balancer_s_per_step);
    if (s->long_examples)
        fprintf(fp, "  warning      %llu examples/items exceed the model's max length (flagged, still replayed)\n",
                (unsigned long long)s->long_examples);
    if (s->needs_recompute)
        fprintf(fp, "  warning      %llu examples (with a pipeline: stage-steps) need more activation memory than a GPU "
                    "has unless --recompute is on\n", (unsigned long long)s->needs_recompute);
    if (s->mb_below_pp)
        fprintf(fp, "  warning      %llu steps had fewer micro-batches than pipeline stages: 1F1B never reaches its steady "
                    "state (set --micro-batch so that each rank runs >= pp micro-batches)\n",
                (unsigned long long)s->mb_below_pp);
    if (s->mb_clamped)
        fprintf(fp, "  note         %llu steps: --micro-batch exceeded a rank's share, which ran as one micro-batch\n",
                (unsigned long long)s->mb_clamped);
    fprintf(fp, "  simulator    %llu events in %.3f s of host time (%.3g events/s); calibration: %s\n",
            (unsigned long long)s->events, s->wall_s, s->wall_s > 0 ? (double)s->events / s->wall_s : 0.0,
            s->calib_name);
}
