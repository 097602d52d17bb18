/* program.h — the per-rank step program and its execution on the event engine (private to
 * replay.c; tests use it through replay_run).
 * Implements: the op list every DP rank runs each step (compute ops with per-rank durations,
 *   blocking collectives on the compute stream, asynchronous collectives on a FIFO comm stream,
 *   waits, a closing barrier), built once per replay from the training setup; executing one
 *   step on the engine with busy/idle/comm accounting per rank and per phase; timeline spans.
 * Does not: compute costs (replay.c fills durations) or decide placements (policies).
 * Time: SimTime ns. Accounting invariant: for every rank, busy + idle + comm = step time.
 * idle = time lost to other ranks (arriving late at a collective); comm = exposed
 * communication this rank would have waited for even if every peer were as fast as it. */
#ifndef OS_PROGRAM_H
#define OS_PROGRAM_H

#include <stdint.h>
#include <stdio.h>

#include "sim/engine.h"

/* Tags for accounting: 0..P-1 are the phases; then these two. */
#define PROG_TAG_SYNC(P) (P)
#define PROG_TAG_BALANCE(P) ((P) + 1)
#define PROG_MAX_TAGS 8

typedef enum { OP_COMPUTE = 0, OP_SYNC, OP_ASYNC, OP_WAIT } OpKind;

typedef struct {
    uint8_t kind;   /* OpKind */
    uint8_t tag;    /* phase or PROG_TAG_* */
    uint8_t pass;   /* COMPUTE: 0 forward, 1 backward, 2 balancer */
    uint16_t part;  /* COMPUTE: this op is part `part` of `nparts` of the pass */
    uint16_t nparts;
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
    uint32_t D, P;
    Op *ops;
    size_t n_ops, cap_ops;
    Coll *colls;
    size_t n_colls, cap_colls;
    uint32_t final_wait_op;  /* index of the end-of-step WAIT on the last gradient collective */
    int32_t lengths_coll;    /* the length all-gather of post-balancing, or -1 */
    /* per-step inputs */
    const SimTime *dur;      /* [D * P * 2] compute time of rank r, phase p, pass (fwd/bwd) */
    SimTime balance_dur;     /* balancer op, same on every rank */
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
    int fsdp;                /* 0: DDP buckets, 1: FSDP layer groups */
    uint32_t groups;         /* FSDP layer groups per module */
    uint32_t buckets;        /* DDP gradient buckets per module */
    int post;                /* post-balancing: balancer + length gather + all-to-alls */
    const SimTime *grad_coll_dur; /* [P] per module: duration of one gradient collective
                                     (one bucket all-reduce for DDP, one group AG/RS for FSDP) */
} ProgSpec;

OsStatus prog_create(Prog **out, const ProgSpec *spec);
void prog_destroy(Prog *p);

/* Run one step starting at `start` on engine e (empty queue). dur: [D*P*2]. Coll durations of
 * roles other than COLL_FIXED must be set by the caller before. On return every rank's
 * accounting is filled and the step end is max over ranks of t. */
OsStatus prog_run_step(Prog *p, Engine *e, SimTime start, const SimTime *dur, SimTime balance_dur,
                       int record, SimTime *end);

/* Write recorded spans: Chrome trace JSON (Perfetto / chrome://tracing) and a CSV beside it.
 * tag_names: [P+2] names for tags. node_of: DP rank -> node. */
OsStatus prog_write_timeline(const Prog *p, const char *json_path, const char *csv_path,
                             const char *const *tag_names, uint32_t dp_per_node);

#endif
