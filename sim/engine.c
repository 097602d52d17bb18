/* engine.c — discrete-event engine (contract: engine.h).
 * Layout: event records live in a slot table (flat array + free list, grown by doubling, so no
 * allocation per event once it has grown); the queue holds (time, seq, slot) keys. Two queue
 * kinds behind one small ops table:
 *   ENGINE_HEAP  — binary min-heap on (time, seq): O(log n) push and pop.
 *   ENGINE_NAIVE — unsorted array, pop scans for the minimum: O(n) per pop. This is Redis
 *                  ae.c's original timer list and the slow reference twin of the heap.
 * EventId = (slot generation << 32) | (slot + 1): cancel finds the slot in O(1), and an id
 * whose slot was freed and reused no longer matches (its generation moved on), so cancelling
 * a finished event is a harmless no-op.
 * Ownership of `data`: the finalizer runs when an event is dropped without running (cancelled
 * and popped, or still queued at engine_destroy). When an event runs, its handler owns data
 * from then on and the finalizer is NOT called. */
#include "sim/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* A queue key is 16 bytes, (time, seq << SLOT_BITS | slot), four to a cache line: at 20k
 * pending events the heap and the slot table then stay inside a 1 MB L2 (24-byte keys did
 * not, and ran ~15-20% slower in bench_engine). seq is unique, so ordering on the packed
 * word is ordering on (time, seq). Limits: 2^26 (67M) pending events; seq renumbers itself
 * (engine_renumber) before it reaches 2^38. */
#define SLOT_BITS 26
#define SLOT_MASK ((1ull << SLOT_BITS) - 1)
#define SEQ_LIMIT (1ull << (64 - SLOT_BITS))
typedef struct {
    SimTime t;
    uint64_t ord; /* seq << SLOT_BITS | slot; seq = insertion counter, ties run in order */
} QKey;

typedef struct {
    EventFn *fn; /* NULL while the slot is free */
    void *data;
    EventFinalizer *fin;
    uint32_t gen; /* bumped when the slot is freed; part of the EventId */
    union {
        uint32_t cancelled; /* live slot: 1 = drop (finalize) instead of run when popped */
        uint32_t next_free; /* free slot: free-list link */
    } u;
} Slot; /* 32 bytes */

#define SLOT_NONE UINT32_MAX

/* A queue kind: `take` returns the minimum key and leaves its place as a hole (still counted
 * in qlen); `push` fills the hole if there is one, else appends; `close` removes a hole that
 * no push filled. The hole lets the common "handler schedules its own follow-up" pattern cost
 * one sift instead of a pop and a push (heapreplace). */
typedef struct {
    void (*push)(Engine *e, QKey k);
    QKey (*take)(Engine *e); /* queue not empty, no hole */
    void (*close)(Engine *e);
} QueueOps;

struct Engine {
    const QueueOps *ops;
    QKey *q;      /* [qcap] heap or unsorted array of qlen keys (a hole counts) */
    size_t qlen, qcap;
    size_t hole;  /* index of the hole, or NO_HOLE */
    Slot *slots;  /* [scap] */
    size_t scap;
    uint32_t free_head;
    SimTime now;  /* ns */
    uint64_t seq;
    uint64_t processed;
    size_t cancelled_queued; /* cancelled events still in the queue */
    int stop;
    OsStatus status; /* set by engine_fail (or an allocation failure), returned by run */
};

#define NO_HOLE SIZE_MAX

/* Bitwise, not short-circuit: the compiler turns it into flag arithmetic with no branch, and
 * which child is smaller is a coin flip the branch predictor cannot learn. */
static inline size_t key_less(QKey a, QKey b) {
    return (size_t)((a.t < b.t) | ((a.t == b.t) & (a.ord < b.ord)));
}

/* ---- binary heap --------------------------------------------------------------------------- */

static inline void heap_sift_up(QKey *q, size_t i, QKey k) {
    while (i > 0) { /* move parents down into the hole */
        size_t p = (i - 1) / 2;
        if (!key_less(k, q[p])) break;
        q[i] = q[p];
        i = p;
    }
    q[i] = k;
}

/* Put k into the hole at the root of a heap of n keys. Bottom-up (Wegener): walk the hole
 * down to a leaf along the smaller children (one compare per level), then sift k up from
 * there. A new key usually belongs deep in the heap, so this beats the textbook sift-down's
 * two compares per level. */
static inline void heap_fill_root(QKey *q, size_t n, QKey k) {
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l + 1 >= n) {
            if (l + 1 == n) { /* a lone last child */
                q[i] = q[l];
                i = l;
            }
            break;
        }
        size_t m = l + key_less(q[l + 1], q[l]);
        q[i] = q[m];
        i = m;
    }
    heap_sift_up(q, i, k);
}

static void heap_push(Engine *e, QKey k) {
    if (e->hole != NO_HOLE) { /* the hole is the root: replace-top */
        e->hole = NO_HOLE;
        heap_fill_root(e->q, e->qlen, k);
        return;
    }
    heap_sift_up(e->q, e->qlen++, k);
}

static QKey heap_take(Engine *e) {
    e->hole = 0;
    return e->q[0];
}

static void heap_close(Engine *e) {
    e->hole = NO_HOLE;
    QKey last = e->q[--e->qlen];
    if (e->qlen) heap_fill_root(e->q, e->qlen, last);
}

/* ---- naive twin: unsorted array, linear scan ------------------------------------------------ */

static void naive_push(Engine *e, QKey k) {
    if (e->hole != NO_HOLE) {
        e->q[e->hole] = k;
        e->hole = NO_HOLE;
        return;
    }
    e->q[e->qlen++] = k;
}

static QKey naive_take(Engine *e) {
    size_t best = 0;
    for (size_t i = 1; i < e->qlen; i++)
        if (key_less(e->q[i], e->q[best])) best = i;
    e->hole = best;
    return e->q[best];
}

static void naive_close(Engine *e) {
    e->q[e->hole] = e->q[--e->qlen];
    e->hole = NO_HOLE;
}

/* Registry of queue kinds, indexed by EngineKind. */
static const QueueOps QUEUES[] = {
    [ENGINE_HEAP] = {heap_push, heap_take, heap_close},
    [ENGINE_NAIVE] = {naive_push, naive_take, naive_close},
};

/* ---- slots --------------------------------------------------------------------------------- */

/* Make the slot table and queue hold at least `n` events. */
static OsStatus engine_reserve(Engine *e, size_t n) {
    OsStatus st = OS_OK;
    if (n > (size_t)SLOT_MASK + 1)
        OS_FAIL(OS_ERR_RANGE, "engine", "pending events", "fewer than 2^26 pending events",
                "%zu pending events", n);
    size_t old = e->scap;
    OS_CHECK(os_grow((void **)&e->slots, &e->scap, n, sizeof *e->slots));
    OS_CHECK(os_grow((void **)&e->q, &e->qcap, n, sizeof *e->q));
    if (e->scap > (size_t)SLOT_MASK + 1) e->scap = (size_t)SLOT_MASK + 1; /* ids must fit */
    /* Thread the new slots onto the free list, lowest index first. */
    for (size_t i = e->scap; i-- > old;) {
        e->slots[i] = (Slot){.gen = 1, .u.next_free = e->free_head};
        e->free_head = (uint32_t)i;
    }
fail:
    return st;
}

static inline void slot_free(Engine *e, uint32_t s) {
    Slot *sl = &e->slots[s];
    sl->gen++;
    if (sl->gen == 0) sl->gen = 1; /* keep ids non-zero after 2^32 reuses */
    sl->fn = NULL;
    sl->data = NULL;
    sl->fin = NULL;
    sl->u.next_free = e->free_head;
    e->free_head = s;
}

/* ---- API ----------------------------------------------------------------------------------- */

SimTime sim_from_seconds(double s) {
    if (!(s > 0)) return 0; /* negative, zero and NaN */
    double ns = s * (double)SIM_NS_PER_S;
    if (ns >= 9.2e18) return SIM_TIME_MAX; /* just under INT64_MAX: llround would overflow */
    return (SimTime)llround(ns);
}

OsStatus engine_create(Engine **out, EngineKind kind, size_t capacity_hint) {
    OsStatus st = OS_OK;
    Engine *e = NULL;
    *out = NULL;
    if ((unsigned)kind >= OS_ARRAY_LEN(QUEUES))
        OS_FAIL(OS_ERR_ARG, "engine", "kind", "use ENGINE_HEAP or ENGINE_NAIVE",
                "unknown engine kind %d", (int)kind);
    e = calloc(1, sizeof *e);
    ALLOC_CHECK(e);
    e->ops = &QUEUES[kind];
    e->hole = NO_HOLE;
    e->free_head = SLOT_NONE;
    OS_CHECK(engine_reserve(e, capacity_hint ? capacity_hint : 64));
    *out = e;
    return OS_OK;
fail:
    engine_destroy(e);
    return st;
}

void engine_destroy(Engine *e) {
    if (!e) return;
    /* Events still queued never ran: their data is still ours to hand to the finalizer. */
    for (size_t i = 0; i < e->qlen; i++) {
        if (i == e->hole) continue; /* destroyed from inside a handler: that event ran */
        Slot *sl = &e->slots[e->q[i].ord & SLOT_MASK];
        if (sl->fin) sl->fin(e, sl->data);
    }
    free(e->q);
    free(e->slots);
    free(e);
}

static int key_cmp(const void *pa, const void *pb) {
    QKey a = *(const QKey *)pa, b = *(const QKey *)pb;
    return (int)key_less(b, a) - (int)key_less(a, b);
}

/* seq is about to overflow its 38 bits (2.7e11 schedules): sort the queued keys and number
 * them 0..n-1 in order. A sorted array is a valid heap and a valid unsorted list, so both
 * kinds carry on. O(n log n), once per 2^38 schedules. */
static void engine_renumber(Engine *e) {
    if (e->hole != NO_HOLE) e->ops->close(e);
    qsort(e->q, e->qlen, sizeof *e->q, key_cmp);
    for (size_t i = 0; i < e->qlen; i++)
        e->q[i].ord = ((uint64_t)i << SLOT_BITS) | (e->q[i].ord & SLOT_MASK);
    e->seq = e->qlen;
}

void engine_debug_set_seq(Engine *e, uint64_t seq) {
    if (seq <= SEQ_LIMIT && seq >= e->seq) e->seq = seq;
}

EventId engine_at(Engine *e, SimTime t, EventFn *fn, void *data, EventFinalizer *fin) {
    if (!fn) {
        os_fail(OS_ERR_ARG, "engine", "engine_at", "pass a handler", "NULL event handler");
        engine_fail(e, OS_ERR_ARG);
        return 0;
    }
    if (e->free_head == SLOT_NONE) {
        /* double; near the id limit ask for one more (reserve clamps, or fails when full) */
        size_t want = e->scap * 2 > (size_t)SLOT_MASK + 1 ? e->scap + 1 : e->scap * 2;
        OsStatus st = engine_reserve(e, want);
        if (st != OS_OK) {
            engine_fail(e, st);
            return 0;
        }
    }
    if (t < e->now) t = e->now;
    if (e->seq == SEQ_LIMIT) engine_renumber(e);
    uint32_t s = e->free_head;
    Slot *sl = &e->slots[s];
    e->free_head = sl->u.next_free;
    sl->fn = fn;
    sl->data = data;
    sl->fin = fin;
    sl->u.cancelled = 0;
    e->ops->push(e, (QKey){t, (e->seq++ << SLOT_BITS) | s});
    return ((EventId)sl->gen << 32) | ((EventId)s + 1);
}

void engine_cancel(Engine *e, EventId id) {
    uint64_t s1 = id & 0xffffffffu;
    if (s1 == 0 || s1 > e->scap) return;
    Slot *sl = &e->slots[s1 - 1];
    /* A freed slot has fn == NULL; a reused one has a different generation. */
    if (!sl->fn || sl->gen != (uint32_t)(id >> 32) || sl->u.cancelled) return;
    sl->u.cancelled = 1;
    e->cancelled_queued++;
}

SimTime engine_now(const Engine *e) { return e->now; }

OsStatus engine_run(Engine *e) {
    const QueueOps *ops = e->ops;
    e->stop = 0;
    while (e->qlen && !e->stop && e->status == OS_OK) {
        QKey k = ops->take(e);
        uint32_t slot = (uint32_t)(k.ord & SLOT_MASK);
        Slot *sl = &e->slots[slot];
        EventFn *fn = sl->fn;
        void *data = sl->data;
        EventId id = ((EventId)sl->gen << 32) | ((EventId)slot + 1);
        if (sl->u.cancelled) {
            EventFinalizer *fin = sl->fin;
            ops->close(e);
            e->cancelled_queued--;
            slot_free(e, slot);
            if (fin) fin(e, data);
            continue;
        }
        /* Free the slot before the call: the handler may schedule into it, and owns data.
         * The key's place stays a hole during the call for the handler's first engine_at. */
        slot_free(e, slot);
        e->now = k.t;
        e->processed++;
        fn(e, id, data);
        if (e->hole != NO_HOLE) ops->close(e);
    }
    OsStatus st = e->status;
    e->status = OS_OK; /* reported once; a later run starts clean */
    return st;
}

void engine_stop(Engine *e) { e->stop = 1; }

void engine_fail(Engine *e, OsStatus st) {
    if (e->status == OS_OK) e->status = st; /* the first failure is the cause */
    e->stop = 1;
}

uint64_t engine_events_processed(const Engine *e) { return e->processed; }

size_t engine_pending(const Engine *e) {
    return e->qlen - (e->hole != NO_HOLE) - e->cancelled_queued;
}
