/* import.h — turn a JSONL or CSV list of per-example lengths into a trace.
 * Implements: a small hand-written JSONL scanner ({"id": 7, "text": 512, "image": [576, 576],
 *   "audio": 1500} — any modality of the standard table, an integer or a list of integers) and
 *   a CSV reader (header `id,text,image,audio`, list cells `576;576`, empty = none); dealing
 *   into steps of B examples (D ranks) in file order, streaming, or shuffled with a seed
 *   (Fisher-Yates on gsl_rng mt19937; holds every example's lengths in memory).
 * Does not: accept JSON beyond that shape (nested objects, strings as values, floats), or
 *   quoted CSV cells; every such line is an error naming the file, the line and the field.
 * Source: DESIGN.md §1 ("importers"). */
#ifndef OS_TRACES_IMPORT_H
#define OS_TRACES_IMPORT_H

#include <stdint.h>

#include "base/status.h"

typedef struct {
    const char *input;      /* .jsonl/.ndjson/.json or .csv */
    const char *output;     /* trace path, written atomically */
    const char *format;     /* "jsonl", "csv" or NULL = from the input's extension */
    uint32_t global_batch;  /* B >= 1 */
    uint32_t dp;            /* D >= 1, B % D == 0 */
    int shuffle;            /* deal in a seeded random order instead of file order */
    uint64_t seed;
    int drop_remainder;     /* drop a final partial batch instead of failing */
    uint32_t chunk_rows;    /* HDF5 chunk rows, 0 = default */
    const char *created_by; /* NULL = "orchsim" */
} ImportConfig;

typedef struct {
    uint64_t examples; /* examples written */
    uint64_t items;    /* items written */
    uint64_t steps;
    uint64_t dropped;  /* examples of a dropped partial batch */
} ImportSummary;

/* Read cfg->input and write cfg->output. On error no output file is left. */
OsStatus import_run(const ImportConfig *cfg, ImportSummary *sum);

#endif
