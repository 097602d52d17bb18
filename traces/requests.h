/* requests.h — text-to-image request fields of a trace (format version 3).
 * Implements: the optional tables of a version-3 trace that make each /examples row a
 *   text-to-image request (a prompt or an anchor image): /requests (model, category,
 *   resolution, images per prompt, denoising steps, guidance scale, interrogation chain
 *   iterations; row i belongs to /examples row i), /request_models and /request_categories
 *   (the names the indices point to); a loader that validates every row and names the file,
 *   the row and the field; a writer that adds the tables to a trace it has just written.
 * Does not: know which models exist or what they cost (sim/diffusion/), or deal requests to
 *   ranks (the trace's /steps do that, as for any example).
 * Source: DESIGN.md §1, §9; traces/README.md "Text-to-image requests". A version-2 trace has
 *   none of these tables: every request then takes its stage's defaults. */
#ifndef OS_TRACES_REQUESTS_H
#define OS_TRACES_REQUESTS_H

#include <stdint.h>

#include "base/status.h"

#define T2I_NAME_LEN 32
#define T2I_MAX_NAMES 16           /* models, categories */
#define T2I_VAE_FACTOR 8           /* KL-f8: a resolution must be a multiple of 8 */
#define T2I_MAX_ROWS (1u << 24)    /* requests a trace may hold (16.8M, 16 bytes each) */
#define T2I_MIN_ITERS 8            /* CLIP Interrogator's flavour chain: 8 to 32 iterations */
#define T2I_MAX_ITERS 32           /*   (../shared/CPDM.md "The pipeline") */

/* One request as stored (the file type is packed little-endian, 16 bytes). */
typedef struct {
    uint8_t model;     /* index into models[] */
    uint8_t category;  /* index into categories[] */
    uint16_t width;    /* pixels of the generated image, a multiple of 8 (0 with height 0:
                          the generate stage's default) */
    uint16_t height;
    uint16_t images;   /* images generated for this prompt, >= 1 */
    uint16_t steps;    /* denoising steps, >= 1 */
    uint16_t iters;    /* flavour-chain iterations of the anchor's interrogation, 0 or 8..32
                          (0: not interrogated, or the stage's default) */
    float cfg;         /* classifier-free guidance scale, >= 1 (1: one UNet pass per step) */
} T2iRequest;

typedef struct {
    uint64_t n;                                   /* rows = the trace's examples */
    T2iRequest *rows;                             /* [n] owned */
    uint32_t n_models, n_categories;
    char models[T2I_MAX_NAMES][T2I_NAME_LEN];     /* e.g. "sd21-768" */
    char categories[T2I_MAX_NAMES][T2I_NAME_LEN]; /* e.g. "style" */
    uint64_t n_steps;                             /* the trace's /steps rows (loader only) */
    uint64_t *step_first;                         /* [n_steps] owned: /steps.first_example, so
                                                     step k's example i is request
                                                     step_first[k] + i */
} T2iRequests;

void t2i_requests_init(T2iRequests *r);
void t2i_requests_free(T2iRequests *r);
/* Load the request tables of the trace at path, which trace_open has already validated and
 * which has expect_rows examples. *present = 0 (and r empty) for a version-2 trace, or a
 * version-3 trace without /requests. Every row is checked (images, steps >= 1, cfg >= 1 and
 * finite, width and height both 0 or both multiples of 8, iters 0 or 8..32, indices inside
 * their name tables); errors read "<file>: /requests[<row>].<field>: ...". */
OsStatus t2i_requests_load(T2iRequests *r, const char *path, uint64_t expect_rows, int *present);
/* The /requests row of example i of trace step k: step_first[k] + i when loaded, else UINT64_MAX. */
uint64_t t2i_request_row(const T2iRequests *r, uint64_t step, uint32_t i);
/* The same checks on rows in memory (writers); where/field as in the loader. */
OsStatus t2i_requests_check(const T2iRequests *r, const char *where);
/* Add the tables to the trace at path (a version-3 trace just closed by trace_writer_close,
 * not yet renamed into place by the caller): r->n must equal its examples. */
OsStatus t2i_requests_attach(const char *path, const T2iRequests *r);
/* Append a model / category name (identifier characters, unique); returns its index. */
OsStatus t2i_requests_name(T2iRequests *r, int category, const char *name, uint8_t *index);

#endif
