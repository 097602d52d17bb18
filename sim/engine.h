/* engine.h — the discrete-event engine: a binary heap of timed events (Redis ae's shape).
 * Implements: engine_create/destroy, engine_at (schedule), lazy cancel by marking, finalizers
 *   that own event data, engine_run. Order is (time, seq): seq is an insertion counter, so
 *   ties resolve the same way on every run and an event scheduled "now" from a handler runs
 *   after those already queued. O(log n) per event; no allocation per event once the heap
 *   has grown. A naive twin (O(n) scan of an unsorted array, ae's original) shares the API
 *   for the reference test: engine_create(..., ENGINE_NAIVE).
 * Does not: know about ranks, ops or collectives (replay.h builds those on top).
 * Time: SimTime, integer nanoseconds — the one time unit of the simulator. */
#ifndef OS_ENGINE_H
#define OS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef int64_t SimTime;              /* nanoseconds */
#define SIM_NS_PER_S 1000000000LL
#define SIM_TIME_MAX INT64_MAX
/* seconds -> SimTime, rounded to the nearest ns; negative/NaN -> 0 */
SimTime sim_from_seconds(double s);
static inline double sim_to_seconds(SimTime t) { return (double)t * 1e-9; }

/* Ownership of `data`: the finalizer (may be NULL) runs when an event is dropped without
 * running — cancelled and reached the top, or still queued at engine_destroy. Once an event
 * runs, its handler owns data and the finalizer is not called. A handler may schedule and
 * cancel events; it must not call engine_destroy or engine_run. */
typedef uint64_t EventId; /* 0 = invalid; stale ids (event ran or was dropped) are ignored */
typedef struct Engine Engine;
typedef void EventFn(Engine *e, EventId id, void *data);
typedef void EventFinalizer(Engine *e, void *data);

typedef enum { ENGINE_HEAP = 0, ENGINE_NAIVE = 1 } EngineKind;

OsStatus engine_create(Engine **out, EngineKind kind, size_t capacity_hint);
void engine_destroy(Engine *e); /* runs finalizers of events still queued; NULL-safe */

/* Schedule fn(data) at time t (t >= now, else it is clamped to now). Returns 0 on allocation
 * failure (and records an error). */
EventId engine_at(Engine *e, SimTime t, EventFn *fn, void *data, EventFinalizer *fin);
/* Mark an event cancelled; it is dropped (finalizer run) when it reaches the top. */
void engine_cancel(Engine *e, EventId id);
SimTime engine_now(const Engine *e);
/* Run events in order until the queue is empty, or until a handler calls engine_stop.
 * Returns the status set by engine_fail, else OS_OK. */
OsStatus engine_run(Engine *e);
void engine_stop(Engine *e);
/* A handler reports a failure: engine_run stops and returns st. */
void engine_fail(Engine *e, OsStatus st);
uint64_t engine_events_processed(const Engine *e);
size_t engine_pending(const Engine *e);
/* Limits: at most 2^26 events pending at once (engine_at then fails with OS_ERR_RANGE). */
/* Tests only: jump the insertion counter forward (to at most 2^38, where it renumbers the
 * queue) so the renumbering path runs in a test; never lowers it. */
void engine_debug_set_seq(Engine *e, uint64_t seq);

#endif
