/* test_engine.c — event order (time, then insertion), cancel + finalizers, stop/fail, the
 * heap against its naive twin on a randomized schedule, and determinism. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine.h"

#define LOG_CAP 20000

typedef struct {
    SimTime t[LOG_CAP];
    uint64_t tag[LOG_CAP];
    size_t n;
    int finalized;
    uint64_t fin_tags[64];
} Log;

/* One event's data: the log it writes to and its tag. Heap-allocated so finalizers and
 * handlers can free it, which ASan then checks is done exactly once. */
typedef struct {
    Log *log;
    uint64_t tag;
} Ev;

static Ev *ev(Log *log, uint64_t tag) {
    Ev *v = malloc(sizeof *v);
    cr_assert(v);
    v->log = log;
    v->tag = tag;
    return v;
}

static void log_push(Log *log, SimTime t, uint64_t tag) {
    cr_assert_lt(log->n, LOG_CAP);
    log->t[log->n] = t;
    log->tag[log->n++] = tag;
}

static void on_log(Engine *e, EventId id, void *data) {
    (void)id;
    Ev *v = data;
    log_push(v->log, engine_now(e), v->tag);
    free(v); /* the handler owns data once it runs */
}

static void fin_free(Engine *e, void *data) {
    (void)e;
    Ev *v = data;
    if (v->log->finalized < 64) v->log->fin_tags[v->log->finalized] = v->tag;
    v->log->finalized++;
    free(v);
}

static Engine *mk(EngineKind k) {
    Engine *e = NULL;
    cr_assert_eq(engine_create(&e, k, 4), OS_OK);
    return e;
}

static void order_by_time_then_insertion(EngineKind k) {
    Engine *e = mk(k);
    Log log = {0};
    const SimTime ts[] = {30, 10, 20, 10, 10};
    for (uint64_t i = 0; i < 5; i++)
        cr_assert_neq(engine_at(e, ts[i], on_log, ev(&log, i), fin_free), 0);
    cr_assert_eq(engine_pending(e), 5);
    cr_assert_eq(engine_run(e), OS_OK);
    const uint64_t want[] = {1, 3, 4, 2, 0};
    const SimTime want_t[] = {10, 10, 10, 20, 30};
    cr_assert_eq(log.n, 5);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(log.tag[i], want[i], "position %zu", i);
        cr_assert_eq(log.t[i], want_t[i]);
    }
    cr_assert_eq(engine_now(e), 30);
    cr_assert_eq(engine_events_processed(e), 5);
    cr_assert_eq(engine_pending(e), 0);
    cr_assert_eq(log.finalized, 0, "finalizers must not run after a normal run");
    engine_destroy(e);
}
Test(engine, order_heap) { order_by_time_then_insertion(ENGINE_HEAP); }
Test(engine, order_naive) { order_by_time_then_insertion(ENGINE_NAIVE); }

/* A's handler schedules C "now" and D in the past (clamped to now): both run after B, which
 * was already queued at the same time. */
static void on_a(Engine *e, EventId id, void *data) {
    Ev *v = data;
    on_log(e, id, ev(v->log, v->tag));
    cr_assert_neq(engine_at(e, engine_now(e), on_log, ev(v->log, 'C'), fin_free), 0);
    cr_assert_neq(engine_at(e, 1, on_log, ev(v->log, 'D'), fin_free), 0);
    free(v);
}

static void same_time_from_handler(EngineKind k) {
    Engine *e = mk(k);
    Log log = {0};
    engine_at(e, 5, on_a, ev(&log, 'A'), fin_free);
    engine_at(e, 5, on_log, ev(&log, 'B'), fin_free);
    engine_at(e, 6, on_log, ev(&log, 'E'), fin_free);
    cr_assert_eq(engine_run(e), OS_OK);
    const uint64_t want[] = {'A', 'B', 'C', 'D', 'E'};
    const SimTime want_t[] = {5, 5, 5, 5, 6};
    cr_assert_eq(log.n, 5);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(log.tag[i], want[i], "position %zu: %c", i, (char)log.tag[i]);
        cr_assert_eq(log.t[i], want_t[i]);
    }
    engine_destroy(e);
}
Test(engine, same_time_from_handler_heap) { same_time_from_handler(ENGINE_HEAP); }
Test(engine, same_time_from_handler_naive) { same_time_from_handler(ENGINE_NAIVE); }

static EventId self_id;
static void on_cancel_self(Engine *e, EventId id, void *data) {
    self_id = id;
    engine_cancel(e, id); /* already running: a no-op */
    on_log(e, id, data);
}

static void cancel_drops_and_finalizes(EngineKind k) {
    Engine *e = mk(k);
    Log log = {0};
    EventId a = engine_at(e, 1, on_log, ev(&log, 1), fin_free);
    EventId b = engine_at(e, 2, on_log, ev(&log, 2), fin_free);
    EventId c = engine_at(e, 3, on_cancel_self, ev(&log, 3), fin_free);
    cr_assert(a && b && c && a != b && b != c);
    engine_cancel(e, b);
    engine_cancel(e, b); /* twice: still one drop, one finalizer */
    cr_assert_eq(engine_pending(e), 2);
    cr_assert_eq(engine_run(e), OS_OK);
    cr_assert_eq(log.n, 2);
    cr_assert_eq(log.tag[0], 1);
    cr_assert_eq(log.tag[1], 3);
    cr_assert_eq(self_id, c);
    cr_assert_eq(log.finalized, 1);
    cr_assert_eq(log.fin_tags[0], 2);
    cr_assert_eq(engine_events_processed(e), 2);
    /* stale ids (the events ran or were dropped, their slots are reused) do nothing */
    EventId d = engine_at(e, 10, on_log, ev(&log, 4), fin_free);
    engine_cancel(e, a);
    engine_cancel(e, b);
    engine_cancel(e, 0);
    engine_cancel(e, (EventId)1 << 40);
    cr_assert_eq(engine_pending(e), 1);
    cr_assert_neq(d, a);
    cr_assert_eq(engine_run(e), OS_OK);
    cr_assert_eq(log.n, 3);
    cr_assert_eq(log.finalized, 1);
    engine_destroy(e);
}
Test(engine, cancel_heap) { cancel_drops_and_finalizes(ENGINE_HEAP); }
Test(engine, cancel_naive) { cancel_drops_and_finalizes(ENGINE_NAIVE); }

Test(engine, destroy_finalizes_queued) {
    Engine *e = mk(ENGINE_HEAP);
    Log log = {0};
    for (uint64_t i = 0; i < 10; i++) engine_at(e, (SimTime)i, on_log, ev(&log, i), fin_free);
    EventId x = engine_at(e, 100, on_log, ev(&log, 99), fin_free);
    engine_cancel(e, x); /* cancelled but not yet dropped: finalized once at destroy */
    engine_destroy(e);
    cr_assert_eq(log.n, 0);
    cr_assert_eq(log.finalized, 11);
    engine_destroy(NULL);
}

static void on_fail(Engine *e, EventId id, void *data) {
    on_log(e, id, data);
    engine_fail(e, OS_ERR_IO);
    engine_fail(e, OS_ERR_ARG); /* the first failure is the one reported */
}
static void on_stop(Engine *e, EventId id, void *data) {
    on_log(e, id, data);
    engine_stop(e);
}

Test(engine, fail_stops_with_status) {
    Engine *e = mk(ENGINE_HEAP);
    Log log = {0};
    engine_at(e, 1, on_log, ev(&log, 1), fin_free);
    engine_at(e, 2, on_fail, ev(&log, 2), fin_free);
    engine_at(e, 3, on_log, ev(&log, 3), fin_free);
    cr_assert_eq(engine_run(e), OS_ERR_IO);
    cr_assert_eq(log.n, 2);
    cr_assert_eq(engine_pending(e), 1);
    cr_assert_eq(engine_now(e), 2);
    engine_destroy(e); /* finalizes event 3 */
    cr_assert_eq(log.finalized, 1);
}

Test(engine, stop_then_resume) {
    Engine *e = mk(ENGINE_NAIVE);
    Log log = {0};
    engine_at(e, 1, on_stop, ev(&log, 1), fin_free);
    engine_at(e, 2, on_log, ev(&log, 2), fin_free);
    cr_assert_eq(engine_run(e), OS_OK);
    cr_assert_eq(log.n, 1);
    cr_assert_eq(engine_run(e), OS_OK);
    cr_assert_eq(log.n, 2);
    cr_assert_eq(log.tag[1], 2);
    engine_destroy(e);
}

Test(engine, null_handler_rejected) {
    Engine *e = mk(ENGINE_HEAP);
    os_clear_error();
    cr_assert_eq(engine_at(e, 1, NULL, NULL, NULL), 0);
    cr_assert(os_has_error());
    cr_assert_eq(engine_run(e), OS_ERR_ARG);
    engine_destroy(e);
}

Test(engine, grows_from_tiny_hint) {
    Engine *e = NULL;
    cr_assert_eq(engine_create(&e, ENGINE_HEAP, 1), OS_OK);
    static Log log;
    memset(&log, 0, sizeof log);
    for (uint64_t i = 0; i < 10000; i++)
        cr_assert_neq(engine_at(e, (SimTime)((i * 7919) % 10000), on_log, ev(&log, i), fin_free),
                      0);
    cr_assert_eq(engine_pending(e), 10000);
    cr_assert_eq(engine_run(e), OS_OK);
    cr_assert_eq(log.n, 10000);
    for (size_t i = 0; i < log.n; i++) cr_assert_eq(log.t[i], (SimTime)i); /* 7919 is coprime */
    engine_destroy(e);
}

Test(engine, sim_from_seconds_rounds) {
    cr_assert_eq(sim_from_seconds(1.0), SIM_NS_PER_S);
    cr_assert_eq(sim_from_seconds(1e-9), 1);
    cr_assert_eq(sim_from_seconds(0.4e-9), 0);
    cr_assert_eq(sim_from_seconds(0.6e-9), 1);
    cr_assert_eq(sim_from_seconds(1.2345678914), 1234567891);
    cr_assert_eq(sim_from_seconds(2.9999999996), 3000000000);
    cr_assert_eq(sim_from_seconds(-1.0), 0);
    cr_assert_eq(sim_from_seconds(NAN), 0);
    cr_assert_eq(sim_from_seconds(1e30), SIM_TIME_MAX);
    cr_assert_float_eq(sim_to_seconds(1500000000), 1.5, 1e-15);
}

/* Crossing the 2^38 insertion-counter limit renumbers the queue without changing the order,
 * including from inside a handler (when the popped key's place is a hole). */
static void on_sched_two(Engine *e, EventId id, void *data) {
    Ev *v = data;
    Log *log = v->log;
    on_log(e, id, data);
    if (log->n == 1) {
        engine_debug_set_seq(e, 1ull << 38);
        engine_at(e, 7, on_log, ev(log, 100), fin_free); /* renumbers, closing the hole first */
        engine_at(e, 7, on_log, ev(log, 101), fin_free);
        engine_at(e, 6, on_log, ev(log, 102), fin_free);
        engine_debug_set_seq(e, (1ull << 38) - 1);
        engine_at(e, 8, on_log, ev(log, 103), fin_free); /* the last seq before the limit */
        engine_at(e, 8, on_log, ev(log, 104), fin_free); /* renumbers with no hole */
    }
}

static void seq_renumber(EngineKind k) {
    Engine *e = mk(k);
    Log log = {0};
    engine_at(e, 5, on_sched_two, ev(&log, 1), fin_free);
    engine_at(e, 7, on_log, ev(&log, 2), fin_free);
    engine_at(e, 6, on_log, ev(&log, 3), fin_free);
    engine_at(e, 7, on_log, ev(&log, 4), fin_free);
    cr_assert_eq(engine_run(e), OS_OK);
    const uint64_t want[] = {1, 3, 102, 2, 4, 100, 101, 103, 104};
    cr_assert_eq(log.n, 9);
    for (size_t i = 0; i < 9; i++) cr_assert_eq(log.tag[i], want[i], "position %zu", i);
    engine_destroy(e);
}
Test(engine, seq_renumber_heap) { seq_renumber(ENGINE_HEAP); }
Test(engine, seq_renumber_naive) { seq_renumber(ENGINE_NAIVE); }

/* ---- randomized schedule: heap vs naive, and run-to-run determinism ------------------------ */

#define RAND_EVENTS 4000
typedef struct {
    Log log;
    uint64_t rng;
    uint64_t next_tag;
    EventId ids[RAND_EVENTS * 4]; /* by tag */
    uint64_t fired;
} World;

static uint64_t rnd(World *w) { /* xorshift64* */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ull;
}

static void on_rand(Engine *e, EventId id, void *data);

static void sched(Engine *e, World *w, SimTime t) {
    uint64_t tag = w->next_tag++;
    Ev *v = ev(&w->log, tag);
    w->ids[tag] = engine_at(e, t, on_rand, v, fin_free);
    cr_assert_neq(w->ids[tag], 0);
}

static void on_rand(Engine *e, EventId id, void *data) {
    World *w = (World *)(void *)((Ev *)data)->log; /* log is World's first member */
    on_log(e, id, data);
    if (++w->fired >= RAND_EVENTS) return;
    /* 0-2 follow-ups, often at "now" (ties), sometimes cancel an earlier event */
    uint64_t r = rnd(w);
    for (uint64_t k = 0; k < r % 3; k++) sched(e, w, engine_now(e) + (SimTime)(rnd(w) % 4) * 5);
    if (r % 7 == 0 && w->next_tag) engine_cancel(e, w->ids[rnd(w) % w->next_tag]);
}

static void run_world(World *w, EngineKind k, uint64_t seed) {
    memset(w, 0, sizeof *w);
    w->rng = seed;
    Engine *e = mk(k);
    for (int i = 0; i < 600; i++) sched(e, w, (SimTime)(rnd(w) % 200));
    cr_assert_eq(engine_run(e), OS_OK);
    engine_destroy(e);
    cr_assert_gt(w->log.n, 1000);
    for (size_t i = 1; i < w->log.n; i++) cr_assert_geq(w->log.t[i], w->log.t[i - 1]);
}

Test(engine, heap_matches_naive_randomized) {
    static World a, b;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        run_world(&a, ENGINE_HEAP, seed * 0x9e3779b97f4a7c15ull);
        run_world(&b, ENGINE_NAIVE, seed * 0x9e3779b97f4a7c15ull);
        cr_assert_eq(a.log.n, b.log.n);
        cr_assert_eq(memcmp(a.log.t, b.log.t, a.log.n * sizeof a.log.t[0]), 0);
        cr_assert_eq(memcmp(a.log.tag, b.log.tag, a.log.n * sizeof a.log.tag[0]), 0);
        cr_assert_eq(a.log.finalized, b.log.finalized);
        cr_assert_gt(a.log.finalized, 0, "the schedule should cancel something");
        /* every event scheduled either ran or was finalized, exactly once */
        cr_assert_eq(a.log.n + (size_t)a.log.finalized, a.next_tag);
    }
}

Test(engine, deterministic_across_runs) {
    static World a, b;
    run_world(&a, ENGINE_HEAP, 42);
    run_world(&b, ENGINE_HEAP, 42);
    cr_assert_eq(a.log.n, b.log.n);
    cr_assert_eq(memcmp(a.log.tag, b.log.tag, a.log.n * sizeof a.log.tag[0]), 0);
    cr_assert_eq(memcmp(a.log.t, b.log.t, a.log.n * sizeof a.log.t[0]), 0);
}
