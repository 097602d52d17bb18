/* mllm.h — the GPU step executor: one training step (forward + backward) of the MLLM on the
 * ranks this process holds, with the data moved between phases as the policy planned.
 * Implements: device weights (bf16, params.h values: equal to ref.c's) and fp32 gradient
 *   accumulators of every module in one flat buffer each; per step and per rank: item
 *   features and token ids generated at their home rank (params.h), the encoders' input
 *   all-to-all, each encoder stack over its items (attention per item, padded to pad_to), the
 *   projector (ratio merge of the item's REAL positions only + 2-layer GELU MLP), the
 *   embeddings' and token ids' all-to-all, the LLM sequences assembled (items in order, then
 *   text), the LLM stack (GQA causal attention per sequence), LM head and cross-entropy over
 *   the GLOBAL label count, the whole backward with the inverse moves routing each item's
 *   gradient back to the rank that encoded it, and the gradient sync. CUDA events around every
 *   phase and move; cuBLAS bf16 GEMMs with fp32 accumulation for every matrix product.
 * Two ways to hold ranks: NCCL (this process is one rank of D, one GPU each: validate) or
 *   LOCAL (all D ranks in this process on one device, sharing one weight and gradient copy,
 *   each with its own activations: the equality tests, --emulate, and one rank, which never
 *   touches NCCL).
 * Attention: the fused variable-length kernels (exec/flash.h: one launch per layer for all
 *   sequences) where the head dim allows, else (or with exec_mllm_set_attn) the per-sequence
 *   cuBLAS twin (exec/attn.h). Device memory: exactly exec/memplan.h's buffers, counted by
 *   the executor's own allocator (exec_mllm_mem). Waiting for the stream polls NCCL's
 *   asynchronous error and a deadline (exec_mllm_set_wait), so a dead peer fails this rank
 *   with NCCL's reason instead of hanging it.
 * Does not: apply an optimizer (gradients accumulate until exec_mllm_zero_grads, as ref.h),
 *   recompute activations, or overlap communication with compute.
 * The code is in the GPU module (exec/mllm.cu); these functions load it (gpumod.h) and fail
 * with its error (OS_ERR_NODEV) when it cannot be loaded.
 * Times: seconds. Letters: D ranks, P phases (encoders, then the LLM). */
#ifndef OS_EXEC_MLLM_H
#define OS_EXEC_MLLM_H

#include <stddef.h>
#include <stdint.h>

#include "exec/memplan.h"
#include "exec/plan.h"
#include "base/status.h"
#include "sim/model.h"

#define EXEC_MAX_PHASES (MODEL_MAX_ENC + 1)

typedef struct ExecMllm ExecMllm;

/* What one rank measured in one step (CUDA events). In LOCAL mode a move's time is the
 * whole exchange among the local ranks (it is one sequence of copies) and is the same on
 * every rank; compute times are each rank's own. */
typedef struct {
    double fwd[EXEC_MAX_PHASES]; /* phase compute, forward (LLM: up to the loss) */
    double bwd[EXEC_MAX_PHASES]; /* backward */
    double a2a[EXEC_MAX_PHASES]; /* moves: encoder p's inputs + its embeddings' gradients back;
                                    LLM: embeddings + token ids forward */
    double step;                 /* first event to last of the step, this rank */
    double loss;                 /* this rank's share of the global mean loss */
} ExecRankTimes;

/* LOCAL: D ranks on CUDA device `device`. */
OsStatus exec_mllm_create_local(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, int device);
/* NCCL: rank `rank` of D on device `device`; id: ncclUniqueId bytes from exec_nccl_id on rank 0,
 * broadcast to all (worker.h). Collective: every rank must call it. */
OsStatus exec_mllm_create_nccl(ExecMllm **out, const ModelSpec *m, uint64_t seed, uint32_t D, uint32_t rank,
                               int device, const void *id, size_t id_len);
OsStatus exec_nccl_id(void *blob, size_t cap, size_t *len);
/* Frees everything; after a failed call the NCCL communicator is aborted (ncclCommAbort) so
 * that no peer blocks in a collective. NULL-safe. */
void exec_mllm_destroy(ExecMllm *x);
/* Mark x failed from outside (the caller's own step failed, on the host): the next
 * exec_mllm_destroy aborts the communicator instead of destroying it, since ncclCommDestroy
 * may wait on peers that are blocked waiting for this rank. NULL-safe. */
void exec_mllm_mark_failed(ExecMllm *x);
uint32_t exec_mllm_n_local(const ExecMllm *x);

/* One step of plan sp (all of the step's routes; this process runs its local ranks' share).
 * ex_id: [N] example ids; data_seed seeds inputs and tokens; label_norm: the global label
 * count. t: [n_local] filled. Gradients accumulate. */
OsStatus exec_mllm_step(ExecMllm *x, const ExecStepPlan *sp, const uint64_t *ex_id, uint64_t data_seed,
                        double label_norm, ExecRankTimes *t);
/* Gradient sync (DDP all-reduce, or FSDP reduce-scatter + all-gather); *secs from CUDA events.
 * LOCAL: nothing moves (*secs = 0): the ranks share one gradient buffer. */
OsStatus exec_mllm_grad_sync(ExecMllm *x, int fsdp, double *secs);
OsStatus exec_mllm_zero_grads(ExecMllm *x);
/* Copy module k's gradients (params.h numbering; n elements) to the host. */
OsStatus exec_mllm_grads(ExecMllm *x, uint32_t module, float *out, uint64_t n);
/* The attention path of every later step (default EXEC_ATTN_FUSED; $ORCHSIM_ATTN=cublas at
 * creation picks the twin). Grows nothing: the next step's scratch follows. */
OsStatus exec_mllm_set_attn(ExecMllm *x, ExecAttnImpl impl);
/* Longest wait, seconds, for the stream to finish a step or a sync (default 60; <= 0: none). */
void exec_mllm_set_wait(ExecMllm *x, double seconds);
/* Device bytes the executor holds now, by kind (its allocator's own count). */
void exec_mllm_mem(const ExecMllm *x, ExecMemCount *out);

#endif
