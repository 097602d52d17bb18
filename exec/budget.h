/* budget.h — GPU memory one rank of the step executor needs, estimated BEFORE allocating, so
 * that validate can refuse a preset that does not fit with how much it would need.
 * Implements: weights (bf16) + parameter gradients (fp32 accumulation) of every module
 *   (DDP: each rank holds all of them) + activations kept for the backward (bf16, per token
 *   per layer: layer input, both norm outputs, the attention input of the MLP, QKV, the
 *   attention output, the MLP's up projection and its activation) + the attention scratch of
 *   the longest sequence (fp32 scores, bf16 probabilities, fp32 probability gradients, all
 *   heads: n^2 nh (4 + 2 + 4) bytes; recomputed per layer, so held once) + the LLM's logits
 *   and their gradient (fp32 + bf16 per token per vocabulary entry) + two activation-gradient
 *   buffers of the widest layer row.
 * Does not: count the CUDA context, cuBLAS workspace or NCCL buffers (the caller keeps a
 *   margin: EXEC_BUDGET_MARGIN of the device memory).
 * Units: bytes. */
#ifndef OS_EXEC_BUDGET_H
#define OS_EXEC_BUDGET_H

#include <stdint.h>

#include "sim/model.h"

#define EXEC_BUDGET_MARGIN 0.10 /* of the device's memory, left to context/library buffers */

typedef struct {
    double weights, grads, activations, scratch, total;
} ExecBudget;

/* rows: LLM tokens / encoder positions of the busiest rank per module (enc_rows[n_enc]);
 * longest: the longest single sequence per module (attention is per sequence). */
void exec_budget(ExecBudget *b, const ModelSpec *m, uint64_t llm_rows, const uint64_t *enc_rows,
                 uint32_t llm_longest, const uint32_t *enc_longest);

#endif
