/* ref.h — the CPU float64 reference of the backend's MLLM: the slow, obvious twin of the GPU
 * stack (STYLE.md habit 6), tested against finite differences and used to check the GPU.
 * Implements: forward and backward of every module of a ModelSpec (encoder stacks with
 *   bidirectional attention per item, ratio-merge + 2-layer GELU projector, the causal LLM
 *   with GQA, RMSNorm, SwiGLU or GELU MLP, residuals, untied LM head) and the token-level
 *   cross-entropy normalised by a caller-given (global) label count; weights from params.h,
 *   so they equal the GPU's bit for bit.
 * Does not: run fast (O(T^2) loops in double; tiny configs only), move data between ranks,
 *   or apply an optimizer (gradients accumulate until ref_zero_grads).
 * Source: DESIGN.md §2 and §6; llm.c's layernorm/attention/gelu CPU references. */
#ifndef OS_EXEC_REF_H
#define OS_EXEC_REF_H

#include <stdint.h>

#include "exec/params.h"
#include "base/status.h"
#include "sim/model.h"

typedef struct RefModel RefModel;

/* Weights of every module from `seed` (params.h), gradients zero. The spec is copied. */
OsStatus ref_model_create(RefModel **out, const ModelSpec *m, uint64_t seed);
void ref_model_destroy(RefModel *r); /* NULL-safe */

/* Module numbering as params.h: encoders, LLM, projectors. Borrowed, writable (finite
 * differences perturb the weights); n = elements. */
double *ref_params(RefModel *r, uint32_t module, uint64_t *n);
double *ref_grads(RefModel *r, uint32_t module, uint64_t *n);
void ref_zero_grads(RefModel *r);

/* Forward (and backward when `backward`) over a batch: returns in *loss the sum over the
 * batch's labelled positions of the cross-entropy, divided by label_norm (the GLOBAL label
 * count, so ranks' gradients sum to the global batch's). Gradients accumulate. data_seed
 * seeds tokens and item inputs (params.h). Errors: items whose encoder is out of range. */
OsStatus ref_model_step(double *loss, RefModel *r, const ExecBatch *b, uint64_t data_seed,
                        double label_norm, int backward);

/* Labels of a batch (params.h rule), the count to pass as label_norm for a whole batch. */
uint64_t ref_batch_labels(const ModelSpec *m, const ExecBatch *b);

/* Primitives, exposed for hand-computed tests. out/x: [T, C]; g: [C]; rstd: [T]. */
void ref_rmsnorm_forward(double *out, double *rstd, const double *x, const double *g,
                         uint32_t T, uint32_t C);
/* dx += ..., dg += ...: the backward of ref_rmsnorm_forward. */
void ref_rmsnorm_backward(double *dx, double *dg, const double *dout, const double *x,
                          const double *g, const double *rstd, uint32_t T, uint32_t C);
/* Softmax of n values (max-subtracted). */
void ref_softmax(double *out, const double *in, uint32_t n);
double ref_gelu(double x);      /* tanh approximation, as the GPU kernel */
double ref_gelu_grad(double x);

#endif
