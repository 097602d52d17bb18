/* memplan.h — every device buffer of the step executor, byte for byte, in plain C: the one
 * place that says how big each block is and where each array sits in it. exec/mllm.cu and
 * exec/stack.cu carve their blocks from these layouts and allocate exactly these sizes;
 * `validate` estimates memory with the same code before anything is allocated, so the
 * estimate IS the allocator's count (issue 10, defect 6).
 * Implements:
 *   - the flat weight (bf16) and gradient (fp32) buffers: every module 128-element aligned,
 *     the total padded to D (FSDP splits it evenly);
 *   - one stack's activation block for T rows (kept for the backward: layer inputs, norms,
 *     QKV, attention output, MLP; the fused attention's log-sum-exp per head and row);
 *   - the shared backward scratch for the widest stack and the busiest local rank (fused
 *     attention: the fp32 dQ accumulator, the dO.O row sums, the tile lists; the slow cuBLAS
 *     twin: four n x n score matrices of the longest sequence);
 *   - one rank's step block (inputs, projector, embeddings, token ids, logits, the stacks);
 *   - the relay buffers of a node-wise (two-stage) route;
 *   - the executor's growth rule, replayed: every buffer grows to the largest size any step
 *     asked for and never shrinks, so what a run holds is, per rank, its worst step; with
 *     several local ranks on one device (--emulate) the SUM over ranks of each rank's worst
 *     step (not the worst step's sum).
 * Does not: count the CUDA context, cuBLAS's workspace or NCCL's buffers (EXEC_MEM_MARGIN of
 *   the device is kept for them), or allocate anything on a device.
 * Units: bytes; rows. Letters: D ranks, E encoders, T rows, H hidden, F ffn, V vocabulary. */
#ifndef OS_EXEC_MEMPLAN_H
#define OS_EXEC_MEMPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "exec/params.h"
#include "exec/plan.h"
#include "exec/rankidx.h"
#include "sim/model.h"

#define EXEC_MEM_ALIGN 256
#define EXEC_MEM_MARGIN 0.10 /* of the device's memory, left to the context and the libraries */

typedef enum { EXEC_ATTN_FUSED = 0, EXEC_ATTN_CUBLAS = 1 } ExecAttnImpl;

static inline size_t exec_mem_al(size_t b) { return (b + EXEC_MEM_ALIGN - 1) / EXEC_MEM_ALIGN * EXEC_MEM_ALIGN; }

/* The model as the executor lays it out. */
typedef struct {
    uint32_t E, n_mod, D;
    ExecStackLayout L[MODEL_MAX_ENC + 1];  /* encoders, then the LLM at [E] */
    ExecProjLayout PL[MODEL_MAX_ENC];
    uint64_t off[2 * MODEL_MAX_ENC + 1];   /* flat offsets (elements), params.h numbering */
    uint64_t total;                        /* elements, padded to D */
    uint32_t Hl, V;
    uint8_t fused[MODEL_MAX_ENC + 1];      /* stack k's attention runs the fused kernel */
} ExecMemModel;

void exec_mem_model(ExecMemModel *mm, const ModelSpec *m, uint32_t D, ExecAttnImpl impl);

/* One stack's activation block for T rows: byte offsets from its base. Per-layer arrays are
 * one region each, layer l at l x (T x width) elements. */
typedef struct {
    size_t x, n1, att, xm, n2, qkv, u, h, r1, r2, out, rf, lse; /* lse: fused only, [layers][nh][T] fp32 */
    size_t total;
} ExecActsLayout;
void exec_acts_layout(ExecActsLayout *a, const ExecStackLayout *L, uint64_t T, int fused);

/* The shared scratch for `rows` rows and sequences up to `longest`. */
typedef struct {
    size_t dx, dxm, dn, dh, du, datt, dqkv;  /* bf16 gradients of the widest row */
    size_t S, dP, P, dS;                     /* cuBLAS twin: [n n] fp32, fp32, bf16, bf16 */
    size_t dq, dvec, tiles;                  /* fused: [T, nh hd] fp32, [nh, T] fp32, 2 tile lists */
    uint64_t max_tiles;                      /* entries of one tile list */
    size_t total;
} ExecScratchLayout;
void exec_scratch_layout(ExecScratchLayout *s, const ExecMemModel *mm, uint64_t rows, uint32_t longest);

/* One rank's step block: byte offsets from its base. */
typedef struct {
    size_t in_send[MODEL_MAX_ENC], merged[MODEL_MAX_ENC], z1[MODEL_MAX_ENC], g1[MODEL_MAX_ENC];
    size_t proj[MODEL_MAX_ENC], emb_send[MODEL_MAX_ENC], emb_recv[MODEL_MAX_ENC];
    size_t dg1[MODEL_MAX_ENC], dmerged[MODEL_MAX_ENC], denc[MODEL_MAX_ENC];
    size_t enc[MODEL_MAX_ENC];               /* each encoder's activation block */
    ExecActsLayout enc_acts[MODEL_MAX_ENC];
    size_t text_send, text_recv, ids, labels, next_same, logits, loss, dlogits, dout;
    size_t llm;
    ExecActsLayout llm_acts;
    size_t total;
} ExecRankLayout;
void exec_rank_layout(ExecRankLayout *r, const ExecMemModel *mm, const ExecRankIdx *ix);

/* The device copy of a rank's index lists. */
static inline size_t exec_rank_idx_bytes(const ExecRankIdx *ix) { return ix->n_blk * sizeof(uint64_t) + 8; }

/* Relay buffers rank d needs for route r at row_bytes per row (0, 0 for a flat route). */
void exec_route_relay_bytes(const ExecRoute *r, uint32_t d, size_t row_bytes, size_t *mid, size_t *out);

/* Device bytes by kind. */
typedef struct {
    double weights, grads;  /* flat bf16 weights, fp32 gradients */
    double activations;     /* the ranks' step blocks */
    double index;           /* the ranks' index lists */
    double scratch;         /* the shared backward scratch */
    double relay;           /* node-wise routes' relay buffers */
    double total;
} ExecMemCount;

/* The executor's buffers replayed step by step with its own growth rule. local: the LOCAL
 * executor of --emulate and the tests (all D ranks in one process on one device); else the
 * NCCL executor of rank `rank` (one rank per device). D == 1 is LOCAL (no NCCL). */
typedef struct {
    ExecMemModel mm;
    int local;
    uint32_t rank, n_local;
    size_t *act, *idx, *mid, *out; /* [n_local] capacities */
    size_t scratch;
    ExecRankIdx ix;
    ExecRoute inv;                 /* scratch for the inverse embedding routes */
} ExecMemTrack;

OsStatus exec_mem_track_init(ExecMemTrack *t, const ModelSpec *m, uint32_t D, int local, uint32_t rank,
                             ExecAttnImpl impl);
/* Grow the capacities as the executor would for step plan sp (ex_id: [N] example ids). */
OsStatus exec_mem_track_step(ExecMemTrack *t, const ModelSpec *m, const ExecStepPlan *sp, const uint64_t *ex_id);
void exec_mem_track_count(const ExecMemTrack *t, ExecMemCount *out);
void exec_mem_track_free(ExecMemTrack *t); /* zeroes; safe on a zeroed tracker */

#endif
