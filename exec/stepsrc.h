/* stepsrc.h — the host side of one backend step: trace step -> StepWork -> policy Plan ->
 * ExecStepPlan, the same on every process (each worker builds its own copy: the policies are
 * deterministic, so no plan has to be shipped between processes).
 * Implements: the StepWork of a global batch as the backend runs it (LLM sequence = text +
 *   ceil(real positions / ratio) per item, params.h's rule; the encoder still runs pad_to
 *   positions, which count in the encoder rows and routes); the re-deal
 *   "rank r drew examples [r N / D, (r+1) N / D)" that replay uses with --regroup), the
 *   per-unit costs the balancers weigh (cost.h with the given calibration), the policy call,
 *   plan_check, exec_step_plan_build and exec_step_plan_verify; the checks validate needs at
 *   the door: an item or example longer than the preset accepts is one error naming the step,
 *   the example id and the limit; the global label count (ref.h's label_norm).
 * Does not: run anything on a GPU, or time anything.
 * Note: for encoders with pad_to (Whisper) the backend splices ceil(real / ratio) LLM tokens
 *   per item, exactly what replay counts (cost_item_llm_tokens), so measured and predicted
 *   runs see the same sequences. Letters as plan.h. */
#ifndef OS_EXEC_STEPSRC_H
#define OS_EXEC_STEPSRC_H

#include <stdint.h>

#include "exec/plan.h"
#include "sim/cost.h"
#include "sim/model.h"
#include "sim/policy.h"

typedef struct ExecStepSource ExecStepSource;

/* Opens the trace (validated structure). model, policy, popt, calib are borrowed and must
 * outlive the source. dp_per_node: ranks per node (plan.h's node-wise routes). */
OsStatus exec_src_create(ExecStepSource **out, const char *trace_path, const ModelSpec *m,
                         const Policy *policy, const PolicyOptions *popt, const Calib *calib,
                         uint32_t D, uint32_t dp_per_node);
void exec_src_destroy(ExecStepSource *s); /* NULL-safe */
uint64_t exec_src_n_steps(const ExecStepSource *s);

/* One prepared step; every pointer borrowed from the source until the next exec_src_step. */
typedef struct {
    uint64_t step;             /* trace step index */
    const StepWork *work;
    const Plan *plan;
    const ExecStepPlan *xp;
    const uint64_t *ex_id;     /* [N] example ids (seed tokens and item inputs, params.h) */
    uint64_t labels;           /* labelled positions of the global batch */
    uint32_t longest_seq;      /* longest LLM sequence (tokens) */
    uint32_t longest_item[MODEL_MAX_ENC]; /* longest encoder input (positions, pad_to applied) */
    uint64_t max_llm_rows;     /* most LLM tokens any rank runs */
    uint64_t max_enc_rows[MODEL_MAX_ENC]; /* most positions any rank encodes, per encoder */
} ExecStep;

/* Prepare trace step `step`. Errors: OS_ERR_RANGE for lengths over the preset's limits
 * (max_len per encoder, max_seq for the LLM), OS_ERR_ARG for a modality the model has no
 * encoder for, a policy's broken plan (plan_check), a plan that does not verify. */
OsStatus exec_src_step(ExecStepSource *s, uint64_t step, ExecStep *out);

#endif
