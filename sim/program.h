/* program.h — the per-rank step program and its execution on the event engine (private to
 * replay.c; tests use it through replay_run).
 * Implements: the op list every DP rank runs each step — per micro-batch the encoders' and the
 *   LLM's forward and backward (compute ops with per-rank durations), FSDP's per-layer-group
 *   all-gathers and reduce-scatters (FULL_SHARD: gathered for forward and again for backward;
 *   SHARD_GRAD_OP: gathered for forward only) or DDP's gradient buckets (all-reduced during the
 *   last micro-batch's backward), blocking collectives on the compute stream, asynchronous ones
 *   on a FIFO comm stream, waits, the gradient-norm all-reduce, the optimizer step, a closing
 *   barrier — built from the training setup; executing one step on the engine with busy/idle/
 *   comm accounting per rank and per phase; compute slowed by a factor while an asynchronous
 *   collective runs beside it (NCCL kernels take SMs and HBM bandwidth); timeline spans.
 *   With a pipeline (S stages x V chunks) every worker (stage, replica) runs its stage's list:
 *   Megatron-LM's 1F1B order (warm-up forwards, one-forward-one-backward, cool-down) or its
 *   interleaved order over V chunks, activations and gradients passed to the neighbouring
 *   virtual stage by eager sends (the receiver waits: bubble idle until the sender issued it,
 *   transfer comm after), each stage's gradients synchronised in its own DP group after its
 *   last backward (DDP all-reduce; SHARD_GRAD_OP = the distributed optimizer: reduce-scatter,
 *   optimizer on the shard, parameter all-gather), the gradient norm over every worker.
 *   Source: Narayanan et al. 2021 (arXiv 2104.04473) §2.2; Megatron-LM schedules.py
 *   (forward_backward_pipelining_with/without_interleaving).
 * Does not: compute costs (replay.c fills durations) or decide placements (policies).
 * Time: SimTime ns. Accounting invariant: for every rank, busy + idle + comm = step time.
 * idle = time lost to other ranks (arriving late at a collective); comm = exposed
 * communication this rank would have waited for even if every peer were as fast as it. */
#ifndef OS_PROGRAM_H
#define OS_PROGRAM_H

#include <stdint.h>
#include <stdio.h>

#include "sim/engine.h"

/* Tags for accounting: 0..P-1 are the phases; then these four. PIPE is the pipeline: waiting
 * for a neighbouring stage's activations or gradients (the bubble) and the transfers. */
#define PROG_TAG_SYNC(P) (P)
#define PROG_TAG_BALANCE(P) ((P) + 1)
#define PROG_TAG_OPTIM(P) ((P) + 2)
#define PROG_TAG_PIPE(P) ((P) + 3)
#define PROG_MAX_TAGS 10
#define PROG_ALL_STAGES 255 /* a collective of every worker (the step-end barrier) */
#define PROG_MAX_MB 4096 /* micro-batches per step */
#define PROG_MAX_GROUPS 1024 /* FSDP layer groups per module */
#define PROG_MAX_STAGES 254 /* pipeline stages (stage ids fit a byte beside PROG_ALL_STAGES) */

typedef enum { SHARD_DDP = 0, SHARD_FULL = 1, SHARD_GRAD_OP = 2 } ShardMode;

/* OP_SEND / OP_RECV: a pipeline transfer to / from the neighbouring virtual stage of the same
 * replica. Sends are eager (isend: the sender goes on, the bytes arrive dur later); a receive
 * waits until they have arrived. */
typedef enum { OP_COMPUTE = 0, OP_SYNC, OP_ASYNC, OP_WAIT, OP_SEND, OP_RECV } OpKind;

typedef struct {
    uint8_t kind;   /* OpKind */
    uint8_t tag;    /* phase or PROG_TAG_* */
    uint8_t pass;   /* COMPUTE: 0 forward, 1 backward, 2 balancer (host), 3 optimizer */
    uint16_t part;  /* COMPUTE: this op is part `part` of `nparts` of the pass */
    uint16_t nparts;
    uint16_t mb;    /* COMPUTE: micro-batch */
    uint16_t chunk; /* COMPUTE: model chunk (interleaved pipelines; 0 otherwise) */
    uint8_t idle_tag; /* SYNC/WAIT: the tag waiting here is charged to (tag, except at a
                         pipeline's all-stage barriers, where waiting is the flush: PIPE) */
    uint32_t coll;  /* SYNC/ASYNC/WAIT: collective index; SEND/RECV: transfer slot (the
                       replica's transfer is slot + replica * xfers_per_replica) */
    const char *name; /* "fwd", "bwd", "a2a-in", "allreduce", ... (static string) */
} Op;

typedef enum { COLL_FIXED = 0, COLL_A2A_IN, COLL_A2A_OUT, COLL_A2A_GRAD, COLL_LENGTHS } CollRole;

typedef struct {
    SimTime dur;       /* set per step for a2a/length collectives, once for gradient syncs */
    uint8_t async;     /* on the comm stream */
    uint8_t tag;
    uint8_t role;      /* CollRole */
    uint8_t enc;       /* COLL_A2A_IN: encoder index */
    uint16_t mb;       /* A2A roles: micro-batch */
    uint8_t stage;     /* the pipeline stage whose workers take part, or PROG_ALL_STAGES */
    uint32_t members;  /* workers taking part */
    const char *name;
    /* per-step state */
    uint32_t arrived;
    SimTime max_arr, start, end;
    int known;
    int32_t waiters;   /* head of the waiting ranks' list (RankRun.next_waiter), -1 = none */
    struct Prog *prog;
    /* per-step input for blocking collectives: start no earlier than colls[after].end +
     * after_delay (after = -1: no such bound). The replay uses it for post-balancing: the
     * host plans phase p while the GPUs run the phases before it, and phase p's all-to-all
     * cannot start before its plan exists. */
    int32_t after;
    SimTime after_delay;
} Coll;

/* One pipeline transfer of one replica (activations forward or gradients backward). */
typedef struct {
    SimTime dur;         /* set per step by the caller */
    SimTime sent;        /* when the sender issued it, or -1 */
    int32_t waiter;      /* the receiving worker parked on it, or -1 */
} Xfer;

typedef struct {
    /* hot: read on every op (kept together at the front: a replay of thousands of ranks walks
     * them all per collective, and the tag arrays below would push these into other lines) */
    uint32_t pc;
    uint32_t rank;       /* worker index: stage * D + replica */
    uint32_t stage, replica;
    SimTime t;           /* == engine now whenever the rank is advanced */
    SimTime wait_since;
    int32_t next_waiter;
    /* the compute op in flight (overlap slowdown) */
    int computing;
    SimTime comp_start, comp_full;
    struct Prog *prog;
    SimTime local_tail;    /* when this rank's comm stream would be free if no peer were late */
    SimTime busy, idle, comm;
    SimTime slowed;        /* compute time lost to the slowdown this step */
    /* the reference twin (Prog.ref_clock): work left at full speed since comp_t0, at comp_rate */
    double comp_rem;
    SimTime comp_t0;
    double comp_rate;      /* 1, or 1 - slowdown while a collective runs */
    EventId comp_ev;
    SimTime final_wait_at; /* when the rank reached the end-of-step gradient wait */
    SimTime tag_busy[PROG_MAX_TAGS], tag_idle[PROG_MAX_TAGS], tag_comm[PROG_MAX_TAGS];
} RankRun;

typedef struct {
    uint32_t rank;
    uint8_t tag;
    uint8_t kind;  /* 0 compute, 1 comm, 2 idle */
    uint8_t track; /* 0 the worker's compute stream (what it waits on); 1 its comm stream, where
                      asynchronous collectives run overlapped (timeline JSON only) */
    uint16_t mb;   /* compute: micro-batch */
    uint16_t part, nparts; /* compute: which FSDP layer group / DDP bucket of the pass */
    const char *name;
    SimTime start, end;
    double tokens, flops; /* compute: the micro-batch's tokens (every part of a pass runs them
                             all) and this part's model FLOPs (Prog.rec_*), else 0 */
} Span;

/* One in-flight slowed compute op on its stage's work-clock heap. */
typedef struct {
    double target;   /* Prog.wclk value at which its work is done */
    uint64_t seq;    /* insertion order: ties end in the order they started */
    uint32_t rank;
} ClockSlot;

typedef struct {
    struct Prog *prog;
    uint32_t stage;
} StageRef;

typedef struct Prog {
    uint32_t D, P, M;        /* data-parallel replicas, phases, micro-batches per step */
    uint32_t S, V, W;        /* pipeline stages, model chunks per stage, workers = S * D */
    int staged;              /* gradients synchronised per stage after its last backward (always
                                with S > 1; ProgSpec.stage_sync asks for it without a pipeline) */
    double slowdown;         /* [0, 1): compute speed lost while an async collective runs */
    int comm_active[PROG_MAX_STAGES]; /* async collectives running now, per stage's DP group */
    /* The overlap slowdown's work clock, per stage: every compute op in flight on a stage runs
     * at the stage's one rate (1, or 1 - slowdown while its DP group has a collective running),
     * so ops are targets on a clock of full-speed work, wclk at time wclk_t, and the stage
     * keeps one engine event, for the earliest target. A rate change moves that one event, not
     * every op's (the reference twin, ref_clock = 1, re-times every op: prog_set_reference). */
    double wclk[PROG_MAX_STAGES];
    SimTime wclk_t[PROG_MAX_STAGES];
    EventId wclk_ev[PROG_MAX_STAGES];
    uint32_t wclk_n[PROG_MAX_STAGES]; /* ops in the stage's heap */
    ClockSlot *wheap;        /* [W]: stage s's min-heap by (target, seq) is wheap[s * D ...] */
    StageRef sref[PROG_MAX_STAGES];
    uint64_t wseq;
    int ref_clock;
    Op *ops;                 /* every stage's ops: stage s's are [op_begin[s], op_begin[s+1]) */
    size_t n_ops, cap_ops;
    size_t op_begin[PROG_MAX_STAGES + 1];
    Xfer *xfers;             /* [D * xfers_per_replica] pipeline transfers */
    size_t n_xfers, xfers_per_replica;
    Coll *colls;
    size_t n_colls, cap_colls;
    uint32_t final_wait_op[PROG_MAX_STAGES]; /* each stage's end-of-step WAIT on its last
                                gradient collective (op index) */
    int32_t lengths_coll;    /* the length all-gather of post-balancing, or -1 */
    /* per-step inputs */
    const SimTime *dur;      /* [W * P * M * V * 2] compute time of worker w, phase p, micro-batch
                                k, chunk c, pass: dur[(((w * P + p) * M + k) * V + c) * 2 + pass] */
    SimTime balance_dur;     /* balancer op, same on every rank */
    SimTime stage_opt[PROG_MAX_STAGES]; /* the optimizer step of each stage's workers */
    /* per-step execution */
    RankRun *ranks;          /* [W] */
    SimTime *local_end;      /* [W * n_colls] end of async collective c had no peer been late:
                                waiting past it is idle (peers), up to it is exposed comm */
    Engine *engine;          /* borrowed */
    SimTime comm_tail[PROG_MAX_STAGES]; /* when each stage group's comm stream is free */
    SimTime step_start;
    OsStatus err;
    const char *err_what;    /* the op or collective an OS_ERR_RANGE is about */
    /* per-op annotations for the timeline, indexed like dur (may be NULL): tokens and model
     * FLOPs of each (worker, phase, micro-batch, chunk, pass) */
    const double *rec_tokens, *rec_flops;
    /* timeline recording (when record != 0) */
    int record;
    Span *spans;
    size_t n_spans, cap_spans;
} Prog;

typedef struct {
    uint32_t D, P;           /* replicas, phases (P-1 encoders then the LLM) */
    uint32_t M;              /* micro-batches per step (>= 1; 0 is read as 1) */
    /* pipeline (S = 1: none, the whole model on every worker) */
    uint32_t S, V;           /* stages, model chunks per stage (V > 1: interleaved 1F1B) */
    const uint8_t *on_vstage;/* [P * S * V] 1 when phase p has work on virtual stage v
                                (v = chunk * S + stage); NULL with S = V = 1 */
    const SimTime *stage_grad_dur; /* [S] one gradient bucket's collective of a stage's DP group */
    const SimTime *stage_ag_dur;   /* [S] SHARD_GRAD_OP: one bucket's parameter all-gather after
                                      the optimizer (the distributed optimizer's) */
    const SimTime *stage_opt_dur;  /* [S] the optimizer step on a stage's parameters */
    int stage_sync;          /* S = 1 too: Megatron-LM's gradient sync after the last backward
                                (DDP all-reduce, or the distributed optimizer's reduce-scatter +
                                parameter all-gather), no per-layer FSDP collectives */
    int fsdp;                /* ShardMode: 0 DDP buckets, 1 FSDP FULL_SHARD, 2 SHARD_GRAD_OP */
    const uint32_t *groups;  /* [P] FSDP layer groups per module (NULL: `group` for all) */
    uint32_t group;          /* FSDP layer groups per module when groups is NULL */
    uint32_t buckets;        /* DDP gradient buckets per module */
    int post;                /* post-balancing: balancer + length gather + all-to-alls */
    const SimTime *grad_coll_dur; /* [P] per module: duration of one gradient collective
                                     (one bucket all-reduce for DDP, one group AG/RS for FSDP) */
    const SimTime *rs_dur;   /* [P] FSDP: one group's reduce-scatter when it differs from the
                                all-gather (gradients reduced in another dtype); NULL = the same */
    SimTime clip_dur;        /* gradient-norm all-reduce before the optimizer (0: none) */
    SimTime opt_dur;         /* optimizer step (0: none) */
    double slowdown;         /* compute slowdown while an async collective runs, [0, 1) */
} ProgSpec;

OsStatus prog_create(Prog **out, const ProgSpec *spec);
void prog_destroy(Prog *p);
/* ref = 1: price the overlap slowdown with the slow, obvious twin (every in-flight compute op
 * cancelled and re-timed at every rate change) instead of the per-stage work clock; the two
 * agree (tests/test_program.c). */
void prog_set_reference(Prog *p, int ref);

/* Run one step starting at `start` on engine e (empty queue). dur: [W*P*M*V*2]. Coll durations
 * of roles other than COLL_FIXED, and every pipeline transfer's (prog_xfer), must be set by the
 * caller before. On return every rank's
 * accounting is filled and the step end is max over ranks of t. */
OsStatus prog_run_step(Prog *p, Engine *e, SimTime start, const SimTime *dur, SimTime balance_dur,
                       int record, SimTime *end);
/* Index in prog_run_step's dur array (and Prog.rec_*) of worker w's phase p, micro-batch k,
 * chunk c, pass (0 forward, 1 backward). */
static inline size_t prog_dur_index(const Prog *p, uint32_t w, uint32_t ph, uint32_t k, uint32_t c, int pass) {
    return ((((size_t)w * p->P + ph) * p->M + k) * p->V + c) * 2 + (size_t)pass;
}
/* Transfer slot of a pipeline message: micro-batch k between virtual stages v and v + 1
 * (dir 0: activations v -> v+1, dir 1: gradients v+1 -> v). */
static inline size_t prog_xfer_slot(const Prog *p, uint32_t k, uint32_t v, int dir) {
    return ((size_t)k * (p->S * p->V - 1) + v) * 2 + (size_t)dir;
}

/* The transfer of replica d in slot `slot`, whose dur the caller sets each step. */
static inline Xfer *prog_xfer(Prog *p, uint32_t d, size_t slot) {
    return &p->xfers[(size_t)d * p->xfers_per_replica + slot];
}

/* Write recorded spans: Chrome trace JSON (Perfetto / chrome://tracing) and a CSV beside it.
 * tag_names: [P+4] names for tags. One track per worker (stage, replica); node of a worker:
 * replica / dp_per_node within its stage's nodes. */
OsStatus prog_write_timeline(const Prog *p, const char *json_path, const char *csv_path,
                             const char *const *tag_names, uint32_t dp_per_node, const char *csv_meta,
                             const uint8_t *keep);
/* keep: [W] 1 for the workers whose tracks and spans are written, NULL = every worker. */
/* The workers a timeline of at most `per_stage` DP ranks per stage keeps, after a recorded
 * step: per stage the most and the least loaded replica (compute time, ties to the lower
 * replica) and per_stage evenly spaced ones (the first and the last included), so up to
 * per_stage + 2; per_stage = 0 or >= D keeps every worker. keep: [W]. Returns the replicas
 * kept in the fullest stage. */
uint32_t prog_timeline_sample(const Prog *p, uint32_t per_stage, uint8_t *keep);
/* csv_meta: "# key: value" lines written before the CSV's header (analysis/plot.h's
 * plot_timeline_meta names the keys the timeline figure titles its panels with), or NULL. */

#endif
