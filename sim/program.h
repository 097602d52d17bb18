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
 * Does not: compute costs (replay.c fills durations) or decide placements (policies).
 * Time: SimTime ns. Accounting invariant: for every rank, busy + idle + comm = step time.
 * idle = time lost to other ranks (arriving late at a collective); comm = exposed
 * communication this rank would have waited for even if every peer were as fast as it. */
#ifndef OS_PROGRAM_H
#define OS_PROGRAM_H

#include <stdint.h>
#include <stdio.h>

#include "sim/engine.h"

/* Tags for accounting: 0..P-1 are the phases; then these three. */
#define PROG_TAG_SYNC(P) (P)
#define PROG_TAG_BALANCE(P) ((P) + 1)
#define PROG_TAG_OPTIM(P) ((P) + 2)
#define PROG_MAX_TAGS 8
#define PROG_MAX_MB 4096 /* micro-batches per step */
#define PROG_MAX_GROUPS 1024 /* FSDP layer groups per module */

typedef enum { SHARD_DDP = 0, SHARD_FULL = 1, SHARD_GRAD_OP = 2 } ShardMode;

typedef enum { OP_COMPUTE = 0, OP_SYNC, OP_ASYNC, OP_WAIT } OpKind;

typedef struct {
    uint8_t kind;   /* OpKind */
    uint8_t tag;    /* phase or PROG_TAG_* */
    uint8_t pass;   /* COMPUTE: 0 forward, 1 backward, 2 balancer (host), 3 optimizer */
    uint16_t part;  /* COMPUTE: this op is part `part` of `nparts` of the pass */
    uint16_t nparts;
    uint16_t mb;    /* COMPUTE: micro-batch */
    uint32_t coll;  /* SYNC/ASYNC/WAIT: collective index */
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

typedef struct {
    uint32_t pc;
    SimTime t;           /* == engine now whenever the rank is advanced */
    SimTime wait_since;
    int32_t next_waiter;
    uint32_t rank;
    SimTime busy, idle, comm;
    SimTime tag_busy[PROG_MAX_TAGS], tag_idle[PROG_MAX_TAGS], tag_comm[PROG_MAX_TAGS];
    SimTime final_wait_at; /* when the rank reached the end-of-step gradient wait */
    SimTime local_tail;    /* when this rank's comm stream would be free if no peer were late */
    /* the compute op in flight (overlap slowdown): work left at full speed, since when */
    int computing;
    double comp_rem;       /* ns of full-speed work left at comp_t0 */
    SimTime comp_t0, comp_start, comp_full;
    double comp_rate;      /* 1, or 1 - slowdown while a collective runs */
    EventId comp_ev;
    SimTime slowed;        /* compute time lost to the slowdown this step */
    struct Prog *prog;
} RankRun;

typedef struct {
    uint32_t rank;
    uint8_t tag;
    uint8_t kind; /* 0 compute, 1 comm, 2 idle */
    const char *name;
    SimTime start, end;
} Span;

typedef struct Prog {
    uint32_t D, P, M;        /* ranks, phases, micro-batches per step */
    double slowdown;         /* [0, 1): compute speed lost while an async collective runs */
    int comm_active;         /* async collectives running now */
    Op *ops;
    size_t n_ops, cap_ops;
    Coll *colls;
    size_t n_colls, cap_colls;
    uint32_t final_wait_op;  /* index of the end-of-step WAIT on the last gradient collective */
    int32_t lengths_coll;    /* the length all-gather of post-balancing, or -1 */
    /* per-step inputs */
    const SimTime *dur;      /* [D * P * M * 2] compute time of rank r, phase p, micro-batch k,
                                pass (fwd/bwd): dur[((r * P + p) * M + k) * 2 + pass] */
    SimTime balance_dur;     /* balancer op, same on every rank */
    SimTime opt_dur;         /* optimizer step, same on every rank (set once) */
    /* per-step execution */
    RankRun *ranks;          /* [D] */
    SimTime *local_end;      /* [D * n_colls] end of async collective c had no peer been late:
                                waiting past it is idle (peers), up to it is exposed comm */
    Engine *engine;          /* borrowed */
    SimTime comm_tail;       /* when the comm stream's last collective ends */
    SimTime step_start;
    OsStatus err;
    /* timeline recording (when record != 0) */
    int record;
    Span *spans;
    size_t n_spans, cap_spans;
} Prog;

typedef struct {
    uint32_t D, P;           /* ranks, phases (P-1 encoders then the LLM) */
    uint32_t M;              /* micro-batches per step (>= 1; 0 is read as 1) */
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

/* Run one step starting at `start` on engine e (empty queue). dur: [D*P*M*2]. Coll durations
 * of roles other than COLL_FIXED must be set by the caller before. On return every rank's
 * accounting is filled and the step end is max over ranks of t. */
OsStatus prog_run_step(Prog *p, Engine *e, SimTime start, const SimTime *dur, SimTime balance_dur,
                       int record, SimTime *end);

/* Write recorded spans: Chrome trace JSON (Perfetto / chrome://tracing) and a CSV beside it.
 * tag_names: [P+3] names for tags. node_of: DP rank -> node. */
OsStatus prog_write_timeline(const Prog *p, const char *json_path, const char *csv_path,
                             const char *const *tag_names, uint32_t dp_per_node);

#endif
