/* gen.h — synthetic modality-composition traces from named profiles.
 * Implements: a registry of profiles (profiles.c: parameter structs, each parameter's source
 *   in a comment), a seeded sampler (GSL mt19937) of one example at a time — log-normal text,
 *   mixture / geometric item counts, log-normal, duration-based, tiled or video item sizes,
 *   with a Gaussian-copula correlation rho between each item's size and the text length —
 *   and `gen_write`, which deals B examples per step, B/D per rank in drawn order.
 * Does not: read traces or compute statistics (trace.h, trace_stats.h).
 * Source: DESIGN.md §1; numbers from REFERENCE.md "Data facts for the generator profiles". */
#ifndef OS_TRACES_GEN_H
#define OS_TRACES_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "traces/trace.h"

/* The profile registry (for --list-profiles and "did you mean"). */
size_t gen_profile_count(void);
const char *gen_profile_name(size_t i);    /* borrowed, static */
const char *gen_profile_summary(size_t i); /* borrowed, static */

typedef struct Gen Gen;
/* A sampler of one profile; same (profile, seed) -> same examples. Unknown profile: OS_ERR_ARG
 * naming the closest profile. */
OsStatus gen_create(Gen **out, const char *profile, uint64_t seed);
void gen_destroy(Gen *g); /* NULL-safe */
const TraceModality *gen_modalities(const Gen *g, uint32_t *n); /* borrowed */
/* Draw one example and append it (with its items) to s. */
OsStatus gen_example(Gen *g, TraceStep *s, uint64_t id);
/* Which mixture component ("kind") the last gen_example drew, and the number of kinds:
 * for tests of the mixture weights. */
uint32_t gen_last_kind(const Gen *g);
double gen_kind_weight(const Gen *g, uint32_t k); /* normalised weight of kind k */
const char *gen_kind_name(const Gen *g, uint32_t k);
uint32_t gen_kind_count(const Gen *g);

typedef struct {
    const char *profile;
    uint64_t seed;
    uint64_t steps;        /* >= 1 */
    uint32_t global_batch; /* B examples per step, >= 1 */
    uint32_t dp;           /* D ranks, B % D == 0 */
    uint32_t chunk_rows;   /* HDF5 chunk rows, 0 = default */
    const char *created_by; /* "orchsim 0.1.0"; NULL = "orchsim" */
} GenConfig;

/* Write a whole trace to path (atomically). Shows a progress line on a terminal. */
OsStatus gen_write(const char *path, const GenConfig *cfg);

#endif
