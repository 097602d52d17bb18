/* import_internal.h — private to traces/import*.c: the byte reader (plain or gzip, a file or
 * stdin, bounded buffers), the parse context, and one parsed row.
 * Implements: what import.c (CSV, dealing) and import_json.c (JSON/JSONL) share.
 * Does not: get included outside traces/ (the contract is import.h). */
#ifndef OS_TRACES_IMPORT_INTERNAL_H
#define OS_TRACES_IMPORT_INTERNAL_H

#include <stdint.h>
#include <zlib.h>

#include "base/status.h"
#include "traces/import.h"
#include "traces/trace.h"

#define IMPORT_MAX_COLS 32
#define IMPORT_MAX_LINE (1u << 20) /* CSV line cap: a longer line is an error, not a bigger buffer */
#define IMPORT_KEY_CAP 256         /* keys and string ids are hashed whole, kept to this length */

#define COL_SKIP (-3) /* an unknown column/key, skipped under --ignore-unknown */
#define COL_ID (-2)
#define COL_TEXT (-1)

/* Buffered bytes from a gzFile (zlib reads plain data through unchanged). */
typedef struct {
    gzFile gz;
    unsigned char buf[1 << 16];
    size_t pos, len;
    int eof;
    uint64_t line; /* 1-based line of the next byte */
} ImportReader;

/* One parsed example. */
typedef struct {
    uint64_t id;
    int has_id;
    uint32_t text;
    int has_text;
    TraceItem *items; /* [n_items], in the input's field order; zero lengths are never stored */
    size_t n_items, cap_items;
} ImportRow;

typedef struct {
    const char *path;             /* for errors: the input path, or "<stdin>" */
    ImportReader *rd;
    const TraceModality *mods;    /* standard table */
    uint32_t n_mod;
    int ignore_unknown;
    int col[IMPORT_MAX_COLS];     /* CSV: column -> COL_* or a modality >= 1 */
    int n_cols;
    int header_done;
    char known[256];              /* "known fields: id, text, image, ..." for hints */
    ImportSummary *sum;           /* unknown keys, string ids, zero lengths are counted here */
} ImportCtx;

/* Next byte or -1 at end of input; errors (read failure, corrupt gzip, a NUL byte) are recorded
 * and also return -2. */
int import_peek(ImportCtx *c);
int import_get(ImportCtx *c);

/* An error "<path>: line N[: field "k"]: what (hint)". line 0 = the reader's current line. */
OsStatus import_fail(const ImportCtx *c, uint64_t line, const char *field, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Which field a key names: COL_ID, COL_TEXT, a modality >= 1, or 0 when unknown. */
int import_key_kind(const ImportCtx *c, const char *k, size_t len);
/* Remember an ignored key/column name (once) for the summary. */
void import_note_unknown(ImportCtx *c, const char *k, size_t len);
/* Store a value of field `kind` (not COL_SKIP): lengths < 2^31, 0 = no item. */
OsStatus import_row_set(ImportCtx *c, ImportRow *r, int kind, const char *name, uint64_t v);
/* Parse the text of a number (JSON grammar; integral floats such as 512.0 or 5.12e2 are
 * integers). Returns 0 ok, 2 negative, 3 too large, 4 a fraction, 1 not a number. */
int import_number(const char *s, size_t len, uint64_t *out);
/* The message for import_number's code. */
OsStatus import_number_fail(const ImportCtx *c, const char *field, int why, int list);
/* FNV-1a 64 of a string id's bytes (documented in traces/README.md). */
uint64_t import_hash_init(void);
uint64_t import_hash_byte(uint64_t h, unsigned char b);

/* JSON lines, or one JSON array of objects (import_json.c): calls row_fn for every object. */
typedef OsStatus ImportRowFn(void *user, ImportRow *row);
OsStatus import_json(ImportCtx *c, ImportRow *row, ImportRowFn *fn, void *user);

#endif
