/* plan.h — data movement of one step on the GPU backend, decided on the host.
 * Implements: from a policy's Plan (sim/policy.h) the all-to-allv routes of every phase
 *   (encoder inputs: home rank -> encoder rank; projected embeddings: encoder rank -> LLM
 *   rank; text token ids: home rank -> LLM rank), each as count/volume matrices (rows =
 *   senders) and packed buffer layouts (per-peer blocks, per-unit offsets); the node-wise
 *   variant as two stages (intra-node onto the destination's rail, then one inter-node
 *   exchange per rail, so a node pair's bytes for a destination cross the NIC once); the
 *   compute order of every rank; the copy lists that pack projector outputs and reassemble
 *   each example's LLM sequence (projected items in original order, then its text); the
 *   inverse routes of the backward pass; and a CPU simulation that verifies all of it.
 * Does not: touch a GPU or NCCL (comm.cu executes these routes), or cost anything (net.h).
 * Units: route sizes are ROWS (encoder positions, LLM tokens, token ids); the backend
 *   multiplies by the hidden size. Letters: D ranks, N examples, M items, U units, E encoders. */
#ifndef OS_EXEC_PLAN_H
#define OS_EXEC_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "sim/model.h"
#include "sim/policy.h"

/* One all-to-allv. Send buffers are ordered by (destination, unit), receive buffers by
 * (source, unit), so the inverse move's send layout is exactly this move's receive layout. */
typedef struct {
    uint32_t D, U;
    uint32_t *src, *dst;  /* [U] ranks */
    uint64_t *size;       /* [U] rows */
    uint64_t *vol;        /* [D*D] rows sender s -> receiver d at s*D + d (diagonal: to self) */
    uint64_t *units;      /* [D*D] units s -> d */
    uint64_t *send_off;   /* [D*(D+1)] sender s's block for peer d starts at s*(D+1) + d; the
                             entry at d = D is s's send total */
    uint64_t *recv_off;   /* [D*(D+1)] receiver d's block from peer s at d*(D+1) + s */
    uint64_t *send_pos;   /* [U] row offset of unit u in its sender's send buffer */
    uint64_t *recv_pos;   /* [U] row offset of unit u in its receiver's receive buffer */
} ExecMove;

/* A route: 1 stage (flat) or 2 (node-wise). Units keep their index across stages; between
 * stages the relay copies unit u from st[0].recv_pos[u] to st[1].send_pos[u]. */
typedef struct {
    uint32_t stages;
    ExecMove st[2];
} ExecRoute;

OsStatus exec_move_build(ExecMove *m, uint32_t D, uint32_t U, const uint32_t *src,
                         const uint32_t *dst, const uint64_t *size);
void exec_move_free(ExecMove *m); /* zeroes; safe on a zeroed move */
/* hier: node-wise two-stage route (node of rank r = r / dp_per_node). */
OsStatus exec_route_build(ExecRoute *r, uint32_t D, uint32_t dp_per_node, int hier, uint32_t U,
                          const uint32_t *src, const uint32_t *dst, const uint64_t *size);
/* The backward route: every unit back from its destination to its source, stages reversed. */
OsStatus exec_route_inverse(ExecRoute *inv, const ExecRoute *r);
void exec_route_free(ExecRoute *r);
/* Where unit u's rows start in its final receiver's buffer / its first sender's buffer. */
static inline uint64_t exec_route_recv_pos(const ExecRoute *r, uint32_t u) {
    return r->st[r->stages - 1].recv_pos[u];
}
static inline uint64_t exec_route_send_pos(const ExecRoute *r, uint32_t u) {
    return r->st[0].send_pos[u];
}
/* CPU twin of executing a route (what comm.cu does with NCCL): send[d] laid out as st[0]'s
 * send layout, recv[d] receives the final stage's layout; row_bytes bytes per row. The
 * buffers of every rank must be sized from the moves' totals. */
OsStatus exec_route_apply_cpu(void *const *recv, const void *const *send, const ExecRoute *r,
                              size_t row_bytes);

/* One copy of n rows inside a rank: from `from` in buffer `buf` to `to` (rows). */
typedef struct {
    uint32_t buf;   /* which source buffer (see ExecStepPlan) */
    uint64_t from, to, n;
} ExecSeg;

/* The backend's plan of one step. */
typedef struct {
    uint32_t D, E, N, M;
    int hierarchical;
    uint32_t n_units[MODEL_MAX_ENC]; /* items of encoder e */
    uint32_t *unit_item[MODEL_MAX_ENC]; /* [n_units[e]] global item index of unit k */
    uint32_t *item_unit;                /* [M] unit index of item j within its encoder */
    uint32_t *item_ex, *item_enc;       /* [M] owning example, encoder */
    uint32_t *ex_first;                 /* [N] first item of example i, UINT32_MAX if none */
    uint64_t *item_pos, *item_tok;      /* [M] encoder positions (pad_to applied), LLM tokens
                                           (ceil(real positions / ratio), params.h) */
    uint32_t *item_len;                 /* [M] real positions (before pad_to): the rows merged */
    uint32_t *ex_text;                  /* [N] text tokens */
    ExecRoute in[MODEL_MAX_ENC];  /* item inputs, rows = positions */
    ExecRoute emb[MODEL_MAX_ENC]; /* projected embeddings, rows = LLM tokens */
    ExecRoute text;               /* token ids, units = examples, rows = text tokens */
    /* compute order: rank d runs encoder e on units enc_order[e][enc_off[e][d] ..
     * enc_off[e][d+1]) (the final receive order of in[e]: no unpacking), then the LLM on
     * examples llm_order[llm_off[d] .. llm_off[d+1]) (increasing example index). */
    uint32_t *enc_order[MODEL_MAX_ENC];
    uint64_t *enc_off[MODEL_MAX_ENC]; /* [D+1] */
    uint64_t *enc_rows[MODEL_MAX_ENC];/* [D] positions rank d encodes */
    uint32_t *llm_order;
    uint64_t *llm_off;                /* [D+1] */
    uint64_t *llm_rows;               /* [D] LLM tokens rank d runs */
    /* rank d packs its projector output (rows in compute order) into emb[e]'s send buffer:
     * segs pack_seg[e][pack_off[e][d] .. pack_off[e][d+1]), buf = 0. The backward applies
     * them reversed (to -> from) to unpack the returning gradients. */
    ExecSeg *pack_seg[MODEL_MAX_ENC];
    uint64_t *pack_off[MODEL_MAX_ENC];
    /* rank d assembles its LLM input: gather_seg[gather_off[d] .. gather_off[d+1]) with buf
     * = e (rows of emb[e]'s receive buffer) or buf = E (token ids of text's receive buffer,
     * looked up in the embedding); the backward reverses the item segments. */
    ExecSeg *gather_seg;
    uint64_t *gather_off;
} ExecStepPlan;

/* Build from a policy's answer. w: the step (D, P, N, M, it_example, it_phase, it_len,
 * ex_tokens); ex_tokens minus the items' LLM tokens gives each example's text. */
OsStatus exec_step_plan_build(ExecStepPlan *sp, const Plan *p, const StepWork *w,
                              const ModelSpec *m);
void exec_step_plan_free(ExecStepPlan *sp);
/* CPU simulation with tagged rows: every item and example computed exactly once, every
 * reassembled LLM sequence equal to the original, the inverse routes bring every gradient
 * row back to where it came from. Errors name the unit that went astray. */
OsStatus exec_step_plan_verify(const ExecStepPlan *sp);

#endif
