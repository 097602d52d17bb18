/* emucomm.h — the modelled collectives of an emulated validate step (`--emulate`): what the
 * step's moves and gradient sync would cost on a cluster of D GPUs, in exec/validate.h's
 * barrier order, from the bytes the GPU executor really moves.
 * Implements: per barrier, the all-to-allv of each route the executor runs there (plan.h:
 *   encoder inputs at H_e bf16 per row, embeddings at H_llm bf16 per row, token ids at 4
 *   bytes), costed from its sender x receiver byte matrix with net_alltoallv (one call per
 *   stage; a node-wise route's two stages add); the backward barriers with every move
 *   reversed; the DDP gradient sync as one ring all-reduce of the executor's flat fp32
 *   gradient buffer (params.h layouts, each module 128-element aligned, padded to D, as
 *   mllm.cu allocates it).
 * Does not: run or time anything, or model overlap (the executor overlaps nothing).
 * Source: DESIGN.md §3, §6; net.h (REFERENCE.md §D.5-§D.6). Seconds; bytes. */
#ifndef OS_EXEC_EMUCOMM_H
#define OS_EXEC_EMUCOMM_H

#include <stdint.h>

#include "exec/plan.h"
#include "exec/validate.h"
#include "sim/model.h"
#include "sim/net.h"

typedef struct {
    uint32_t P;
    int moves[EXEC_VAL_MAX_PHASES];     /* forward moves before phase p cross ranks */
    int bwd_moves[EXEC_VAL_MAX_PHASES]; /* encoder p's embedding gradients cross ranks */
    double comm_s[2 * EXEC_VAL_MAX_PHASES]; /* validate.h's order; 0 where nothing crosses */
    uint64_t bytes[2 * EXEC_VAL_MAX_PHASES]; /* bytes crossing ranks at each barrier */
} ExecEmuComm;

/* Bytes of the executor's flat fp32 gradient buffer for D ranks (what DDP all-reduces). */
double exec_emu_grad_bytes(const ModelSpec *m, uint32_t D);

/* Fill out for step plan sp on cluster c (c->dp == sp->D). ns: scratch sized for c (borrowed).
 * Errors: a plan/cluster mismatch, the net model's failure (NaN). */
OsStatus exec_emu_comm(ExecEmuComm *out, const ExecStepPlan *sp, const ModelSpec *m, const Cluster *c,
                       NetScratch *ns);

/* Point an ExecEmuStep at out's arrays (fwd/bwd: [D*P] measured compute, rank-major). */
void exec_emu_comm_step(ExecEmuStep *e, const ExecEmuComm *cm, uint32_t D, const double *fwd, const double *bwd);

#endif
