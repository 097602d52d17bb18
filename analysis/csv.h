/* csv.h — the small CSV reader and writer helpers that plot, sweep (and compare) share.
 * Implements: reading a whole CSV with one header row into named columns (RFC 4180 quotes,
 *   '#' comment lines and blank lines skipped, CRLF accepted) or the pipe tables of a
 *   markdown file (published benchmark READMEs), cells read as strings or numbers
 *   (an empty cell is "absent": NaN), errors that name file, line and column; writer helpers
 *   that quote when needed and print absent numbers as empty cells.
 * Does not: stream (files here are run tables and step series: kilobytes to megabytes), guess
 *   types, or know any schema (schema.h).
 * Source: DESIGN.md §7-§8; the formats are documented in analysis/FORMATS.md. */
#ifndef OS_ANALYSIS_CSV_H
#define OS_ANALYSIS_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

typedef struct CsvTable CsvTable;

/* Read path whole. Every data row must have as many fields as the header; errors name the
 * file and line ("x.csv: line 7: 5 fields, header has 6"). A path ending in .md (or .markdown)
 * is read as markdown pipe tables instead (a header line "| a | b |", a delimiter line
 * "|---|---|", then rows; cells trimmed, "\|" a literal bar): the first table's header is the
 * header, and the rows of it and of every later table with the same header are the data; a
 * table with another header is left out and counted (csv_n_skipped). Prose and headings
 * between tables are ignored. */
OsStatus csv_read(CsvTable **out, const char *path);
/* The same, where the header of a markdown file is the first table's that accept(names, n,
 * arg) takes (tables before it are left out and counted); CSV files ignore accept. */
typedef int (*CsvAcceptFn)(const char *const *names, size_t n, void *arg);
OsStatus csv_read_where(CsvTable **out, const char *path, CsvAcceptFn accept, void *arg);
void csv_destroy(CsvTable *t); /* NULL-safe */

const char *csv_path(const CsvTable *t);    /* borrowed */
size_t csv_n_rows(const CsvTable *t);       /* data rows (header excluded) */
size_t csv_n_cols(const CsvTable *t);
size_t csv_n_skipped(const CsvTable *t);    /* markdown tables left out (another header) */
const char *csv_col_name(const CsvTable *t, size_t col); /* borrowed */
/* Column index by exact name, or -1. */
int csv_col(const CsvTable *t, const char *name);
/* Column index, or an OS_ERR_FORMAT naming the file and the missing column. */
OsStatus csv_require(int *col, const CsvTable *t, const char *name);
/* 1-based line in the file where data row `row` sits (for error messages). */
size_t csv_line(const CsvTable *t, size_t row);

/* Cell text ("" when empty). Borrowed, valid until csv_destroy. */
const char *csv_str(const CsvTable *t, size_t row, size_t col);
/* Cell as a number: NaN when empty; OS_ERR_FORMAT naming file, line and column when the cell
 * is not a finite number. */
OsStatus csv_num(double *out, const CsvTable *t, size_t row, size_t col);
/* Whole column as numbers into out[csv_n_rows] (NaN for empty cells). */
OsStatus csv_num_col(double *out, const CsvTable *t, size_t col);

/* Writer helpers: `first` = 1 for the first field of a row (no leading comma). Strings with
 * a comma, quote or newline are quoted; NaN doubles print as an empty cell; doubles use
 * %.9g (enough to round-trip seconds and FLOP counts for plotting). */
void csv_put_str(FILE *fp, const char *s, int first);
void csv_put_f64(FILE *fp, double v, int first);
void csv_put_u64(FILE *fp, uint64_t v, int first);
void csv_end_row(FILE *fp);

#endif
