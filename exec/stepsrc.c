/* stepsrc.c — see stepsrc.h. Per-step arrays live in one arena reset every step (STYLE habit
 * 4); the ExecStepPlan is rebuilt per step (plan.c owns its allocations). */
#include "exec/stepsrc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/params.h"
#include "base/util.h"
#include "traces/trace.h"

/* Text input moved by the all-to-all: int32 token ids (as replay.c). */
#define TEXT_BYTES_PER_TOKEN 4u

struct ExecStepSource {
    Trace *trace;
    const ModelSpec *m;
    const Policy *policy;
    const PolicyOptions *popt;
    CostModel cm;
    CostUnit unit[MODEL_MAX_ENC + 1];
    uint32_t D, dp_per_node;
    int enc_of_mod[TRACE_MAX_MODALITIES];
    PolicyScratch *pol;
    OsArena arena;
    StepWork work;
    Plan plan;
    ExecStepPlan xp;
    int have_xp;
};

OsStatus exec_src_create(ExecStepSource **out, const char *trace_path, const ModelSpec *m,
                         const Policy *policy, const PolicyOptions *popt, const Calib *calib,
                         uint32_t D, uint32_t dp_per_node) {
    OsStatus st = OS_OK;
    ExecStepSource *s = NULL;
    *out = NULL;
    if (D == 0 || !policy || !m || !calib || !popt)
        OS_FAIL(OS_ERR_ARG, "exec", "step source", NULL, "D = %u and model, policy, options, calibration all needed", D);
    ALLOC_CHECK(s = calloc(1, sizeof *s));
    os_arena_init(&s->arena);
    s->m = m, s->policy = policy, s->popt = popt, s->D = D;
    s->dp_per_node = dp_per_node ? dp_per_node : D;
    s->cm = (CostModel){.model = m, .calib = calib, .recompute = 0, .layout = ATTN_VARLEN, .memo = NULL};
    OS_CHECK(model_validate(m, m->name));
    if (m->n_enc > MODEL_MAX_ENC) OS_FAIL(OS_ERR_ARG, m->name, "encoders", NULL, "%u encoders", m->n_enc);
    for (uint32_t p = 0; p <= m->n_enc; p++) cost_unit_prepare(&s->unit[p], &s->cm, p);
    OS_CHECK(trace_open(&s->trace, trace_path));
    for (uint32_t k = 0; k < TRACE_MAX_MODALITIES; k++) s->enc_of_mod[k] = -1;
    for (uint32_t k = 1; k < trace_n_modalities(s->trace) && k < TRACE_MAX_MODALITIES; k++)
        s->enc_of_mod[k] = model_encoder_index(m, trace_modality(s->trace, k)->name);
    OS_CHECK(policy_scratch_create(&s->pol));
    *out = s;
    return OS_OK;
fail:
    exec_src_destroy(s);
    return st;
}

void exec_src_destroy(ExecStepSource *s) {
    if (!s) return;
    if (s->have_xp) exec_step_plan_free(&s->xp);
    policy_scratch_destroy(s->pol);
    trace_close(s->trace);
    os_arena_free(&s->arena);
    free(s);
}

uint64_t exec_src_n_steps(const ExecStepSource *s) { return trace_n_steps(s->trace); }

OsStatus exec_src_step(ExecStepSource *s, uint64_t step, ExecStep *out) {
    OsStatus st = OS_OK;
    const ModelSpec *m = s->m;
    const TraceStep *ts = NULL;
    const char *path = NULL;
    memset(out, 0, sizeof *out);
    if (s->have_xp) exec_step_plan_free(&s->xp), s->have_xp = 0;
    OS_CHECK(trace_read_step(s->trace, step, &ts));
    path = trace_path(s->trace);
    uint32_t N = ts->n_examples, M = ts->n_items, D = s->D;
    if (N < D)
        OS_FAIL(OS_ERR_ARG, path, "/steps", "use fewer --gpus", "step %llu has %u examples for %u ranks",
                (unsigned long long)step, N, D);

    /* carve the step's arrays */
    size_t need = (size_t)N * (4 * 4 + 8 * 3) + (size_t)M * (4 * 3 + 8 * 3 + 1 + 4) + 16 * 64;
    os_arena_reset(&s->arena);
    OS_CHECK(os_arena_reserve(&s->arena, need));
#define CARVE(p, n) ALLOC_CHECK(p = os_arena_alloc(&s->arena, (size_t)(n) * sizeof(*p) + 1))
    uint32_t *drawn, *ex_tokens, *it_example, *it_len, *home, *ex_rank, *it_rank;
    double *ex_cost, *it_cost;
    uint64_t *ex_bytes, *it_in, *it_out, *ex_id;
    uint8_t *it_phase;
    CARVE(drawn, N); CARVE(ex_tokens, N); CARVE(home, N); CARVE(ex_rank, N);
    CARVE(ex_cost, N); CARVE(ex_bytes, N); CARVE(ex_id, N);
    CARVE(it_example, M); CARVE(it_len, M); CARVE(it_rank, M); CARVE(it_cost, M);
    CARVE(it_in, M); CARVE(it_out, M); CARVE(it_phase, M);
#undef CARVE

    for (uint32_t i = 0; i < N; i++) {
        const TraceExample *ex = &ts->examples[i];
        drawn[i] = (uint32_t)(((uint64_t)i * D) / N); /* replay's re-deal (--regroup) */
        ex_id[i] = ex->id;
        uint64_t S = ex->text, I = 0;
        for (uint32_t k = 0; k < ex->n_items; k++) {
            uint32_t j = (uint32_t)ex->first_item + k;
            const TraceItem *it = &ts->items[j];
            int e = s->enc_of_mod[it->modality];
            if (e < 0)
                OS_FAIL(OS_ERR_ARG, path, "/items", "pick a model with an encoder for every modality of the trace",
                        "step %llu, example id %llu: '%s' items, but model '%s' has no encoder for them",
                        (unsigned long long)step, (unsigned long long)ex->id,
                        trace_modality(s->trace, it->modality)->name, m->name);
            const EncoderSpec *es = &m->enc[e];
            if (es->max_len && it->length > es->max_len)
                OS_FAIL(OS_ERR_RANGE, path, "/items", "filter the trace, or use a preset with a longer limit",
                        "step %llu, example id %llu: a '%s' item of %u positions; model '%s' accepts at most %u",
                        (unsigned long long)step, (unsigned long long)ex->id, es->modality, it->length, m->name,
                        es->max_len);
            uint32_t pos = exec_item_positions(es, it->length), tok = exec_item_tokens(es, it->length);
            it_example[j] = i, it_phase[j] = (uint8_t)e, it_len[j] = it->length;
            it_cost[j] = cost_unit_eval(&s->unit[e], it->length);
            it_in[j] = (uint64_t)pos * es->in_bytes_per_unit;
            it_out[j] = (uint64_t)tok * m->llm.hidden * m->act_bytes;
            S += tok, I += tok;
            if (pos > out->longest_item[e]) out->longest_item[e] = pos;
        }
        if ((m->max_seq && S > m->max_seq) || S >= TRACE_MAX_LEN)
            OS_FAIL(OS_ERR_RANGE, path, "/examples", "filter the trace, or use a preset with a longer max_seq",
                    "step %llu, example id %llu: %llu LLM tokens (text + projected items); model '%s' accepts at most %u",
                    (unsigned long long)step, (unsigned long long)ex->id, (unsigned long long)S, m->name,
                    m->max_seq);
        ex_tokens[i] = (uint32_t)S;
        ex_cost[i] = cost_unit_eval(&s->unit[m->n_enc], (uint32_t)S);
        ex_bytes[i] = (uint64_t)ex->text * TEXT_BYTES_PER_TOKEN;
        out->labels += exec_n_labels((uint32_t)I, ex->text);
        if (S > out->longest_seq) out->longest_seq = (uint32_t)S;
    }
    s->work = (StepWork){.D = D, .P = m->n_enc + 1, .N = N, .M = M, .dp_per_node = s->dp_per_node,
                         .drawn = drawn, .ex_cost = ex_cost, .ex_tokens = ex_tokens, .ex_bytes = ex_bytes,
                         .it_example = it_example, .it_phase = it_phase, .it_cost = it_cost, .it_len = it_len,
                         .it_in_bytes = it_in, .it_out_bytes = it_out, .opt = s->popt};
    s->plan = (Plan){.home = home, .ex_rank = ex_rank, .it_rank = it_rank, .hierarchical = 0};
    OS_CHECK(s->policy->fn(&s->plan, &s->work, s->pol));
    OS_CHECK(plan_check(&s->plan, &s->work, s->policy->name));
    OS_CHECK(exec_step_plan_build(&s->xp, &s->plan, &s->work, m));
    s->have_xp = 1;
    OS_CHECK(exec_step_plan_verify(&s->xp));
    for (uint32_t d = 0; d < D; d++) {
        out->max_llm_rows = OS_MAX(out->max_llm_rows, s->xp.llm_rows[d]);
        for (uint32_t e = 0; e < m->n_enc; e++)
            out->max_enc_rows[e] = OS_MAX(out->max_enc_rows[e], s->xp.enc_rows[e][d]);
    }
    out->step = step, out->work = &s->work, out->plan = &s->plan, out->xp = &s->xp, out->ex_id = ex_id;
fail:
    return st;
}
