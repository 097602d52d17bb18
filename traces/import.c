/* import.c — see import.h. The byte reader (zlib's gzFile: plain or gzip, a file or stdin),
 * the shared value rules, the CSV reader, and the dealing of rows into steps (streaming, or
 * held for a shuffle). The JSON scanner is import_json.c. */
#include "traces/import.h"

#include <errno.h>
#include <fcntl.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "traces/import_internal.h"

/* Positions an encoder takes per item in the standard table: Whisper's 30 s window of 1500
 * positions (REFERENCE.md §D.3) for audio; images are tiles and videos frames x patches with
 * no single window, so they are unchecked unless the caller (a model) gives one. */
static const uint32_t STD_WINDOWS[] = {0, 0, 1500, 0};

const uint32_t *import_std_windows(uint32_t *n) {
    *n = (uint32_t)OS_ARRAY_LEN(STD_WINDOWS);
    return STD_WINDOWS;
}

/* ---- the byte reader -------------------------------------------------------------------- */

static int fill(ImportCtx *c) {
    ImportReader *r = c->rd;
    if (r->eof) return 0;
    int n = gzread(r->gz, r->buf, (unsigned)sizeof r->buf);
    if (n < 0) {
        int code = 0;
        const char *msg = gzerror(r->gz, &code);
        import_fail(c, 0, NULL, code == Z_DATA_ERROR ? "the .gz file is corrupt or truncated" : NULL, "read error: %s",
                    code == Z_ERRNO ? strerror(errno) : msg);
        return -1;
    }
    if (n == 0) {
        int code = 0;
        const char *msg = gzerror(r->gz, &code);
        if (code != Z_OK && code != Z_STREAM_END && code != Z_BUF_ERROR) {
            import_fail(c, 0, NULL, "the .gz file is corrupt", "read error: %s", msg);
            return -1;
        }
        if (code == Z_BUF_ERROR) { /* gzip data that ends mid-stream */
            import_fail(c, 0, NULL, "the .gz file is truncated", "unexpected end of compressed data");
            return -1;
        }
        r->eof = 1;
        return 0;
    }
    r->pos = 0;
    r->len = (size_t)n;
    return 1;
}

int import_peek(ImportCtx *c) {
    ImportReader *r = c->rd;
    if (r->pos == r->len) {
        int f = fill(c);
        if (f <= 0) return f < 0 ? -2 : -1;
    }
    unsigned char ch = r->buf[r->pos];
    if (ch == 0) {
        import_fail(c, 0, NULL, "is this a text file?", "holds a NUL byte");
        return -2;
    }
    return ch;
}

int import_get(ImportCtx *c) {
    int ch = import_peek(c);
    if (ch >= 0) {
        c->rd->pos++;
        if (ch == '\n') c->rd->line++;
    }
    return ch;
}

/* ---- values ------------------------------------------------------------------------------ */

OsStatus import_fail(const ImportCtx *c, uint64_t line, const char *field, const char *hint, const char *fmt, ...) {
    char where[160], what[512];
    unsigned long long ln = (unsigned long long)(line ? line : c->rd ? c->rd->line : 0);
    if (field) snprintf(where, sizeof where, "line %llu: field \"%s\"", ln, field);
    else snprintf(where, sizeof where, "line %llu", ln);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return os_fail(OS_ERR_FORMAT, c->path, where, hint, "%s", what);
}

int import_key_kind(const ImportCtx *c, const char *k, size_t len) {
    if (len == 2 && !strncmp(k, "id", 2)) return COL_ID;
    if (len == 4 && !strncmp(k, "text", 4)) return COL_TEXT;
    for (uint32_t m = 1; m < c->n_mod; m++)
        if (strlen(c->mods[m].name) == len && !strncmp(k, c->mods[m].name, len)) return (int)m;
    return 0;
}

void import_note_unknown(ImportCtx *c, const char *k, size_t len) {
    ImportSummary *s = c->sum;
    char esc[80], pat[84];
    s->unknown_keys++;
    os_escape(esc, sizeof esc, k, len);
    size_t n = strlen(s->unknown);
    snprintf(pat, sizeof pat, "%s", esc);
    /* already listed? (exact item match in ", "-separated text) */
    for (const char *p = s->unknown; (p = strstr(p, pat)); p++) {
        int start = p == s->unknown || (p >= s->unknown + 2 && p[-2] == ',' && p[-1] == ' ');
        char end = p[strlen(pat)];
        if (start && (end == ',' || end == '\0')) return;
    }
    if (n && !strcmp(s->unknown + n - 3, "...")) return;
    if (n + strlen(esc) + 6 < sizeof s->unknown)
        snprintf(s->unknown + n, sizeof s->unknown - n, "%s%s", n ? ", " : "", esc);
    else if (n + 5 < sizeof s->unknown)
        snprintf(s->unknown + n, sizeof s->unknown - n, ", ...");
}

OsStatus import_row_set(ImportCtx *c, ImportRow *r, int kind, const char *name, uint64_t v) {
    OsStatus st = OS_OK;
    if (kind == COL_ID) {
        r->id = v;
        r->has_id = 1;
        return OS_OK;
    }
    if (v >= TRACE_MAX_LEN)
        return import_fail(c, 0, name, "lengths are token/patch/frame counts", "%llu is absurd (>= 2^31)",
                           (unsigned long long)v);
    if (kind == COL_TEXT) {
        r->text = (uint32_t)v;
        r->has_text = 1;
        return OS_OK;
    }
    if (v == 0) { /* "image": 0 or [0]: no image, not a zero-length one */
        c->sum->zero_lengths++;
        return OS_OK;
    }
    OS_CHECK(os_grow((void **)&r->items, &r->cap_items, r->n_items + 1, sizeof *r->items));
    r->items[r->n_items].modality = (uint8_t)kind;
    r->items[r->n_items].length = (uint32_t)v;
    r->n_items++;
fail:
    return st;
}

int import_number(const char *s, size_t len, uint64_t *out) {
    if (!len) return 1;
    if (s[0] == '-') return len > 1 && s[1] >= '0' && s[1] <= '9' ? 2 : 1;
    if (s[0] < '0' || s[0] > '9') return 1;
    size_t i = 0;
    uint64_t v = 0;
    int big = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) big = 1; /* exact: 18446744073709551615 fits */
        else v = v * 10 + d;
    }
    if (i == len) {
        *out = v;
        return big ? 3 : 0;
    }
    /* a fraction or an exponent: an integer only when its value is integral (512.0, 5.12e2) */
    char buf[80];
    if (len >= sizeof buf) return 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + len) return 1;
    if (!isfinite(d) || errno == ERANGE) return d == 0.0 ? 4 : 3;
    if (d != floor(d)) return 4;
    if (d >= 9007199254740992.0) return 3; /* 2^53: beyond this a double is not one integer */
    *out = (uint64_t)d;
    return 0;
}

OsStatus import_number_fail(const ImportCtx *c, const char *field, int why, int list) {
    static const char *const what[] = {"", "expected an integer", "negative values are not lengths", "number too large",
                                       "expected an integer, not a fraction"};
    return import_fail(c, 0, field, NULL, "%s", why == 1 && list ? "expected an integer or a list of integers" : what[why]);
}

uint64_t import_hash_init(void) { return 0xcbf29ce484222325ull; }
uint64_t import_hash_byte(uint64_t h, unsigned char b) { return (h ^ b) * 0x100000001b3ull; }

/* ---- CSV --------------------------------------------------------------------------------- */

static const char *skip_blank(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    return p;
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

static void trim(char **s, size_t *len) {
    while (**s == ' ' || **s == '\t') (*s)++;
    *len = strlen(*s);
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r')) (*len)--;
}

static OsStatus csv_header(ImportCtx *c, char *line) {
    char *f[IMPORT_MAX_COLS];
    int has_text = 0;
    if (strchr(line, '"')) return import_fail(c, 0, NULL, "write plain integers, no quotes", "quoted CSV is not supported");
    int n = split_commas(line, f);
    if (n < 0) return import_fail(c, 0, NULL, NULL, "too many columns");
    for (int i = 0; i < n; i++) {
        char *name = f[i], key[80];
        size_t len;
        trim(&name, &len);
        os_escape(key, sizeof key, name, len);
        int kind = import_key_kind(c, name, len);
        if (!kind) {
            if (!c->ignore_unknown) {
                char hint[320];
                snprintf(hint, sizeof hint, "%s; --ignore-unknown skips other columns", c->known);
                return import_fail(c, 0, key, hint, "unknown column");
            }
            import_note_unknown(c, name, len);
            c->sum->unknown_keys--; /* counted per value below, not per header cell */
            kind = COL_SKIP;
        }
        for (int j = 0; j < i && kind != COL_SKIP; j++)
            if (c->col[j] == kind) return import_fail(c, 0, key, NULL, "repeated column");
        c->col[i] = kind;
        has_text |= kind == COL_TEXT;
    }
    if (!has_text)
        return import_fail(c, 0, "text", "the header needs a text column, e.g. id,text,image,audio", "missing");
    c->n_cols = n;
    c->header_done = 1;
    return OS_OK;
}

static OsStatus csv_row(ImportCtx *c, char *line, ImportRow *r) {
    OsStatus st = OS_OK;
    char *f[IMPORT_MAX_COLS];
    if (strchr(line, '"')) return import_fail(c, 0, NULL, "write plain integers, no quotes", "quoted CSV is not supported");
    int n = split_commas(line, f);
    if (n != c->n_cols)
        return import_fail(c, 0, NULL, NULL, "%d fields, the header has %d", n < 0 ? IMPORT_MAX_COLS + 1 : n, c->n_cols);
    for (int i = 0; i < n; i++) {
        int kind = c->col[i];
        if (kind == COL_SKIP) {
            c->sum->unknown_keys++;
            continue;
        }
        const char *name = kind == COL_ID ? "id" : kind == COL_TEXT ? "text" : c->mods[kind].name;
        char *cell = f[i];
        size_t len;
        trim(&cell, &len);
        cell[len] = '\0';
        if (!len) {
            if (kind < 1) return import_fail(c, 0, name, NULL, "empty (expected an integer)");
            continue; /* no items of this modality */
        }
        if (kind == COL_ID && !(cell[0] >= '0' && cell[0] <= '9') && cell[0] != '-' && cell[0] != '.') {
            uint64_t h = import_hash_init(); /* a string id, hashed as in JSON */
            for (size_t k = 0; k < len; k++) h = import_hash_byte(h, (unsigned char)cell[k]);
            r->id = h;
            r->has_id = 1;
            c->sum->string_ids++;
            continue;
        }
        const char *p = cell;
        for (;;) {
            const char *q = p;
            while (*q && *q != ';' && *q != ' ' && *q != '\t') q++;
            uint64_t v;
            int why = import_number(p, (size_t)(q - p), &v);
            if (why == 1 && q > p && (*p == '-' || (*p >= '0' && *p <= '9')))
                return import_fail(c, 0, name, kind >= 1 ? "separate list values with ';'" : NULL,
                                   "unexpected characters after the number");
            if (why) return import_number_fail(c, name, why, kind >= 1);
            OS_CHECK(import_row_set(c, r, kind, name, v));
            p = skip_blank(q);
            if (*p == ';' && kind >= 1) {
                p = skip_blank(p + 1);
                continue;
            }
            if (*p)
                return import_fail(c, 0, name, kind >= 1 ? "separate list values with ';'" : NULL,
                                   "unexpected characters after the number");
            break;
        }
    }
fail:
    return st;
}

/* Every CSV line through fn, each read into a buffer of at most IMPORT_MAX_LINE bytes. */
static OsStatus import_csv(ImportCtx *c, ImportRow *row, ImportRowFn *fn, void *user) {
    OsStatus st = OS_OK;
    char *line = malloc(IMPORT_MAX_LINE + 1);
    ALLOC_CHECK(line);
    snprintf(c->sum->format, sizeof c->sum->format, "csv");
    for (;;) {
        size_t n = 0;
        int ch;
        while ((ch = import_peek(c)) >= 0 && ch != '\n') {
            if (n == IMPORT_MAX_LINE) {
                st = import_fail(c, 0, NULL, "split the line", "longer than 1 MiB");
                goto fail;
            }
            line[n++] = (char)import_get(c);
        }
        if (ch == -2) { /* the reader recorded why */
            st = OS_ERR_FORMAT;
            goto fail;
        }
        line[n] = '\0';
        int blank = !*skip_blank(line);
        if (!blank) {
            if (!c->header_done) {
                OS_CHECK(csv_header(c, line));
            } else {
                row->has_id = row->has_text = 0;
                row->id = 0;
                row->text = 0;
                row->n_items = 0;
                OS_CHECK(csv_row(c, line, row));
                OS_CHECK(fn(user, row));
            }
        }
        if (ch == -1) break;
        import_get(c); /* '\n' */
    }
    if (!c->header_done)
        OS_FAIL(OS_ERR_FORMAT, c->path, NULL, "the first line must be a header like id,text,image,audio",
                "no header (empty file)");
fail:
    free(line);
    return st;
}

/* ---- formats ------------------------------------------------------------------------------- */

typedef OsStatus ReadFn(ImportCtx *c, ImportRow *row, ImportRowFn *fn, void *user);
typedef struct {
    const char *name;
    const char *ext[3];
    ReadFn *read;
} ImportFormat;

static const ImportFormat FORMATS[] = {
    {"jsonl", {".jsonl", ".ndjson", ".json"}, import_json},
    {"csv", {".csv", NULL, NULL}, import_csv},
};

static int ends_with(const char *s, size_t n, const char *suf) {
    size_t k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* From --format, else the extension (a trailing .gz ignored), else (stdin) the first byte. */
static OsStatus pick_format(const ImportConfig *cfg, ImportCtx *c, const ImportFormat **out) {
    OsStatus st = OS_OK;
    *out = NULL;
    if (cfg->format) {
        const char *f = !strcmp(cfg->format, "json") ? "jsonl" : cfg->format;
        for (size_t i = 0; i < OS_ARRAY_LEN(FORMATS); i++)
            if (!strcmp(f, FORMATS[i].name)) *out = &FORMATS[i];
        if (!*out) OS_FAIL(OS_ERR_ARG, "--format", NULL, "use jsonl, json or csv", "unknown format '%s'", cfg->format);
        return OS_OK;
    }
    size_t n = strlen(cfg->input);
    if (ends_with(cfg->input, n, ".gz")) n -= 3;
    for (size_t i = 0; i < OS_ARRAY_LEN(FORMATS); i++)
        for (int e = 0; e < 3 && FORMATS[i].ext[e]; e++) {
            size_t el = strlen(FORMATS[i].ext[e]);
            if (n >= el && !strncmp(cfg->input + n - el, FORMATS[i].ext[e], el)) *out = &FORMATS[i];
        }
    if (!*out && !strcmp(cfg->input, "-")) {
        int ch;
        while ((ch = import_peek(c)) == ' ' || ch == '\t' || ch == '\r' || ch == '\n') import_get(c);
        if (ch == -2) return OS_ERR_FORMAT;
        *out = ch == '{' || ch == '[' || ch == -1 ? &FORMATS[0] : &FORMATS[1];
    }
    if (!*out)
        OS_FAIL(OS_ERR_ARG, cfg->input, NULL, "name it .jsonl, .json or .csv (optionally .gz), or pass --format jsonl|csv",
                "cannot tell the format from the file name");
fail:
    return st;
}

/* Open the input (a path or "-") as a gzFile, refusing directories and naming errno. */
static OsStatus open_input(ImportReader *r, const char *path, const char *shown) {
    OsStatus st = OS_OK;
    int fd = -1;
    struct stat sb;
    if (!strcmp(path, "-")) {
        fd = dup(STDIN_FILENO);
        if (fd < 0) OS_FAIL(OS_ERR_IO, shown, NULL, NULL, "cannot read standard input: %s", strerror(errno));
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            OS_FAIL(OS_ERR_IO, shown, NULL, e == ENOENT ? "check the path" : NULL, "cannot open for reading: %s",
                    e == ENOENT ? "no such file" : strerror(e));
        }
    }
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
        OS_FAIL(OS_ERR_IO, shown, NULL, "give the JSONL/CSV file inside it", "is a directory");
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) OS_FAIL(OS_ERR_NOMEM, shown, NULL, NULL, "cannot set up the reader");
    fd = -1; /* owned by gz now */
    gzbuffer(r->gz, 1 << 17);
    r->line = 1;
fail:
    if (fd >= 0) close(fd);
    return st;
}

/* ---- dealing ------------------------------------------------------------------------------ */

typedef struct {
    const ImportConfig *cfg;
    ImportSummary *sum;
    TraceWriter *w;
    TraceStep step, all; /* all: every example, only when shuffling */
    uint64_t n_rows;
    const uint32_t *window;
} Deal;

static OsStatus flush_step(Deal *d) {
    OsStatus st = OS_OK;
    d->step.dp = d->cfg->dp;
    d->step.index = d->sum->steps;
    OS_CHECK(trace_writer_add_step(d->w, &d->step));
    d->sum->steps++;
    d->sum->examples += d->step.n_examples;
    d->sum->items += d->step.n_items;
    trace_step_clear(&d->step);
fail:
    return st;
}

static OsStatus on_row(void *user, ImportRow *row) {
    OsStatus st = OS_OK;
    Deal *d = user;
    uint64_t id = row->has_id ? row->id : d->n_rows;
    d->n_rows++;
    for (size_t k = 0; k < row->n_items; k++) {
        const TraceItem *it = &row->items[k];
        if (it->length > d->sum->longest[it->modality]) d->sum->longest[it->modality] = it->length;
        if (d->window[it->modality] && it->length > d->window[it->modality]) d->sum->over_window[it->modality]++;
    }
    if (row->n_items > UINT32_MAX) OS_FAIL(OS_ERR_RANGE, d->cfg->input, NULL, NULL, "too many items in one example");
    if (d->cfg->shuffle) {
        OS_CHECK(trace_step_push(&d->all, row->text, id, row->items, (uint32_t)row->n_items));
    } else {
        OS_CHECK(trace_step_push(&d->step, row->text, id, row->items, (uint32_t)row->n_items));
        if (d->step.n_examples == d->cfg->global_batch) OS_CHECK(flush_step(d));
    }
fail:
    return st;
}

OsStatus import_run(const ImportConfig *cfg, ImportSummary *sum) { return import_run_opts(cfg, NULL, sum); }

OsStatus import_run_opts(const ImportConfig *cfg, const ImportOptions *opt, ImportSummary *sum) {
    OsStatus st = OS_OK;
    ImportReader *rd = NULL;
    ImportRow row = {0};
    gsl_rng *rng = NULL;
    uint32_t *perm = NULL;
    const ImportFormat *fmt = NULL;
    ImportCtx c;
    TraceProvenance prov;
    Deal d;
    uint32_t nm = 0, windows[TRACE_MAX_MODALITIES] = {0};
    int noted = 0;
    const char *shown = !strcmp(cfg->input, "-") ? "<stdin>" : cfg->input;
    const TraceModality *std = trace_std_modalities(&nm);
    TraceModality mods[TRACE_MAX_MODALITIES];
    memset(&d, 0, sizeof d);
    trace_step_init(&d.step);
    trace_step_init(&d.all);
    memset(sum, 0, sizeof *sum);
    memset(&c, 0, sizeof c);
    c.path = shown;
    c.mods = std;
    c.n_mod = nm;
    c.sum = sum;
    c.ignore_unknown = opt && opt->ignore_unknown;
    size_t kn = (size_t)snprintf(c.known, sizeof c.known, "known fields: id, text");
    for (uint32_t m = 1; m < nm && kn < sizeof c.known; m++)
        kn += (size_t)snprintf(c.known + kn, sizeof c.known - kn, ", %s", std[m].name);
    uint32_t B = cfg->global_batch;
    if (B < 1 || cfg->dp < 1 || B % cfg->dp)
        OS_FAIL(OS_ERR_ARG, "--global-batch", NULL, "make the global batch a multiple of --dp",
                "%u examples do not split over dp = %u", B, cfg->dp);
    memcpy(mods, std, nm * sizeof *mods);
    for (uint32_t m = 0; m < nm; m++) {
        if (opt && opt->ratio && opt->ratio[m]) mods[m].default_ratio = opt->ratio[m];
        windows[m] = opt && opt->window ? opt->window[m] : STD_WINDOWS[m];
        sum->window[m] = windows[m];
    }
    rd = calloc(1, sizeof *rd);
    ALLOC_CHECK(rd);
    c.rd = rd;
    OS_CHECK(open_input(rd, cfg->input, shown));
    /* -o may not replace the input (for "-", whatever file stdin is redirected from) */
    os_input_note(strcmp(cfg->input, "-") ? cfg->input : "/dev/stdin");
    noted = 1;
    /* a UTF-8 byte-order mark (Windows editors, some exporters) is not part of the data */
    if (import_peek(&c) == 0xef) {
        import_get(&c);
        if (import_get(&c) != 0xbb || import_get(&c) != 0xbf) {
            st = import_fail(&c, 1, NULL, "save the file as UTF-8", "starts with a broken byte-order mark");
            goto fail;
        }
    }
    OS_CHECK(pick_format(cfg, &c, &fmt));
    memset(&prov, 0, sizeof prov);
    snprintf(prov.source, sizeof prov.source, "import file=%s format=%s global_batch=%u dp=%u shuffle=%d seed=%llu",
             shown, fmt->name, B, cfg->dp, cfg->shuffle ? 1 : 0, (unsigned long long)cfg->seed);
    snprintf(prov.created_by, sizeof prov.created_by, "%s", cfg->created_by ? cfg->created_by : "orchsim");
    OS_CHECK(trace_writer_create(&d.w, cfg->output, mods, nm, &prov, cfg->chunk_rows));
    if (opt && opt->tokens_per_item) OS_CHECK(trace_writer_set_tokens_per_item(d.w, opt->tokens_per_item));
    d.cfg = cfg;
    d.sum = sum;
    d.window = windows;
    OS_CHECK(fmt->read(&c, &row, on_row, &d));
    if (d.n_rows == 0) OS_FAIL(OS_ERR_FORMAT, shown, NULL, "add one example per line", "no examples");
    if (d.n_rows % B && !cfg->drop_remainder)
        OS_FAIL(OS_ERR_FORMAT, shown, NULL, "pass --drop-remainder, or change --global-batch",
                "%llu examples leave a partial batch of %llu (global batch %u)", (unsigned long long)d.n_rows,
                (unsigned long long)(d.n_rows % B), B);
    if (d.n_rows < B)
        OS_FAIL(OS_ERR_FORMAT, shown, NULL, "use a smaller --global-batch", "%llu examples do not fill one batch of %u",
                (unsigned long long)d.n_rows, B);
    sum->dropped = d.n_rows % B;
    if (cfg->shuffle) {
        /* Fisher-Yates: for i = n-1 .. 1 swap i with a uniform j in [0, i]. */
        perm = malloc(sizeof *perm * d.all.n_examples);
        ALLOC_CHECK(perm);
        for (uint32_t i = 0; i < d.all.n_examples; i++) perm[i] = i;
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        ALLOC_CHECK(rng);
        gsl_rng_set(rng, (unsigned long)((cfg->seed ^ (cfg->seed >> 32)) & 0xffffffffu));
        for (uint32_t i = d.all.n_examples - 1; i > 0; i--) {
            uint32_t j = (uint32_t)gsl_rng_uniform_int(rng, (unsigned long)i + 1);
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        uint64_t keep = (uint64_t)d.all.n_examples - sum->dropped;
        for (uint64_t k = 0; k < keep; k++) {
            const TraceExample *e = &d.all.examples[perm[k]];
            /* no items at all: items is NULL, and NULL + 0 is undefined (UBSan, fuzz_import) */
            const TraceItem *its = e->n_items ? d.all.items + e->first_item : NULL;
            OS_CHECK(trace_step_push(&d.step, e->text, e->id, its, e->n_items));
            if (d.step.n_examples == B) OS_CHECK(flush_step(&d));
        }
    }
    /* streaming: a partial batch may remain in `step`; it is dropped (checked above) */
    {
        TraceWriter *wc = d.w;
        d.w = NULL;
        OS_CHECK(trace_writer_close(wc));
    }
fail:
    trace_writer_abort(d.w);
    if (rng) gsl_rng_free(rng);
    free(perm);
    free(row.items);
    if (rd && rd->gz) gzclose(rd->gz);
    free(rd);
    if (noted) os_input_drop(strcmp(cfg->input, "-") ? cfg->input : "/dev/stdin");
    trace_step_free(&d.step);
    trace_step_free(&d.all);
    return st;
}
