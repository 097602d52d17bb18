/* csv.c — see csv.h. The file is read whole; cells are NUL-terminated copies in one pool. */
#include "analysis/csv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct CsvTable {
    char *path;
    char *pool;        /* cell text, each NUL-terminated; cells point into it */
    size_t n_cols, n_rows;
    size_t *cell;      /* [(n_rows + 1) * n_cols] offsets into pool; row 0 = header */
    size_t *line;      /* [n_rows + 1] 1-based file line of each row */
    size_t skipped;    /* markdown: tables left out (another header than the first's) */
};

static OsStatus slurp(char **buf, size_t *len, const char *path) {
    OsStatus st = OS_OK;
    char *b = NULL;
    size_t cap = 0, n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) OS_FAIL(OS_ERR_IO, path, NULL, "check the path", "cannot open: %s", strerror(errno));
    for (;;) {
        OS_CHECK(os_grow((void **)&b, &cap, n + 65536 + 1, 1));
        size_t r = fread(b + n, 1, cap - n - 1, fp);
        n += r;
        if (r == 0) break;
    }
    if (ferror(fp)) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "read failed");
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
fail:
    if (fp) fclose(fp);
    free(b);
    return st;
}

/* RFC 4180 text into t (pool, cells, lines); n_row counts the header. */
static OsStatus parse_csv(CsvTable *t, const char *src, size_t len, size_t *rows_out) {
    OsStatus st = OS_OK;
    const char *path = t->path;
    size_t cap_cell = 0, cap_line = 0, n_cell = 0, n_row = 0;
    /* Unquoting only shrinks text and each cell gains one NUL per separator it replaces,
     * so the pool never needs more than len + 1 + (one NUL for a last cell) bytes. */
    t->pool = malloc(len + 2);
    ALLOC_CHECK(t->pool);
    size_t w = 0, i = 0, line = 1;
    while (i < len) {
        /* skip blank lines and '#' comment lines (reporter headers, STYLE habit 7) */
        if (src[i] == '\n' || src[i] == '\r') {
            line += src[i] == '\n';
            i++;
            continue;
        }
        if (src[i] == '#') {
            while (i < len && src[i] != '\n') i++;
            continue;
        }
        size_t row_line = line, fields = 0;
        for (;;) { /* one field per iteration */
            OS_CHECK(os_grow((void **)&t->cell, &cap_cell, n_cell + 1, sizeof *t->cell));
            t->cell[n_cell++] = w;
            fields++;
            if (src[i] == '"') {
                i++;
                for (;;) {
                    if (i >= len)
                        OS_FAIL(OS_ERR_FORMAT, path, NULL, "close the quote",
                                "line %zu: column %zu: unterminated quoted field", row_line, fields);
                    if (src[i] == '"') {
                        if (i + 1 < len && src[i + 1] == '"') {
                            t->pool[w++] = '"';
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    if (src[i] == '\n') line++;
                    t->pool[w++] = src[i++];
                }
                if (i < len && src[i] != ',' && src[i] != '\n' && src[i] != '\r')
                    OS_FAIL(OS_ERR_FORMAT, path, NULL, "quote the whole field",
                            "line %zu: column %zu: text after a closing quote", line, fields);
            } else {
                while (i < len && src[i] != ',' && src[i] != '\n' && src[i] != '\r') t->pool[w++] = src[i++];
            }
            t->pool[w++] = '\0';
            if (i < len && src[i] == ',') {
                i++;
                continue;
            }
            break; /* end of line or file */
        }
        if (n_row == 0) t->n_cols = fields;
        else if (fields != t->n_cols)
            OS_FAIL(OS_ERR_FORMAT, path, NULL, "every row needs one value (maybe empty) per header column",
                    "line %zu: %zu fields, header has %zu", row_line, fields, t->n_cols);
        OS_CHECK(os_grow((void **)&t->line, &cap_line, n_row + 1, sizeof *t->line));
        t->line[n_row++] = row_line;
    }
    *rows_out = n_row;
fail:
    return st;
}

/* One cell of a pipe-table line: s[a, b) trimmed, "\|" unescaped, appended to the pool. */
static OsStatus md_cell(CsvTable *t, size_t *cap_cell, size_t *n_cell, size_t *w, const char *s, size_t a, size_t b) {
    OsStatus st = OS_OK;
    while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    OS_CHECK(os_grow((void **)&t->cell, cap_cell, *n_cell + 1, sizeof *t->cell));
    t->cell[(*n_cell)++] = *w;
    for (size_t i = a; i < b; i++) {
        if (s[i] == '\\' && i + 1 < b && s[i + 1] == '|') i++;
        t->pool[(*w)++] = s[i];
    }
    t->pool[(*w)++] = '\0';
fail:
    return st;
}

/* Does s[a, b) hold a '|' that is not escaped? */
static int has_bar(const char *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (s[i] == '|' && !(i > a && s[i - 1] == '\\')) return 1;
    return 0;
}

/* Is s[a, b) a pipe table's delimiter row: only '|', '-', ':' and blanks, with a '-' and a '|'
 * (a line of dashes alone is a heading's underline or a rule)? */
static int md_delim(const char *s, size_t a, size_t b) {
    int dash = 0, bar = 0;
    for (size_t i = a; i < b; i++) {
        if (s[i] == '-') dash = 1;
        else if (s[i] == '|') bar = 1;
        else if (s[i] != ':' && s[i] != ' ' && s[i] != '\t') return 0;
    }
    return dash && bar;
}

/* The cells of the pipe-table line s[a, b) (a leading and a trailing '|' are optional). */
static OsStatus md_row(CsvTable *t, size_t *cap_cell, size_t *n_cell, size_t *w, const char *s, size_t a, size_t b,
                       size_t *fields) {
    OsStatus st = OS_OK;
    while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    if (a < b && s[a] == '|') a++;
    if (b > a && s[b - 1] == '|' && !(b - 1 > a && s[b - 2] == '\\')) b--;
    *fields = 0;
    size_t c = a;
    for (size_t i = a; i <= b; i++) {
        if (i < b && !(s[i] == '|' && !(i > a && s[i - 1] == '\\'))) continue;
        OS_CHECK(md_cell(t, cap_cell, n_cell, w, s, c, i));
        (*fields)++;
        c = i + 1;
    }
fail:
    return st;
}

/* The line starting at a: its end b (the '\n' or len) and e, b without a trailing '\r'. */
static void md_line(const char *src, size_t len, size_t a, size_t *b, size_t *e) {
    size_t x = a;
    while (x < len && src[x] != '\n') x++;
    *b = x;
    *e = x > a && src[x - 1] == '\r' ? x - 1 : x;
}

/* Markdown pipe tables into t: the first table's header row is the header, its rows and the
 * rows of every later table with the same header are the data; a table with another header is
 * left out and counted (t->skipped). Lines outside tables (prose, headings) are ignored. */
static OsStatus parse_md(CsvTable *t, const char *src, size_t len, size_t *rows_out, CsvAcceptFn accept, void *arg) {
    OsStatus st = OS_OK;
    const char *path = t->path;
    size_t cap_cell = 0, cap_line = 0, n_cell = 0, n_row = 0, w = 0;
    /* every cell is a trimmed substring plus one NUL, and a line of k cells has >= k - 1 bars */
    t->pool = malloc(2 * len + 2);
    ALLOC_CHECK(t->pool);
    size_t i = 0, line = 1;
    int in_table = 0, keep = 0; /* inside a table's rows; whether they are kept */
    size_t hdr_line = 0;
    while (i < len) {
        size_t a = i, b, e;
        md_line(src, len, a, &b, &e);
        size_t f = a;
        while (f < e && (src[f] == ' ' || src[f] == '\t')) f++;
        int piped = has_bar(src, f, e); /* GFM: the outer bars are optional */
        size_t next_a = b + 1, this_line = line;
        if (!piped) in_table = 0;
        else if (!in_table) {
            /* a header needs the delimiter row on the next line */
            size_t a2 = next_a, b2 = a2, e2 = a2;
            if (a2 < len) md_line(src, len, a2, &b2, &e2);
            if (a2 < len && md_delim(src, a2, e2)) {
                size_t mark_cell = n_cell, mark_w = w, fields;
                OS_CHECK(md_row(t, &cap_cell, &n_cell, &w, src, f, e, &fields));
                int ok = 1;
                if (n_row == 0 && accept) { /* the caller's test of a header: the first it takes */
                    const char **names = malloc(fields * sizeof *names);
                    ALLOC_CHECK(names);
                    for (size_t c = 0; c < fields; c++) names[c] = t->pool + t->cell[mark_cell + c];
                    ok = accept(names, fields, arg);
                    free(names);
                }
                if (!ok) {
                    n_cell = mark_cell, w = mark_w;
                    keep = 0;
                    t->skipped++;
                } else if (n_row == 0) {
                    t->n_cols = fields;
                    keep = 1;
                    hdr_line = this_line;
                    OS_CHECK(os_grow((void **)&t->line, &cap_line, n_row + 1, sizeof *t->line));
                    t->line[n_row++] = this_line;
                } else {
                    keep = fields == t->n_cols;
                    for (size_t c = 0; keep && c < fields; c++)
                        keep = !strcmp(t->pool + t->cell[mark_cell + c], t->pool + t->cell[c]);
                    n_cell = mark_cell, w = mark_w; /* a repeated header is not a row */
                    if (!keep) t->skipped++;
                }
                in_table = 1;
                next_a = b2 + 1; /* past the delimiter row */
                line++;
            }
        } else if (keep) {
            size_t fields;
            OS_CHECK(md_row(t, &cap_cell, &n_cell, &w, src, f, e, &fields));
            if (fields != t->n_cols)
                OS_FAIL(OS_ERR_FORMAT, path, NULL, "every row needs one cell (maybe empty) per header column",
                        "line %zu: %zu cells, the header (line %zu) has %zu", this_line, fields, hdr_line, t->n_cols);
            OS_CHECK(os_grow((void **)&t->line, &cap_line, n_row + 1, sizeof *t->line));
            t->line[n_row++] = this_line;
        }
        line++;
        i = next_a;
    }
    if (n_row == 0) OS_FAIL(OS_ERR_FORMAT, path, NULL, "a pipe table: | a | b |, then | --- | --- |, then rows",
                            "no markdown table found");
    *rows_out = n_row;
fail:
    return st;
}

static int is_markdown(const char *path) {
    size_t n = strlen(path);
    return (n >= 3 && !strcmp(path + n - 3, ".md")) || (n >= 9 && !strcmp(path + n - 9, ".markdown"));
}

OsStatus csv_read(CsvTable **out, const char *path) { return csv_read_where(out, path, NULL, NULL); }

OsStatus csv_read_where(CsvTable **out, const char *path, CsvAcceptFn accept, void *arg) {
    OsStatus st = OS_OK;
    char *src = NULL;
    size_t len = 0, n_row = 0;
    *out = NULL;
    CsvTable *t = calloc(1, sizeof *t);
    ALLOC_CHECK(t);
    t->path = strdup(path);
    ALLOC_CHECK(t->path);
    OS_CHECK(slurp(&src, &len, path));
    if (is_markdown(path)) OS_CHECK(parse_md(t, src, len, &n_row, accept, arg));
    else OS_CHECK(parse_csv(t, src, len, &n_row));
    if (n_row == 0) OS_FAIL(OS_ERR_FORMAT, path, NULL, "write a header row", "empty file: no header row");
    t->n_rows = n_row - 1;
    for (size_t c = 0; c < t->n_cols; c++)
        if (!t->pool[t->cell[c]])
            OS_FAIL(OS_ERR_FORMAT, path, NULL, "name every column", "line %zu: column %zu: empty header name",
                    t->line[0], c + 1);
    free(src);
    *out = t;
    return OS_OK;
fail:
    free(src);
    csv_destroy(t);
    return st;
}

void csv_destroy(CsvTable *t) {
    if (!t) return;
    free(t->path);
    free(t->pool);
    free(t->cell);
    free(t->line);
    free(t);
}

const char *csv_path(const CsvTable *t) { return t->path; }
size_t csv_n_rows(const CsvTable *t) { return t->n_rows; }
size_t csv_n_cols(const CsvTable *t) { return t->n_cols; }
size_t csv_n_skipped(const CsvTable *t) { return t->skipped; }
const char *csv_col_name(const CsvTable *t, size_t col) { return t->pool + t->cell[col]; }
size_t csv_line(const CsvTable *t, size_t row) { return t->line[row + 1]; }

int csv_col(const CsvTable *t, const char *name) {
    for (size_t c = 0; c < t->n_cols; c++)
        if (!strcmp(csv_col_name(t, c), name)) return (int)c;
    return -1;
}

OsStatus csv_require(int *col, const CsvTable *t, const char *name) {
    *col = csv_col(t, name);
    if (*col < 0)
        return os_fail(OS_ERR_FORMAT, t->path, name, "see analysis/FORMATS.md for the expected columns",
                       "no such column in the header (line %zu)", t->line[0]);
    return OS_OK;
}

const char *csv_str(const CsvTable *t, size_t row, size_t col) {
    return t->pool + t->cell[(row + 1) * t->n_cols + col];
}

OsStatus csv_num(double *out, const CsvTable *t, size_t row, size_t col) {
    const char *s = csv_str(t, row, col);
    while (*s == ' ') s++;
    if (!*s) {
        *out = NAN;
        return OS_OK;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    while (end && *end == ' ') end++;
    if (end == s || *end || !isfinite(v) || errno == ERANGE)
        return os_fail(OS_ERR_FORMAT, t->path, NULL, "numbers only, or leave the cell empty",
                       "line %zu: column %zu (%s): '%s' is not a finite number", csv_line(t, row),
                       col + 1, csv_col_name(t, col), csv_str(t, row, col));
    *out = v;
    return OS_OK;
}

OsStatus csv_num_col(double *out, const CsvTable *t, size_t col) {
    OsStatus st = OS_OK;
    for (size_t r = 0; r < t->n_rows; r++) OS_CHECK(csv_num(&out[r], t, r, col));
fail:
    return st;
}

void csv_put_str(FILE *fp, const char *s, int first) {
    if (!first) fputc(',', fp);
    if (!s) return;
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"') fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

void csv_put_f64(FILE *fp, double v, int first) {
    if (!first) fputc(',', fp);
    if (isfinite(v)) fprintf(fp, "%.9g", v);
}

void csv_put_u64(FILE *fp, uint64_t v, int first) {
    if (!first) fputc(',', fp);
    fprintf(fp, "%llu", (unsigned long long)v);
}

void csv_end_row(FILE *fp) { fputc('\n', fp); }
