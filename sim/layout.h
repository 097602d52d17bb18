/* layout.h — the parallel layout: tensor (TP), context (CP), data (DP) and pipeline (PP)
 * parallelism, where each group's GPUs sit, how the model is cut into pipeline stages, and what
 * a stage holds in memory.
 * Implements: `tp=T,pp=P,cp=C[,vp=V]` parsing, validation against the cluster and the model
 *   (errors name the option), Megatron-LM's rank order (TP innermost, then CP, DP, PP:
 *   global rank = tp + T*(cp + C*(dp + D*pp)), parallel_state.py's "tp-cp-ep-dp-pp"), the LLM's
 *   layers split over P*V virtual stages (as equal as possible, the remainder to the earliest
 *   stages), the encoders and projectors on a stage of their own choosing (default stage 0:
 *   with the embedding, before the LLM's first layers), and per-stage parameter counts.
 * Does not: time anything (replay.c, program.c) or price a collective (net.h).
 * Source: DESIGN.md §3; Narayanan et al. 2021 (arXiv 2104.04473) for 1F1B and interleaving;
 *   Korthikanti et al. 2022 (arXiv 2205.05198) for sequence parallelism. */
#ifndef OS_LAYOUT_H
#define OS_LAYOUT_H

#include <stdint.h>

#include "base/status.h"
#include "sim/model.h"

#define LAYOUT_MAX_VSTAGES 1024 /* P * V */

typedef enum { PP_1F1B = 0, PP_INTERLEAVED = 1 } PipeSchedule;

typedef struct {
    uint32_t tp, pp, cp, vp;   /* degrees; vp = model chunks per pipeline rank (interleaved) */
    uint32_t dp;               /* set by layout_resolve: GPUs / (tp * pp * cp) */
    PipeSchedule schedule;     /* 1F1B, or interleaved 1F1B when vp > 1 */
    int sp;                    /* sequence parallelism with TP (Megatron's default with TP > 1) */
    int tp_overlap;            /* TP collectives hidden behind GEMMs (Megatron --tp-comm-overlap) */
    int allow_cross_node_tp;
    int8_t enc_vstage[MODEL_MAX_ENC]; /* virtual stage of each encoder (+ projector); -1 = default 0 */
    /* resolved: LLM layers [layer0[v], layer0[v+1]) on virtual stage v (v = chunk * pp + stage) */
    uint32_t n_vstages;
    uint32_t layer0[LAYOUT_MAX_VSTAGES + 1];
} Layout;

/* tp = pp = cp = vp = 1, 1F1B, sequence parallelism on, TP collectives exposed. */
void layout_init(Layout *l);
/* "tp=8,pp=16,cp=2,vp=2" (any subset, any order); errors name --parallel. */
OsStatus layout_parse(Layout *l, const char *spec);
/* "image=0,audio=1": the pipeline stage (chunk 0) of each encoder; errors name --pp-layout. */
OsStatus layout_parse_placement(Layout *l, const ModelSpec *m, const char *spec);
/* Check against the cluster's GPU count and node size and the model; fill dp and the layer
 * split. Errors, each naming the option: a degree that does not divide the GPU count; TP larger
 * than a node without allow_cross_node_tp; more virtual stages than LLM layers; an encoder
 * placed on a stage that does not exist. */
OsStatus layout_resolve(Layout *l, uint32_t gpus, uint32_t gpus_per_node, const ModelSpec *m);

/* Pipeline stage and chunk of virtual stage v, and the reverse. */
static inline uint32_t layout_stage_of(const Layout *l, uint32_t v) { return v % l->pp; }
static inline uint32_t layout_chunk_of(const Layout *l, uint32_t v) { return v / l->pp; }
static inline uint32_t layout_vstage(const Layout *l, uint32_t stage, uint32_t chunk) {
    return chunk * l->pp + stage;
}
/* Global rank (Megatron order) of (tp, cp, dp, pp) coordinates, and its node. */
uint32_t layout_rank(const Layout *l, uint32_t t, uint32_t c, uint32_t d, uint32_t p);
/* Virtual stage an encoder runs on. */
uint32_t layout_enc_vstage(const Layout *l, uint32_t e);
/* Parameters on one virtual stage: its LLM layers, the embedding (+ position table) on the
 * first, the final norm and LM head on the last (one table when tied: counted on the first),
 * and every encoder and projector placed there. */
uint64_t layout_vstage_params(const Layout *l, const ModelSpec *m, uint32_t v);
/* The most parameters any pipeline stage (all its chunks) holds. */
uint64_t layout_max_stage_params(const Layout *l, const ModelSpec *m);
/* Micro-batches whose activations a stage holds at once: 1F1B min(M, P - s); interleaved
 * (Megatron's warm-up count + 1, in chunks, over V) — the first stage holds the most. */
double layout_inflight(const Layout *l, uint32_t stage, uint32_t M);
/* "tp 8, pp 16 (1F1B), cp 1, dp 64" for announcements. */
void layout_describe(char *buf, uint64_t cap, const Layout *l);

#endif
