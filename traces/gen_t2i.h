/* gen_t2i.h — synthetic text-to-image request traces: the `cpdm` and `t2i-mixed` profiles.
 * Implements: a registry of request profiles (gen_t2i.c: each number's source beside it), a
 *   seeded sampler (GSL mt19937, splitmix64-mixed seed) of one request at a time, and
 *   gen_t2i_write: a version-3 trace whose /examples are the prompts (77 CLIP tokens, no items),
 *   dealt B per step and B/D per rank in drawn order, with their /requests fields.
 * Does not: know what a request costs (sim/diffusion/), or sample MLLM examples (gen.h).
 * Source: ../shared/CPDM.md (the dataset's categories and anchor counts, the pipeline's
 *   settings); the interrogation iteration distribution and t2i-mixed are labelled synthetic. */
#ifndef OS_TRACES_GEN_T2I_H
#define OS_TRACES_GEN_T2I_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "traces/gen.h"
#include "traces/requests.h"

size_t gen_t2i_count(void);
const char *gen_t2i_name(size_t i);    /* borrowed, static */
const char *gen_t2i_summary(size_t i); /* borrowed, static */
/* Is `profile` a request profile? */
int gen_t2i_is_profile(const char *profile);
/* Requests a profile has when its size is fixed (cpdm: its 2,100 anchors), else 0. */
uint64_t gen_t2i_fixed_count(const char *profile);
/* The requests of a profile: n of them (0 = its fixed count), same seed -> same rows. Fills r
 * (names included); caller frees with t2i_requests_free. */
OsStatus gen_t2i_requests(T2iRequests *r, const char *profile, uint64_t seed, uint64_t n);
/* Write a whole request trace (atomically). cfg->steps x cfg->global_batch requests, or for a
 * fixed-size profile exactly its count (cfg->steps = 0 derives it; B must divide it). Must not
 * run inside os_outputs_hold (it commits an inner file before adding the request tables). */
OsStatus gen_t2i_write(const char *path, const GenConfig *cfg);

/* The synthetic interrogation iteration count (CPDM.md: "8 to 32 iterations ... stops early
 * when nothing improves (after 8) or the prompt is full"; the distribution is unpublished):
 * 8 + a geometric number of further iterations, each continuing with probability 8/9 (mean 8
 * more), capped at 32. u: a uniform draw in [0, 1). Mean 15.5, median 13. */
uint32_t gen_t2i_iters(double u);

#endif
