/* trace.h — the modality-composition trace: HDF5 layout, streaming reader and writer.
 * Implements: DESIGN.md §1 — /modalities, /examples, /items, /steps and root provenance
 *   attributes, format version 1; chunked + deflate datasets; a reader whose memory is
 *   bounded by the largest step (not the trace length) and that validates every field it
 *   returns; a writer that streams steps into a temporary file and renames it on close.
 * Does not: generate or import data (gen.h, import.h), or compute statistics (analysis/).
 * Units: text and item lengths are tokens/patches/frames as the modality table says.
 * Letters: D ranks (dp), N examples, M items. */
#ifndef OS_TRACE_H
#define OS_TRACE_H

#include <stdint.h>

#include "base/status.h"

#define TRACE_FORMAT_NAME "orchsim-trace"
/* 3: version 2 plus the optional text-to-image request tables (/requests, /request_models,
 *    /request_categories: traces/requests.h); written by every writer, read by traces/requests.c.
 * 2: the HDF5 1.10 file format (superblock v3, v2 object headers: every piece of metadata is
 *    checksummed and HDF5 verifies it before decoding) and Fletcher-32 on every chunk. Still
 *    read (its examples are requests with their stage's defaults).
 * 1: the same tables in the HDF5 1.8 default format, without metadata checksums: refused,
 *    since corrupt metadata crashes libhdf5 itself (regenerate such traces). */
#define TRACE_VERSION 3u
#define TRACE_VERSION_MIN 2u /* the oldest version the reader accepts */
#define TRACE_MAX_MODALITIES 16   /* index 0 is always "text" */
#define TRACE_MAX_LEN (1u << 31)  /* a length at or above 2^31 is rejected as absurd */
#define TRACE_NAME_LEN 32
#define TRACE_MAX_CHUNK_ROWS 524288u     /* writer chunk rows: <= 12 MiB per /examples chunk */
#define TRACE_MAX_CHUNK_BYTES (16u << 20) /* reader: a larger chunk is refused (time bomb) */
/* Reader guards against memory bombs: a step's rows are allocated only within these; the
 * environment variables ORCHSIM_MAX_STEP_EXAMPLES / ORCHSIM_MAX_STEP_ITEMS raise them. */
#define TRACE_DEFAULT_MAX_STEP_EXAMPLES (1u << 24) /* 16.8M examples: 400 MB of rows */
#define TRACE_DEFAULT_MAX_STEP_ITEMS (1u << 26)    /* 67M items: 540 MB of rows */

/* One modality row of /modalities. Index 0 = text (no items); items use index >= 1. */
typedef struct {
    char name[TRACE_NAME_LEN];  /* "text", "image", "audio", "video", ... */
    char unit[TRACE_NAME_LEN];  /* what a length counts: "token", "patch", "frame" */
    uint32_t default_ratio;     /* encoder-output units per LLM token hint (projector), >= 1 */
} TraceModality;

/* Rows as stored. In a TraceStep, first_item is rebased to index the step's own items[]. */
typedef struct {
    uint64_t id;         /* stable example id (source row for imports) */
    uint32_t text;       /* text tokens */
    uint32_t n_items;    /* items of non-text modalities */
    uint64_t first_item; /* index into /items (file) or TraceStep.items (in memory) */
} TraceExample;

typedef struct {
    uint32_t length;  /* patches / frames of this item */
    uint8_t modality; /* index into the modality table, >= 1 */
} TraceItem;

typedef struct {
    uint64_t first_example;
    uint32_t n_examples; /* divisible by dp */
    uint32_t dp;         /* mini-batches drawn; rank r got examples [r*n/dp, (r+1)*n/dp) */
} TraceStepRec;

/* One global batch in memory. Owned by the reader (reused for every step) or by the caller
 * (trace_step_init/free) when building steps to write. */
typedef struct {
    uint64_t index;         /* step number in the trace */
    uint32_t dp;
    uint32_t n_examples;
    uint32_t n_items;
    TraceExample *examples; /* [n_examples], first_item relative to items[] */
    TraceItem *items;       /* [n_items] */
    uint64_t cap_examples, cap_items; /* allocated capacity */
} TraceStep;

void trace_step_init(TraceStep *s);
void trace_step_free(TraceStep *s);
/* Empty a caller-owned step, keeping its buffers. */
void trace_step_clear(TraceStep *s);
/* Make room for at least n_examples examples and n_items items (keeps contents). */
OsStatus trace_step_reserve(TraceStep *s, uint64_t n_examples, uint64_t n_items);
/* Append one example with its items to a caller-owned step (grows arrays). */
OsStatus trace_step_push(TraceStep *s, uint32_t text, uint64_t id, const TraceItem *items,
                         uint32_t n_items);

/* Provenance kept as root attributes. */
typedef struct {
    char source[512];     /* "gen profile=vl-sft seed=1 ..." or "import file=x.jsonl ..." */
    char created_by[128]; /* "orchsim 0.1.0" — no timestamps: same input -> same bytes */
} TraceProvenance;

typedef struct Trace Trace;

typedef struct {
    uint64_t max_step_examples; /* 0 = default (or the environment's) */
    uint64_t max_step_items;
    uint64_t read_ahead_rows;   /* rows kept per table for small steps: 0 = 16384, 1 = none */
} TraceLimits;

/* Open and validate the file's structure: format name/version, every dataset present with
 * the expected type and rank, the modality table, and every /steps row (ranges inside
 * /examples, n_examples % dp == 0). Example and item rows are validated as steps are read.
 * Errors name the file, the dataset and the row. */
OsStatus trace_open(Trace **out, const char *path);
/* trace_open with explicit limits (NULL = defaults). Besides the structure, it checks every
 * root attribute (class, size, exactly one element), every table's compound (members, their
 * offsets inside the type, total size = packed size), layout (no external or virtual
 * storage, only shuffle/deflate/fletcher32 filters, chunks <= TRACE_MAX_CHUNK_BYTES, every
 * chunk written), each table's row count against its storage and the file's size on disk,
 * that the steps together reference at most the rows /examples and /items hold, and each
 * step against the limits: all before anything is allocated from a row count. */
OsStatus trace_open_limits(Trace **out, const char *path, const TraceLimits *lim);
void trace_close(Trace *t); /* NULL-safe */

const char *trace_path(const Trace *t);                     /* borrowed */
uint64_t trace_n_steps(const Trace *t);
uint64_t trace_n_examples(const Trace *t);
uint64_t trace_n_items(const Trace *t);
uint32_t trace_n_modalities(const Trace *t);                /* including text */
const TraceModality *trace_modality(const Trace *t, uint32_t m); /* borrowed */
const TraceProvenance *trace_provenance(const Trace *t);    /* borrowed */
/* Fixed LLM tokens per item of modality m (the /modalities attribute tokens_per_item, e.g. a
 * resampler's 256), or 0: ceil(length / default_ratio). */
uint32_t trace_tokens_per_item(const Trace *t, uint32_t m);
/* Index of a modality by name, or -1. */
int trace_modality_index(const Trace *t, const char *name);

/* Read step s into the reader's buffer (*step stays valid until the next read or close).
 * Validates every example and item row of the step. */
OsStatus trace_read_step(Trace *t, uint64_t s, const TraceStep **step);
/* Streaming: the next step in order; returns OS_DONE after the last. */
OsStatus trace_next_step(Trace *t, const TraceStep **step);
void trace_rewind(Trace *t);

/* Full scan validating every row, with bounded memory (used by `info` and tests). */
OsStatus trace_validate(Trace *t);

typedef struct TraceWriter TraceWriter;
/* Create a writer to `path` (written as a temporary file, renamed on trace_writer_close).
 * modalities[0] must be text. chunk_rows: HDF5 chunk size in rows (0 = default 65536). */
OsStatus trace_writer_create(TraceWriter **out, const char *path, const TraceModality *modalities,
                             uint32_t n_modalities, const TraceProvenance *prov, uint32_t chunk_rows);
/* Fixed LLM tokens per item per modality ([n_modalities], 0 = by ratio; entry 0 must be 0),
 * stored as the /modalities attribute tokens_per_item. Call before trace_writer_close. */
OsStatus trace_writer_set_tokens_per_item(TraceWriter *w, const uint32_t *tpi);
/* Append one step; checks the same rules the reader checks. */
OsStatus trace_writer_add_step(TraceWriter *w, const TraceStep *step);
/* Flush, close, rename into place (a trace needs at least one step). Frees w whatever
 * happens. */
OsStatus trace_writer_close(TraceWriter *w);
/* Close and delete the temporary file. NULL-safe. */
void trace_writer_abort(TraceWriter *w);

/* LLM sequence length of an example: text + sum ceil(len_i / ratio[modality_i]) (DESIGN §1).
 * ratio: [n_modalities] projector ratios (entries for absent modalities ignored). */
uint64_t trace_llm_tokens(const TraceStep *s, uint32_t example, const uint32_t *ratio);
/* The same with fixed tokens per item: tpi[m] > 0 replaces ceil(len / ratio[m]); tpi may be
 * NULL. */
uint64_t trace_llm_tokens_tpi(const TraceStep *s, uint32_t example, const uint32_t *ratio,
                              const uint32_t *tpi);

/* The standard modality table used by the generators and importers: text(token, 1),
 * image(patch, 4), audio(frame, 2), video(patch, 4); sources in trace.c. Borrowed, static. */
const TraceModality *trace_std_modalities(uint32_t *n);

#endif
