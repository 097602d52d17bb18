/* import.h — turn a list of per-example lengths (JSON lines, a JSON array of objects, or CSV;
 *   a file, .gz, or stdin "-") into a trace.
 * Implements: a streaming JSON scanner ({"id": 7, "text": 512, "image": [576, 576],
 *   "audio": 1500} — any modality of the standard table, an integer or a list of integers;
 *   integral floats such as 512.0; 0, [] and null = no item; string ids hashed with FNV-1a 64;
 *   unknown keys of any JSON value skipped with ignore_unknown) and a CSV reader (header
 *   `id,text,image,audio`, list cells `576;576`, empty = none); a UTF-8 BOM is skipped;
 *   dealing into steps of B examples (D ranks) in input order, streaming, or shuffled with a
 *   seed (Fisher-Yates on gsl_rng mt19937; holds every example's lengths in memory); counts of
 *   items longer than a window (e.g. Whisper's 1500 positions) for the caller to warn about.
 * Does not: accept quoted CSV cells, nested values for known keys, or lengths >= 2^31; every
 *   such input is an error naming the file, the line and the field. Memory per line/token is
 *   bounded (a 1 MiB CSV line, 64-byte numbers, 255-byte keys), so /dev/zero is one error.
 * Source: DESIGN.md §1 ("importers"); traces/README.md documents the accepted shapes. */
#ifndef OS_TRACES_IMPORT_H
#define OS_TRACES_IMPORT_H

#include <stdint.h>

#include "base/status.h"
#include "traces/trace.h"

typedef struct {
    const char *input;      /* .jsonl/.ndjson/.json or .csv, optionally .gz; "-" = stdin */
    const char *output;     /* trace path, written atomically */
    const char *format;     /* "jsonl"/"json", "csv" or NULL = from the extension (stdin: sniffed) */
    uint32_t global_batch;  /* B >= 1 */
    uint32_t dp;            /* D >= 1, B % D == 0 */
    int shuffle;            /* deal in a seeded random order instead of file order */
    uint64_t seed;
    int drop_remainder;     /* drop a final partial batch instead of failing */
    uint32_t chunk_rows;    /* HDF5 chunk rows, 0 = default */
    const char *created_by; /* NULL = "orchsim" */
} ImportConfig;

/* Optional behaviour (import_run_opts); every array is indexed by the standard modality table
 * (trace_std_modalities) and may be NULL. */
typedef struct {
    int ignore_unknown;               /* skip unknown keys/columns (names listed in the summary) */
    const uint32_t *ratio;            /* default_ratio per modality written to the trace, 0 = standard */
    const uint32_t *tokens_per_item;  /* fixed LLM tokens per item, 0 = by ratio (trace.h) */
    const uint32_t *window;           /* longest item an encoder takes (positions), 0 = no limit;
                                         NULL = the standard windows (audio 1500, Whisper's 30 s) */
} ImportOptions;

typedef struct {
    uint64_t examples; /* examples written */
    uint64_t items;    /* items written */
    uint64_t steps;
    uint64_t dropped;  /* examples of a dropped partial batch */
    uint64_t zero_lengths;  /* 0-length items given (0 or [0]): not items, not stored */
    uint64_t string_ids;    /* ids given as strings (hashed) */
    uint64_t unknown_keys;  /* values skipped under ignore_unknown */
    char unknown[256];      /* their distinct names, comma-separated (truncated with "...") */
    uint64_t over_window[TRACE_MAX_MODALITIES]; /* items longer than the window, per modality */
    uint32_t window[TRACE_MAX_MODALITIES];      /* the window used (0 = none) */
    uint32_t longest[TRACE_MAX_MODALITIES];     /* longest item seen */
    char format[8];         /* "jsonl", "json" (an array) or "csv" */
} ImportSummary;

/* Read cfg->input and write cfg->output. On error no output file is left. */
OsStatus import_run(const ImportConfig *cfg, ImportSummary *sum);
/* The same with options (NULL = all defaults). */
OsStatus import_run_opts(const ImportConfig *cfg, const ImportOptions *opt, ImportSummary *sum);
/* The standard windows: positions an encoder takes per item, 0 = none ([n] std modalities). */
const uint32_t *import_std_windows(uint32_t *n);

#endif
