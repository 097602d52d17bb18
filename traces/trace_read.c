/* trace_read.c — the validating, streaming trace reader of trace.h.
 * trace_open checks the structure (trace_check.c: file header, object headers, attributes,
 * every table's type, layout and storage), the modality table, and every /steps row, scanned
 * in bounded blocks together with each step's first and last example (so the total rows the
 * steps reference are known before any is read); trace_read_step reads one step's example and
 * item rows by hyperslab into buffers reused for every step, and checks each row.
 * Memory: O(largest step, within TraceLimits) + HDF5's chunk caches (one or two chunks per
 * table), never O(trace). Work for a full pass: O(rows the file holds). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "traces/h5check.h"
#include "traces/trace.h"

#define READ_STEP_BLOCK 65536u           /* /steps rows checked per block at open */
#define READ_CHUNK_CACHE (4u << 20)      /* bytes of chunk cache per table: > one chunk */
#define READ_AHEAD_ROWS 16384u           /* rows read ahead per table for small steps */
#define HINT_REGEN "regenerate the trace with `orchsim gen` or `orchsim import`"

struct Trace {
    char path[4096];
    uint64_t file_size;
    int noted; /* registered with os_input_note */
    TraceLimits lim;
    uint32_t tpi[TRACE_MAX_MODALITIES]; /* tokens per item, 0 = by ratio */
    hid_t file;
    hid_t ds[TH5_N_TABLES];
    hid_t mtype[TH5_N_TABLES];
    uint64_t rows[TH5_N_TABLES];
    uint32_t n_mod;
    TraceModality mod[TRACE_MAX_MODALITIES];
    TraceProvenance prov;
    TraceStep step;    /* reused for every step */
    /* Read-ahead: a step of a few rows would otherwise cost three HDF5 reads (~30 us each);
     * rows [ra_start, ra_start + ra_n) of each of /examples, /items, /steps are kept. */
    unsigned char *ra[TH5_N_TABLES];
    uint64_t ra_start[TH5_N_TABLES], ra_n[TH5_N_TABLES], ra_next[TH5_N_TABLES], ra_rows;
    uint64_t cursor;   /* next step for trace_next_step */
};

/* Read rows [start, start+n) of table t into mem. */
static OsStatus read_rows(Trace *t, Th5Table tb, uint64_t start, uint64_t n, void *mem) {
    OsStatus st = OS_OK;
    hid_t fs = -1, ms = -1;
    const char *obj = TH5_TABLES[tb].dataset;
    if (n == 0) return OS_OK;
    hsize_t s0 = start, cnt = n;
    H5_CHECK(fs = H5Dget_space(t->ds[tb]), t->path, obj, NULL);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &s0, NULL, &cnt, NULL), t->path, obj, NULL);
    H5_CHECK(ms = H5Screate_simple(1, &cnt, NULL), t->path, obj, NULL);
    if (H5Dread(t->ds[tb], t->mtype[tb], ms, fs, H5P_DEFAULT, mem) < 0) {
        if (os_verbose()) H5Eprint2(H5E_DEFAULT, stderr);
        OS_FAIL(OS_ERR_FORMAT, t->path, obj, "the file is truncated or corrupt: " HINT_REGEN,
                "cannot read %llu rows from row %llu (checksum or decompression error)", (unsigned long long)n,
                (unsigned long long)start);
    }
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

static const size_t MEM_ROW[TH5_N_TABLES] = {sizeof(TraceModality), sizeof(TraceExample), sizeof(TraceItem),
                                             sizeof(TraceStepRec)};

/* read_rows through the read-ahead: a small read inside the kept block is a copy; a small
 * read that continues the last one (a sequential stream: steps in order, or a step's first
 * then last example) refills the block from its start; any other read (random access) reads
 * exactly its rows, so hopping around costs one HDF5 read, never a block. A refill that fails
 * (a corrupt chunk beyond the rows asked for) falls back to reading exactly the rows asked
 * for, so errors stay precise. Reads larger than half the block go straight to HDF5. */
static OsStatus read_rows_ahead(Trace *t, Th5Table tb, uint64_t start, uint64_t n, void *mem) {
    OsStatus st = OS_OK;
    size_t rs = MEM_ROW[tb];
    if (n == 0) return OS_OK;
    int inside = start >= t->ra_start[tb] && start - t->ra_start[tb] + n <= t->ra_n[tb];
    int stream = start == t->ra_next[tb] || (start >= t->ra_start[tb] && start <= t->ra_start[tb] + t->ra_n[tb]);
    t->ra_next[tb] = start + n;
    if (!inside && (t->ra_rows <= 1 || n > t->ra_rows / 2 || !stream)) return read_rows(t, tb, start, n, mem);
    if (!inside) {
        if (!t->ra[tb]) {
            t->ra[tb] = malloc(rs * t->ra_rows);
            if (!t->ra[tb]) return read_rows(t, tb, start, n, mem);
        }
        uint64_t k = OS_MIN(t->ra_rows, t->rows[tb] - start);
        t->ra_n[tb] = 0;
        if (read_rows(t, tb, start, k, t->ra[tb]) != OS_OK) {
            os_clear_error();
            return read_rows(t, tb, start, n, mem);
        }
        t->ra_start[tb] = start;
        t->ra_n[tb] = k;
    }
    memcpy(mem, t->ra[tb] + (size_t)(start - t->ra_start[tb]) * rs, (size_t)n * rs);
    return st;
}

static OsStatus check_root(Trace *t) {
    OsStatus st = OS_OK;
    char fmt[64];
    uint64_t v = 0;
    OS_CHECK(th5_check_object(t->file, t->path, "/", 0));
    OS_CHECK(th5_read_str_attr(t->file, t->path, "/", "format", fmt, sizeof fmt));
    if (strcmp(fmt, TRACE_FORMAT_NAME) != 0) {
        char esc[160];
        os_escape(esc, sizeof esc, fmt, sizeof fmt);
        OS_FAIL(OS_ERR_FORMAT, t->path, "/ attribute 'format'", "is this an orchsim trace?", "'%s', expected '%s'", esc,
                TRACE_FORMAT_NAME);
    }
    OS_CHECK(th5_read_uint_attr(t->file, t->path, "/", "orchsim_trace_version", &v));
    if (v < TRACE_VERSION_MIN || v > TRACE_VERSION)
        OS_FAIL(OS_ERR_FORMAT, t->path, "/ attribute 'orchsim_trace_version'",
                v < TRACE_VERSION ? HINT_REGEN : "use the orchsim that wrote it, or regenerate the trace",
                "version %llu is not supported (this orchsim reads versions %u to %u)", (unsigned long long)v,
                TRACE_VERSION_MIN, TRACE_VERSION);
    OS_CHECK(th5_read_str_attr(t->file, t->path, "/", "source", t->prov.source, sizeof t->prov.source));
    OS_CHECK(th5_read_str_attr(t->file, t->path, "/", "created_by", t->prov.created_by, sizeof t->prov.created_by));
fail:
    return st;
}

/* Open one table after trace_check.c has vetted it; the chunk cache holds two chunks. */
static OsStatus open_table(Trace *t, Th5Table tb) {
    OsStatus st = OS_OK;
    hid_t dapl = -1, ds = -1;
    const char *obj = TH5_TABLES[tb].dataset;
    size_t chunk = 0;
    OS_CHECK(th5_check_object(t->file, t->path, obj, 1));
    ds = H5Dopen2(t->file, obj, H5P_DEFAULT);
    if (ds < 0) OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN, "cannot open the dataset");
    OS_CHECK(th5_check_table(ds, t->path, tb, t->file_size, &t->rows[tb], &chunk));
    H5Dclose(ds);
    ds = -1;
    H5_CHECK(dapl = H5Pcreate(H5P_DATASET_ACCESS), t->path, obj, NULL);
    /* two chunks (a hyperslab can straddle a boundary), so a sequential scan inflates each
     * chunk once; chunks are <= TRACE_MAX_CHUNK_BYTES (checked) */
    size_t cache = OS_MAX((size_t)READ_CHUNK_CACHE, 2 * chunk + 4096);
    H5_CHECK(H5Pset_chunk_cache(dapl, 521, cache, 1.0), t->path, obj, NULL);
    t->ds[tb] = H5Dopen2(t->file, obj, dapl);
    if (t->ds[tb] < 0) OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN, "cannot open the dataset");
    H5_CHECK(t->mtype[tb] = th5_mem_type(tb), t->path, obj, NULL);
fail:
    if (ds >= 0) H5Dclose(ds);
    if (dapl >= 0) H5Pclose(dapl);
    return st;
}

/* Names and units as identifiers: letters, digits and _ . + - only, so nothing a trace says
 * can reach a terminal as a control sequence or hide in a table. */
static int ident_ok(const char *s, int may_be_empty) {
    if (!*s) return may_be_empty;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '+' || c == '-'))
            return 0;
    }
    return 1;
}

static OsStatus check_modalities(Trace *t) {
    OsStatus st = OS_OK;
    char field[64];
    uint64_t n = t->rows[TH5_MODALITIES];
    if (n < 1 || n > TRACE_MAX_MODALITIES)
        OS_FAIL(OS_ERR_FORMAT, t->path, "/modalities", HINT_REGEN, "%llu rows (need 1..%d)",
                (unsigned long long)n, TRACE_MAX_MODALITIES);
    memset(t->mod, 0, sizeof t->mod);
    OS_CHECK(read_rows(t, TH5_MODALITIES, 0, n, t->mod));
    t->n_mod = (uint32_t)n;
    if (strcmp(t->mod[0].name, "text") != 0)
        OS_FAIL(OS_ERR_FORMAT, t->path, "/modalities[0].name", HINT_REGEN, "'%s' (row 0 must be \"text\")",
                t->mod[0].name);
    for (uint32_t m = 0; m < t->n_mod; m++) {
        t->mod[m].name[TRACE_NAME_LEN - 1] = t->mod[m].unit[TRACE_NAME_LEN - 1] = '\0';
        if (!t->mod[m].name[0]) {
            snprintf(field, sizeof field, "/modalities[%u].name", m);
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "empty name");
        }
        for (int u = 0; u < 2; u++) {
            const char *v = u ? t->mod[m].unit : t->mod[m].name;
            if (ident_ok(v, u)) continue;
            char esc[160];
            os_escape(esc, sizeof esc, v, TRACE_NAME_LEN);
            snprintf(field, sizeof field, "/modalities[%u].%s", m, u ? "unit" : "name");
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "'%s': only letters, digits and _ . + - are allowed", esc);
        }
        if (t->mod[m].default_ratio < 1) {
            snprintf(field, sizeof field, "/modalities[%u].default_ratio", m);
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "0 (must be >= 1)");
        }
        for (uint32_t j = 0; j < m; j++)
            if (!strcmp(t->mod[j].name, t->mod[m].name)) {
                snprintf(field, sizeof field, "/modalities[%u].name", m);
                OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "'%s' repeats row %u", t->mod[m].name, j);
            }
    }
    {
        uint64_t v[TRACE_MAX_MODALITIES] = {0};
        int present = 0;
        OS_CHECK(th5_read_uint_array_attr(t->ds[TH5_MODALITIES], t->path, "/modalities", "tokens_per_item", v, n,
                                          &present));
        for (uint32_t m = 0; present && m < t->n_mod; m++) {
            if (v[m] >= TRACE_MAX_LEN || (m == 0 && v[m]))
                OS_FAIL(OS_ERR_FORMAT, t->path, "/modalities attribute 'tokens_per_item'", HINT_REGEN,
                        "entry %u = %llu (text: 0; items: < 2^31)", m, (unsigned long long)v[m]);
            t->tpi[m] = (uint32_t)v[m];
        }
    }
fail:
    return st;
}

static OsStatus check_step_rec(const Trace *t, uint64_t row, const TraceStepRec *r) {
    OsStatus st = OS_OK;
    char field[80];
    unsigned long long s = (unsigned long long)row;
    if (r->dp < 1) {
        snprintf(field, sizeof field, "/steps[%llu].dp", s);
        OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "0 (must be >= 1)");
    }
    if (r->n_examples < 1) {
        snprintf(field, sizeof field, "/steps[%llu].n_examples", s);
        OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "0 (a step needs at least one example)");
    }
    if (r->n_examples % r->dp) {
        snprintf(field, sizeof field, "/steps[%llu].n_examples", s);
        OS_FAIL(OS_ERR_FORMAT, t->path, field, "every rank must draw the same number of examples",
                "%u is not divisible by dp = %u", r->n_examples, r->dp);
    }
    if (r->n_examples > t->lim.max_step_examples) {
        snprintf(field, sizeof field, "/steps[%llu].n_examples", s);
        OS_FAIL(OS_ERR_RANGE, t->path, field, "if the step is real, raise the limit: info --max-step-examples or ORCHSIM_MAX_STEP_EXAMPLES",
                "%u examples in one step exceed the reader's limit of %llu", r->n_examples,
                (unsigned long long)t->lim.max_step_examples);
    }
    if (r->first_example > t->rows[TH5_EXAMPLES] || r->n_examples > t->rows[TH5_EXAMPLES] - r->first_example) {
        snprintf(field, sizeof field, "/steps[%llu].first_example", s);
        OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN,
                "%llu examples from row %llu run past /examples (%llu rows)", (unsigned long long)r->n_examples,
                (unsigned long long)r->first_example, (unsigned long long)t->rows[TH5_EXAMPLES]);
    }
fail:
    return st;
}

/* qsort has no context argument in C11: the block being sorted (single-threaded reader). */
static const TraceStepRec *g_sort_steps;
static int by_first_example(const void *a, const void *b) {
    uint64_t x = g_sort_steps[*(const uint32_t *)a].first_example, y = g_sort_steps[*(const uint32_t *)b].first_example;
    return x < y ? -1 : x > y;
}

/* Every /steps row, in blocks; plus the work bound: the steps together may reference at most
 * the rows /examples holds, and (from each step's first and last example, whose items are
 * contiguous when read) at most the rows /items holds. A file cannot make a pass read more
 * rows than it stores, however its steps overlap. */
static OsStatus check_steps(Trace *t) {
    OsStatus st = OS_OK;
    TraceStepRec *buf = NULL;
    TraceExample *ex = NULL;
    uint32_t *ord = NULL;
    uint64_t n = t->rows[TH5_STEPS], sum_ex = 0, sum_it = 0, rows_it = t->rows[TH5_ITEMS];
    char field[80];
    size_t blk = (size_t)(n < READ_STEP_BLOCK ? (n ? n : 1) : READ_STEP_BLOCK);
    if (n == 0) OS_FAIL(OS_ERR_FORMAT, t->path, "/steps", HINT_REGEN, "0 rows (a trace needs at least one step)");
    buf = malloc(sizeof *buf * blk);
    ex = malloc(sizeof *ex * 2 * blk);
    ord = malloc(sizeof *ord * blk);
    ALLOC_CHECK(buf);
    ALLOC_CHECK(ex);
    ALLOC_CHECK(ord);
    for (uint64_t b = 0; b < n; b += READ_STEP_BLOCK) {
        uint64_t k = OS_MIN((uint64_t)READ_STEP_BLOCK, n - b);
        OS_CHECK(read_rows(t, TH5_STEPS, b, k, buf));
        for (uint64_t i = 0; i < k; i++) {
            OS_CHECK(check_step_rec(t, b + i, &buf[i]));
            sum_ex += buf[i].n_examples; /* each <= rows: no overflow before the check below */
            if (sum_ex > t->rows[TH5_EXAMPLES])
                OS_FAIL(OS_ERR_FORMAT, t->path, "/steps", "each example belongs to one step: " HINT_REGEN,
                        "steps 0..%llu reference %llu examples, but /examples holds %llu rows (the steps overlap)",
                        (unsigned long long)(b + i), (unsigned long long)sum_ex,
                        (unsigned long long)t->rows[TH5_EXAMPLES]);
        }
        /* each step's first and last example, visited in example order so that the reads
         * form one sequential stream the read-ahead serves, however the steps are ordered */
        for (uint64_t i = 0; i < k; i++) ord[i] = (uint32_t)i;
        g_sort_steps = buf;
        qsort(ord, (size_t)k, sizeof *ord, by_first_example);
        for (uint64_t j = 0; j < k; j++) {
            uint32_t i = ord[j];
            OS_CHECK(read_rows_ahead(t, TH5_EXAMPLES, buf[i].first_example, 1, &ex[2 * i]));
            OS_CHECK(read_rows_ahead(t, TH5_EXAMPLES, buf[i].first_example + buf[i].n_examples - 1, 1, &ex[2 * i + 1]));
        }
        for (uint64_t i = 0; i < k; i++) {
            const TraceExample *f = &ex[2 * i], *l = &ex[2 * i + 1];
            uint64_t row = b + i, lrow = buf[i].first_example + buf[i].n_examples - 1;
            if (l->first_item > rows_it || l->n_items > rows_it - l->first_item) {
                snprintf(field, sizeof field, "/examples[%llu].first_item", (unsigned long long)lrow);
                OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "%u items from row %llu run past /items (%llu rows)",
                        l->n_items, (unsigned long long)l->first_item, (unsigned long long)rows_it);
            }
            if (f->first_item > l->first_item) {
                snprintf(field, sizeof field, "/examples[%llu].first_item", (unsigned long long)buf[i].first_example);
                OS_FAIL(OS_ERR_FORMAT, t->path, field,
                        "writers store a step's items contiguously in example order: " HINT_REGEN,
                        "%llu is after the step's last example's %llu (items not contiguous within the step)",
                        (unsigned long long)f->first_item, (unsigned long long)l->first_item);
            }
            uint64_t ni = l->first_item + l->n_items - f->first_item;
            if (ni > t->lim.max_step_items) {
                snprintf(field, sizeof field, "/steps[%llu]", (unsigned long long)row);
                OS_FAIL(OS_ERR_RANGE, t->path, field, "if the step is real, raise the limit: info --max-step-items or ORCHSIM_MAX_STEP_ITEMS",
                        "%llu items in one step exceed the reader's limit of %llu", (unsigned long long)ni,
                        (unsigned long long)t->lim.max_step_items);
            }
            sum_it += ni;
            if (sum_it > rows_it)
                OS_FAIL(OS_ERR_FORMAT, t->path, "/steps", "each item belongs to one example: " HINT_REGEN,
                        "steps 0..%llu reference %llu items, but /items holds %llu rows (the steps overlap)",
                        (unsigned long long)row, (unsigned long long)sum_it, (unsigned long long)rows_it);
        }
    }
fail:
    free(ord);
    free(ex);
    free(buf);
    return st;
}

static uint64_t env_limit(const char *name, uint64_t def) {
    const char *v = getenv(name);
    uint64_t x = 0;
    if (!v || !*v) return def;
    if (os_parse_u64(&x, v, 1, UINT64_MAX / 2, name) != OS_OK) {
        os_clear_error(); /* a bad override keeps the default rather than failing every read */
        return def;
    }
    return x;
}

OsStatus trace_open_limits(Trace **out, const char *path, const TraceLimits *lim) {
    OsStatus st = OS_OK;
    Trace *t = NULL;
    uint64_t size = 0;
    *out = NULL;
    th5_quiet();
    OS_CHECK(th5_check_file(path, &size));
    t = calloc(1, sizeof *t);
    ALLOC_CHECK(t);
    os_input_note(path);
    t->noted = 1;
    t->file = -1;
    for (int i = 0; i < TH5_N_TABLES; i++) t->ds[i] = t->mtype[i] = -1;
    trace_step_init(&t->step);
    snprintf(t->path, sizeof t->path, "%s", path);
    t->file_size = size;
    t->lim.max_step_examples = lim && lim->max_step_examples ? lim->max_step_examples
                                                             : env_limit("ORCHSIM_MAX_STEP_EXAMPLES", TRACE_DEFAULT_MAX_STEP_EXAMPLES);
    t->lim.max_step_items = lim && lim->max_step_items ? lim->max_step_items
                                                       : env_limit("ORCHSIM_MAX_STEP_ITEMS", TRACE_DEFAULT_MAX_STEP_ITEMS);
    t->ra_rows = lim && lim->read_ahead_rows ? lim->read_ahead_rows : READ_AHEAD_ROWS;
    if (t->ra_rows > (1u << 20)) t->ra_rows = 1u << 20;
    t->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (t->file < 0) {
        if (os_verbose()) H5Eprint2(H5E_DEFAULT, stderr);
        OS_FAIL(OS_ERR_FORMAT, path, NULL, "the file is truncated or corrupt: " HINT_REGEN,
                "cannot open as HDF5 (bad checksum, truncated, or corrupt)");
    }
    OS_CHECK(check_root(t));
    for (int tb = 0; tb < TH5_N_TABLES; tb++) OS_CHECK(open_table(t, (Th5Table)tb));
    OS_CHECK(check_modalities(t));
    OS_CHECK(check_steps(t));
    *out = t;
    return OS_OK;
fail:
    trace_close(t);
    return st;
}

OsStatus trace_open(Trace **out, const char *path) { return trace_open_limits(out, path, NULL); }

void trace_close(Trace *t) {
    if (!t) return;
    for (int i = 0; i < TH5_N_TABLES; i++) {
        if (t->ds[i] >= 0) H5Dclose(t->ds[i]);
        if (t->mtype[i] >= 0) H5Tclose(t->mtype[i]);
    }
    if (t->file >= 0) H5Fclose(t->file);
    if (t->noted) os_input_drop(t->path);
    for (int i = 0; i < TH5_N_TABLES; i++) free(t->ra[i]);
    trace_step_free(&t->step);
    free(t);
}

const char *trace_path(const Trace *t) { return t->path; }
uint64_t trace_n_steps(const Trace *t) { return t->rows[TH5_STEPS]; }
uint64_t trace_n_examples(const Trace *t) { return t->rows[TH5_EXAMPLES]; }
uint64_t trace_n_items(const Trace *t) { return t->rows[TH5_ITEMS]; }
uint32_t trace_n_modalities(const Trace *t) { return t->n_mod; }
const TraceModality *trace_modality(const Trace *t, uint32_t m) { return m < t->n_mod ? &t->mod[m] : NULL; }
const TraceProvenance *trace_provenance(const Trace *t) { return &t->prov; }
uint32_t trace_tokens_per_item(const Trace *t, uint32_t m) { return m < t->n_mod ? t->tpi[m] : 0; }

int trace_modality_index(const Trace *t, const char *name) {
    for (uint32_t m = 0; m < t->n_mod; m++)
        if (!strcmp(t->mod[m].name, name)) return (int)m;
    return -1;
}

/* Check the step's example rows (absolute rows fe..) and return where its items start and
 * how many there are. Writers lay a step's items out contiguously in example order. */
static OsStatus check_examples(Trace *t, uint64_t fe, uint64_t *first, uint64_t *total) {
    OsStatus st = OS_OK;
    char field[96];
    TraceStep *s = &t->step;
    uint64_t base = s->n_examples ? s->examples[0].first_item : 0, run = 0;
    for (uint32_t k = 0; k < s->n_examples; k++) {
        const TraceExample *e = &s->examples[k];
        unsigned long long row = (unsigned long long)(fe + k);
        if (e->text >= TRACE_MAX_LEN) {
            snprintf(field, sizeof field, "/examples[%llu].text", row);
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "%u is absurd (>= 2^31)", e->text);
        }
        if (e->n_items >= TRACE_MAX_LEN) {
            snprintf(field, sizeof field, "/examples[%llu].n_items", row);
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "%u is absurd (>= 2^31)", e->n_items);
        }
        if (e->first_item > t->rows[TH5_ITEMS] || e->n_items > t->rows[TH5_ITEMS] - e->first_item) {
            snprintf(field, sizeof field, "/examples[%llu].first_item", row);
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "%u items from row %llu run past /items (%llu rows)",
                    e->n_items, (unsigned long long)e->first_item, (unsigned long long)t->rows[TH5_ITEMS]);
        }
        if (e->first_item != base + run) {
            snprintf(field, sizeof field, "/examples[%llu].first_item", row);
            OS_FAIL(OS_ERR_FORMAT, t->path, field,
                    "writers store a step's items contiguously in example order: " HINT_REGEN,
                    "%llu, expected %llu (items not contiguous within the step)",
                    (unsigned long long)e->first_item, (unsigned long long)(base + run));
        }
        run += e->n_items;
    }
    if (run > UINT32_MAX || run > t->lim.max_step_items)
        OS_FAIL(OS_ERR_RANGE, t->path, "/steps", "split the global batch",
                "a step holds %llu items (the reader's limit is %llu)", (unsigned long long)run,
                (unsigned long long)OS_MIN((uint64_t)UINT32_MAX, t->lim.max_step_items));
    *first = base;
    *total = run;
fail:
    return st;
}

static OsStatus check_items(Trace *t, uint64_t fi) {
    OsStatus st = OS_OK;
    char field[96];
    const TraceStep *s = &t->step;
    for (uint32_t i = 0; i < s->n_items; i++) {
        const TraceItem *it = &s->items[i];
        unsigned long long row = (unsigned long long)(fi + i);
        if (it->length >= TRACE_MAX_LEN) {
            snprintf(field, sizeof field, "/items[%llu].length", row);
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "%u is absurd (>= 2^31)", it->length);
        }
        if (it->modality < 1 || it->modality >= t->n_mod) {
            snprintf(field, sizeof field, "/items[%llu].modality", row);
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN,
                    "%u is not an item modality (1..%u of /modalities)", it->modality, t->n_mod - 1);
        }
    }
fail:
    return st;
}

OsStatus trace_read_step(Trace *t, uint64_t s, const TraceStep **step) {
    OsStatus st = OS_OK;
    TraceStepRec rec;
    uint64_t fi = 0, ni = 0;
    TraceStep *b = &t->step;
    *step = NULL;
    if (s >= t->rows[TH5_STEPS])
        OS_FAIL(OS_ERR_ARG, t->path, "/steps", NULL, "step %llu does not exist (%llu steps)",
                (unsigned long long)s, (unsigned long long)t->rows[TH5_STEPS]);
    OS_CHECK(read_rows_ahead(t, TH5_STEPS, s, 1, &rec));
    OS_CHECK(check_step_rec(t, s, &rec)); /* checked at open too; one row is cheap */
    if (trace_step_reserve(b, rec.n_examples, 0) != OS_OK) {
        os_clear_error();
        OS_FAIL(OS_ERR_NOMEM, t->path, "/steps", "free memory, or lower ORCHSIM_MAX_STEP_EXAMPLES",
                "step %llu: no memory for its %u examples", (unsigned long long)s, rec.n_examples);
    }
    b->n_examples = 0;
    b->n_items = 0;
    OS_CHECK(read_rows_ahead(t, TH5_EXAMPLES, rec.first_example, rec.n_examples, b->examples));
    b->n_examples = rec.n_examples;
    OS_CHECK(check_examples(t, rec.first_example, &fi, &ni));
    if (trace_step_reserve(b, 0, ni) != OS_OK) {
        os_clear_error();
        OS_FAIL(OS_ERR_NOMEM, t->path, "/items", "free memory, or lower ORCHSIM_MAX_STEP_ITEMS",
                "step %llu: no memory for its %llu items", (unsigned long long)s, (unsigned long long)ni);
    }
    OS_CHECK(read_rows_ahead(t, TH5_ITEMS, fi, ni, b->items));
    b->n_items = (uint32_t)ni;
    OS_CHECK(check_items(t, fi));
    for (uint32_t k = 0; k < b->n_examples; k++) b->examples[k].first_item -= fi;
    b->index = s;
    b->dp = rec.dp;
    *step = b;
fail:
    if (st != OS_OK) b->n_examples = b->n_items = 0;
    return st;
}

OsStatus trace_next_step(Trace *t, const TraceStep **step) {
    if (t->cursor >= t->rows[TH5_STEPS]) {
        *step = NULL;
        return OS_DONE;
    }
    OsStatus st = trace_read_step(t, t->cursor, step);
    if (st == OS_OK) t->cursor++;
    return st;
}

void trace_rewind(Trace *t) { t->cursor = 0; }

OsStatus trace_validate(Trace *t) {
    OsStatus st = OS_OK;
    const TraceStep *s = NULL;
    for (uint64_t i = 0; i < t->rows[TH5_STEPS]; i++) OS_CHECK(trace_read_step(t, i, &s));
fail:
    return st;
}
