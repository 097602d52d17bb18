/* import.c — see import.h. One reader per format in a registry (extension + line parser);
 * both fill the same Row, which is dealt into steps (streaming) or kept for a shuffle. */
#include "traces/import.h"

#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "traces/trace.h"

#define IMPORT_MAX_COLS 32

/* One parsed input line. */
typedef struct {
    uint64_t id;
    int has_id;
    uint32_t text;
    int has_text;
    TraceItem *items; /* [n_items], in the line's field order */
    size_t n_items, cap_items;
} Row;

typedef struct {
    const char *path;
    uint64_t line;                /* 1-based physical line */
    const TraceModality *mods;    /* standard table */
    uint32_t n_mod;
    int col[IMPORT_MAX_COLS];     /* CSV: column -> -2 id, -1 text, m >= 1 modality */
    int n_cols;
    int header_done;
    char known[256];              /* "known fields: id, text, image, ..." for hints */
} Ctx;

#define COL_ID (-2)
#define COL_TEXT (-1)

static void build_known_hint(Ctx *c) {
    size_t n = (size_t)snprintf(c->known, sizeof c->known, "known fields: id, text");
    for (uint32_t m = 1; m < c->n_mod && n < sizeof c->known; m++)
        n += (size_t)snprintf(c->known + n, sizeof c->known - n, ", %s", c->mods[m].name);
}

static OsStatus line_fail(const Ctx *c, const char *field, const char *hint, const char *what) {
    char where[128];
    if (field) snprintf(where, sizeof where, "line %llu: field \"%s\"", (unsigned long long)c->line, field);
    else snprintf(where, sizeof where, "line %llu", (unsigned long long)c->line);
    return os_fail(OS_ERR_FORMAT, c->path, where, hint, "%s", what);
}

/* Which field a key names: COL_ID, COL_TEXT, a modality >= 1, or 0 when unknown. */
static int key_kind(const Ctx *c, const char *k, size_t len) {
    if (len == 2 && !strncmp(k, "id", 2)) return COL_ID;
    if (len == 4 && !strncmp(k, "text", 4)) return COL_TEXT;
    for (uint32_t m = 1; m < c->n_mod; m++)
        if (strlen(c->mods[m].name) == len && !strncmp(k, c->mods[m].name, len)) return (int)m;
    return 0;
}

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return p;
}

/* Parse an unsigned decimal at *pp. Returns 0 ok, 1 not a number, 2 negative, 3 too large,
 * 4 not an integer (fraction/exponent). */
static int scan_uint(const char **pp, uint64_t *out) {
    const char *p = *pp;
    if (*p == '-') return 2;
    if (*p < '0' || *p > '9') return 1;
    uint64_t v = 0;
    int big = 0;
    while (*p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) big = 1;
        else v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (*p == '.' || *p == 'e' || *p == 'E') return 4;
    *pp = p;
    *out = v;
    return big ? 3 : 0;
}

static OsStatus number_fail(const Ctx *c, const char *field, int why, int list) {
    static const char *const what[] = {"", "expected an integer", "negative values are not lengths",
                                       "number too large", "expected an integer, not a fraction"};
    char buf[128];
    snprintf(buf, sizeof buf, "%s", why == 1 && list ? "expected an integer or a list of integers" : what[why]);
    return line_fail(c, field, NULL, buf);
}

static OsStatus check_len(const Ctx *c, const char *field, uint64_t v) {
    if (v >= TRACE_MAX_LEN) {
        char buf[96];
        snprintf(buf, sizeof buf, "%llu is absurd (>= 2^31)", (unsigned long long)v);
        return line_fail(c, field, "lengths are token/patch/frame counts", buf);
    }
    return OS_OK;
}

static OsStatus row_add_item(Row *r, int m, uint64_t len) {
    OsStatus st = OS_OK;
    OS_CHECK(os_grow((void **)&r->items, &r->cap_items, r->n_items + 1, sizeof *r->items));
    r->items[r->n_items].modality = (uint8_t)m;
    r->items[r->n_items].length = (uint32_t)len;
    r->n_items++;
fail:
    return st;
}

static void row_reset(Row *r) {
    r->has_id = r->has_text = 0;
    r->id = 0;
    r->text = 0;
    r->n_items = 0;
}

/* Store a scalar value of field `kind`. */
static OsStatus row_set(const Ctx *c, Row *r, int kind, const char *name, uint64_t v) {
    OsStatus st = OS_OK;
    if (kind == COL_ID) {
        r->id = v;
        r->has_id = 1;
    } else {
        OS_CHECK(check_len(c, name, v));
        if (kind == COL_TEXT) {
            r->text = (uint32_t)v;
            r->has_text = 1;
        } else {
            OS_CHECK(row_add_item(r, kind, v));
        }
    }
fail:
    return st;
}

/* ---- JSONL ----------------------------------------------------------------------------- */

static OsStatus jsonl_line(Ctx *c, char *line, Row *r, int *empty) {
    OsStatus st = OS_OK;
    const char *p = skip_ws(line);
    unsigned seen = 0; /* bit per field kind: id, text, modalities */
    char key[64];
    *empty = 0;
    if (!*p) {
        *empty = 1;
        return OS_OK;
    }
    if (*p != '{') return line_fail(c, NULL, "one JSON object per line", "expected '{'");
    p = skip_ws(p + 1);
    if (*p == '}') goto end;
    for (;;) {
        if (*p != '"') return line_fail(c, NULL, NULL, "expected a quoted key");
        const char *k = ++p;
        while (*p && *p != '"' && *p != '\\') p++;
        if (*p != '"') return line_fail(c, NULL, NULL, "unterminated key (escapes are not supported)");
        size_t kl = (size_t)(p - k);
        snprintf(key, sizeof key, "%.*s", (int)(kl < 60 ? kl : 60), k);
        int kind = key_kind(c, k, kl);
        if (!kind) return line_fail(c, key, c->known, "unknown key");
        unsigned bit = 1u << (kind + 2);
        if (seen & bit) return line_fail(c, key, NULL, "repeated key");
        seen |= bit;
        p = skip_ws(p + 1);
        if (*p != ':') return line_fail(c, key, NULL, "expected ':'");
        p = skip_ws(p + 1);
        uint64_t v;
        int why;
        if (*p == '[') {
            if (kind < 1) return line_fail(c, key, NULL, "expected an integer");
            p = skip_ws(p + 1);
            if (*p != ']')
                for (;;) {
                    if ((why = scan_uint(&p, &v)) != 0) return number_fail(c, key, why, 1);
                    OS_CHECK(row_set(c, r, kind, key, v));
                    p = skip_ws(p);
                    if (*p == ',') {
                        p = skip_ws(p + 1);
                        continue;
                    }
                    if (*p == ']') break;
                    return line_fail(c, key, NULL, "expected ',' or ']' in the list");
                }
            p = skip_ws(p + 1);
        } else {
            if ((why = scan_uint(&p, &v)) != 0) return number_fail(c, key, why, kind >= 1);
            OS_CHECK(row_set(c, r, kind, key, v));
            p = skip_ws(p);
        }
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p == '}') break;
        return line_fail(c, key, NULL, "expected ',' or '}' after the value");
    }
end:
    p = skip_ws(p + 1);
    if (*p) return line_fail(c, NULL, "one JSON object per line", "trailing characters after '}'");
    if (!r->has_text) return line_fail(c, "text", "every example needs its text token count", "missing");
fail:
    return st;
}

/* ---- CSV ------------------------------------------------------------------------------- */

static void chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

/* Split s at ',' in place; returns the field count, or -1 when there are too many. */
static int split_commas(char *s, char **f) {
    int n = 0;
    f[n++] = s;
    for (char *p = s; *p; p++)
        if (*p == ',') {
            if (n == IMPORT_MAX_COLS) return -1;
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

static OsStatus csv_header(Ctx *c, char *line) {
    char *f[IMPORT_MAX_COLS];
    int has_text = 0;
    chomp(line);
    if (strchr(line, '"')) return line_fail(c, NULL, "write plain integers, no quotes", "quoted CSV is not supported");
    int n = split_commas(line, f);
    if (n < 0) return line_fail(c, NULL, NULL, "too many columns");
    for (int i = 0; i < n; i++) {
        const char *name = f[i];
        while (*name == ' ') name++;
        size_t len = strlen(name);
        while (len && name[len - 1] == ' ') len--;
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(len < 60 ? len : 60), name);
        int kind = key_kind(c, name, len);
        if (!kind) return line_fail(c, key, c->known, "unknown column");
        for (int j = 0; j < i; j++)
            if (c->col[j] == kind) return line_fail(c, key, NULL, "repeated column");
        c->col[i] = kind;
        has_text |= kind == COL_TEXT;
    }
    if (!has_text) return line_fail(c, "text", "the header needs a text column, e.g. id,text,image,audio", "missing");
    c->n_cols = n;
    c->header_done = 1;
    return OS_OK;
}

static OsStatus csv_line(Ctx *c, char *line, Row *r, int *empty) {
    OsStatus st = OS_OK;
    char *f[IMPORT_MAX_COLS];
    *empty = 0;
    chomp(line);
    if (!*skip_ws(line)) {
        *empty = 1;
        return OS_OK;
    }
    if (!c->header_done) {
        *empty = 1;
        return csv_header(c, line);
    }
    if (strchr(line, '"')) return line_fail(c, NULL, "write plain integers, no quotes", "quoted CSV is not supported");
    int n = split_commas(line, f);
    if (n != c->n_cols) {
        char buf[96];
        snprintf(buf, sizeof buf, "%d fields, the header has %d", n < 0 ? IMPORT_MAX_COLS + 1 : n, c->n_cols);
        return line_fail(c, NULL, NULL, buf);
    }
    for (int i = 0; i < n; i++) {
        int kind = c->col[i];
        const char *name = kind == COL_ID ? "id" : kind == COL_TEXT ? "text" : c->mods[kind].name;
        const char *p = skip_ws(f[i]);
        if (!*p) {
            if (kind < 1) return line_fail(c, name, NULL, "empty (expected an integer)");
            continue; /* no items of this modality */
        }
        for (;;) {
            uint64_t v;
            int why = scan_uint(&p, &v);
            if (why) return number_fail(c, name, why, kind >= 1);
            OS_CHECK(row_set(c, r, kind, name, v));
            p = skip_ws(p);
            if (*p == ';' && kind >= 1) {
                p = skip_ws(p + 1);
                continue;
            }
            if (*p) return line_fail(c, name, kind >= 1 ? "separate list values with ';'" : NULL,
                                     "unexpected characters after the number");
            break;
        }
    }
fail:
    return st;
}

/* ---- the format registry ----------------------------------------------------------------- */

typedef OsStatus LineFn(Ctx *c, char *line, Row *r, int *empty);
typedef struct {
    const char *name;
    const char *ext[3];
    LineFn *line;
} ImportFormat;

static const ImportFormat FORMATS[] = {
    {"jsonl", {".jsonl", ".ndjson", ".json"}, jsonl_line},
    {"csv", {".csv", NULL, NULL}, csv_line},
};

static OsStatus pick_format(const ImportConfig *cfg, const ImportFormat **out) {
    OsStatus st = OS_OK;
    *out = NULL;
    for (size_t i = 0; i < OS_ARRAY_LEN(FORMATS); i++) {
        if (cfg->format) {
            if (!strcmp(cfg->format, FORMATS[i].name)) *out = &FORMATS[i];
            continue;
        }
        size_t n = strlen(cfg->input);
        for (int e = 0; e < 3 && FORMATS[i].ext[e]; e++) {
            size_t el = strlen(FORMATS[i].ext[e]);
            if (n >= el && !strcmp(cfg->input + n - el, FORMATS[i].ext[e])) *out = &FORMATS[i];
        }
    }
    if (!*out) {
        if (cfg->format) OS_FAIL(OS_ERR_ARG, "--format", NULL, "use jsonl or csv", "unknown format '%s'", cfg->format);
        OS_FAIL(OS_ERR_ARG, cfg->input, NULL, "name it .jsonl or .csv, or pass --format jsonl|csv",
                "cannot tell the format from the file name");
    }
fail:
    return st;
}

/* ---- dealing ------------------------------------------------------------------------------ */

static OsStatus flush_step(TraceWriter *w, TraceStep *step, ImportSummary *sum, uint32_t dp) {
    OsStatus st = OS_OK;
    step->dp = dp;
    step->index = sum->steps;
    OS_CHECK(trace_writer_add_step(w, step));
    sum->steps++;
    sum->examples += step->n_examples;
    sum->items += step->n_items;
    trace_step_clear(step);
fail:
    return st;
}

OsStatus import_run(const ImportConfig *cfg, ImportSummary *sum) {
    OsStatus st = OS_OK;
    FILE *fp = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    Row row = {0};
    TraceStep step, all; /* all: every example, only when shuffling */
    TraceWriter *w = NULL;
    gsl_rng *rng = NULL;
    uint32_t *perm = NULL;
    const ImportFormat *fmt = NULL;
    Ctx c;
    TraceProvenance prov;
    trace_step_init(&step);
    trace_step_init(&all);
    memset(sum, 0, sizeof *sum);
    memset(&c, 0, sizeof c);
    c.path = cfg->input;
    c.mods = trace_std_modalities(&c.n_mod);
    build_known_hint(&c);
    uint32_t B = cfg->global_batch;
    if (B < 1 || cfg->dp < 1 || B % cfg->dp)
        OS_FAIL(OS_ERR_ARG, "--global-batch", NULL, "make the global batch a multiple of --dp",
                "%u examples do not split over dp = %u", B, cfg->dp);
    OS_CHECK(pick_format(cfg, &fmt));
    fp = fopen(cfg->input, "r");
    if (!fp) OS_FAIL(OS_ERR_IO, cfg->input, NULL, "check the path", "cannot open for reading");
    memset(&prov, 0, sizeof prov);
    snprintf(prov.source, sizeof prov.source, "import file=%s format=%s global_batch=%u dp=%u shuffle=%d seed=%llu",
             cfg->input, fmt->name, B, cfg->dp, cfg->shuffle ? 1 : 0, (unsigned long long)cfg->seed);
    snprintf(prov.created_by, sizeof prov.created_by, "%s", cfg->created_by ? cfg->created_by : "orchsim");
    uint32_t nm;
    const TraceModality *mods = trace_std_modalities(&nm);
    OS_CHECK(trace_writer_create(&w, cfg->output, mods, nm, &prov, cfg->chunk_rows));

    uint64_t n_rows = 0;
    ssize_t got;
    while ((got = getline(&line, &line_cap, fp)) >= 0) {
        c.line++;
        int empty = 0;
        if (memchr(line, '\0', (size_t)got))
            OS_FAIL(OS_ERR_FORMAT, cfg->input, NULL, "is this a text file?", "line %llu holds a NUL byte",
                    (unsigned long long)c.line);
        row_reset(&row);
        OS_CHECK(fmt->line(&c, line, &row, &empty));
        if (empty) continue;
        uint64_t id = row.has_id ? row.id : n_rows;
        n_rows++;
        if (cfg->shuffle) {
            OS_CHECK(trace_step_push(&all, row.text, id, row.items, (uint32_t)row.n_items));
        } else {
            OS_CHECK(trace_step_push(&step, row.text, id, row.items, (uint32_t)row.n_items));
            if (step.n_examples == B) OS_CHECK(flush_step(w, &step, sum, cfg->dp));
        }
    }
    if (ferror(fp)) OS_FAIL(OS_ERR_IO, cfg->input, NULL, NULL, "read error after line %llu", (unsigned long long)c.line);
    if (fmt->line == csv_line && !c.header_done)
        OS_FAIL(OS_ERR_FORMAT, cfg->input, NULL, "the first line must be a header like id,text,image,audio",
                "no header (empty file)");
    if (n_rows == 0) OS_FAIL(OS_ERR_FORMAT, cfg->input, NULL, "add one example per line", "no examples");
    if (n_rows % B && !cfg->drop_remainder)
        OS_FAIL(OS_ERR_FORMAT, cfg->input, NULL, "pass --drop-remainder, or change --global-batch",
                "%llu examples leave a partial batch of %llu (global batch %u)", (unsigned long long)n_rows,
                (unsigned long long)(n_rows % B), B);
    if (n_rows < B)
        OS_FAIL(OS_ERR_FORMAT, cfg->input, NULL, "use a smaller --global-batch",
                "%llu examples do not fill one batch of %u", (unsigned long long)n_rows, B);
    sum->dropped = n_rows % B;
    if (cfg->shuffle) {
        /* Fisher-Yates: for i = n-1 .. 1 swap i with a uniform j in [0, i]. */
        perm = malloc(sizeof *perm * all.n_examples);
        ALLOC_CHECK(perm);
        for (uint32_t i = 0; i < all.n_examples; i++) perm[i] = i;
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        ALLOC_CHECK(rng);
        gsl_rng_set(rng, (unsigned long)((cfg->seed ^ (cfg->seed >> 32)) & 0xffffffffu));
        for (uint32_t i = all.n_examples - 1; i > 0; i--) {
            uint32_t j = (uint32_t)gsl_rng_uniform_int(rng, (unsigned long)i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        uint64_t keep = (uint64_t)all.n_examples - sum->dropped;
        for (uint64_t k = 0; k < keep; k++) {
            const TraceExample *e = &all.examples[perm[k]];
            OS_CHECK(trace_step_push(&step, e->text, e->id, all.items + e->first_item, e->n_items));
            if (step.n_examples == B) OS_CHECK(flush_step(w, &step, sum, cfg->dp));
        }
    }
    /* streaming: a partial batch may remain in `step`; it is dropped (checked above). */
    TraceWriter *wc = w;
    w = NULL;
    OS_CHECK(trace_writer_close(wc));
fail:
    trace_writer_abort(w);
    if (rng) gsl_rng_free(rng);
    free(perm);
    free(row.items);
    free(line);
    if (fp) fclose(fp);
    trace_step_free(&step);
    trace_step_free(&all);
    return st;
}
