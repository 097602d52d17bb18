/* schema.h — the column lists of orchsim's CSV outputs, with units, in one registry.
 * Implements: the run-level, step-level, timeline and validate schemas (names, units, one-line
 *   meanings) that analysis/FORMATS.md documents; writing a schema's header; checking that a
 *   read table carries a schema's columns.
 * Does not: write rows (runtable.h writes run-level rows; replay/compare/validate write theirs).
 * Source: DESIGN.md §7-§8; analysis/FORMATS.md (a test checks it matches this table). */
#ifndef OS_ANALYSIS_SCHEMA_H
#define OS_ANALYSIS_SCHEMA_H

#include <stddef.h>
#include <stdio.h>

#include "analysis/csv.h"
#include "base/status.h"

typedef struct {
    const char *name; /* header text */
    const char *unit; /* "s", "tokens/s", "fraction", "bytes", "count", "-" (label), ... */
    const char *desc; /* one line */
} CsvColumn;

typedef struct {
    const char *name;      /* "run", "step", "timeline", "validate" */
    const char *title;     /* section title in FORMATS.md */
    const CsvColumn *cols;
    size_t n_cols;
    size_t n_required;     /* readers need cols[0, n_required); the rest were added later and
                              older files may lack them (0 = all required) */
} CsvSchema;

/* The phases a run/step row has columns for, in column order (REPLAY phases map by name). */
#define SCHEMA_N_PHASES 4
extern const char *const SCHEMA_PHASES[SCHEMA_N_PHASES]; /* image, audio, video, llm */

size_t schema_count(void);
const CsvSchema *schema_at(size_t i);
const CsvSchema *schema_find(const char *name); /* NULL when unknown */
/* Index of a column in a schema, or -1. */
int schema_col(const CsvSchema *s, const char *name);

/* Header row (names joined by commas, newline). */
void schema_write_header(FILE *fp, const CsvSchema *s);
/* Every schema column present in t, else OS_ERR_FORMAT naming the file and the first missing
 * column. Extra columns are allowed (forward compatible). */
OsStatus schema_check(const CsvTable *t, const CsvSchema *s);

#endif
