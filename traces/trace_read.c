/* trace_read.c — the validating, streaming trace reader of trace.h.
 * trace_open checks the structure (format, version, every table's type and rank, the
 * modality table, every /steps row, scanned in bounded blocks); trace_read_step reads one
 * step's example and item rows by hyperslab into buffers reused for every step, and checks
 * each row. Memory: O(largest step) + HDF5's chunk caches (fixed size), never O(trace). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "traces/h5check.h"
#include "traces/trace.h"

#define READ_STEP_BLOCK 65536u           /* /steps rows checked per block at open */
#define READ_CHUNK_CACHE (4u << 20)      /* bytes of chunk cache per table: > one chunk */
#define HINT_REGEN "regenerate the trace with `orchsim gen` or `orchsim import`"

struct Trace {
    char path[4096];
    hid_t file;
    hid_t ds[TH5_N_TABLES];
    hid_t mtype[TH5_N_TABLES];
    uint64_t rows[TH5_N_TABLES];
    uint32_t n_mod;
    TraceModality mod[TRACE_MAX_MODALITIES];
    TraceProvenance prov;
    TraceStep step;    /* reused for every step */
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
                "cannot read rows [%llu, %llu)", (unsigned long long)start,
                (unsigned long long)(start + n));
    }
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

static OsStatus read_str_attr(Trace *t, const char *name, char *buf, size_t cap) {
    OsStatus st = OS_OK;
    hid_t at = -1, ty = -1, mt = -1;
    char field[64];
    snprintf(field, sizeof field, "/ attribute '%s'", name);
    htri_t ex = H5Aexists(t->file, name);
    H5_CHECK(ex, t->path, field, NULL);
    if (!ex) OS_FAIL(OS_ERR_FORMAT, t->path, field, "is this an orchsim trace?", "missing");
    H5_CHECK(at = H5Aopen(t->file, name, H5P_DEFAULT), t->path, field, NULL);
    H5_CHECK(ty = H5Aget_type(at), t->path, field, NULL);
    if (H5Tget_class(ty) != H5T_STRING || H5Tis_variable_str(ty) != 0 || H5Tget_size(ty) >= cap)
        OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN, "expected a fixed string shorter than %zu bytes",
                cap);
    H5_CHECK(mt = H5Tcopy(H5T_C_S1), t->path, field, NULL);
    H5_CHECK(H5Tset_size(mt, cap), t->path, field, NULL);
    H5_CHECK(H5Tset_strpad(mt, H5T_STR_NULLTERM), t->path, field, NULL);
    memset(buf, 0, cap);
    H5_CHECK(H5Aread(at, mt, buf), t->path, field, NULL);
    buf[cap - 1] = '\0';
fail:
    if (mt >= 0) H5Tclose(mt);
    if (ty >= 0) H5Tclose(ty);
    if (at >= 0) H5Aclose(at);
    return st;
}

static OsStatus check_root(Trace *t) {
    OsStatus st = OS_OK;
    hid_t at = -1, ty = -1;
    char fmt[64];
    const char *f = "/ attribute 'orchsim_trace_version'";
    OS_CHECK(read_str_attr(t, "format", fmt, sizeof fmt));
    if (strcmp(fmt, TRACE_FORMAT_NAME) != 0)
        OS_FAIL(OS_ERR_FORMAT, t->path, "/ attribute 'format'", "is this an orchsim trace?",
                "'%s', expected '%s'", fmt, TRACE_FORMAT_NAME);
    htri_t ex = H5Aexists(t->file, "orchsim_trace_version");
    H5_CHECK(ex, t->path, f, NULL);
    if (!ex) OS_FAIL(OS_ERR_FORMAT, t->path, f, "is this an orchsim trace?", "missing");
    H5_CHECK(at = H5Aopen(t->file, "orchsim_trace_version", H5P_DEFAULT), t->path, f, NULL);
    H5_CHECK(ty = H5Aget_type(at), t->path, f, NULL);
    if (H5Tget_class(ty) != H5T_INTEGER) OS_FAIL(OS_ERR_FORMAT, t->path, f, HINT_REGEN, "not an integer");
    unsigned long long v = 0;
    H5_CHECK(H5Aread(at, H5T_NATIVE_ULLONG, &v), t->path, f, NULL);
    if (v != TRACE_VERSION)
        OS_FAIL(OS_ERR_FORMAT, t->path, f, "use the orchsim that wrote it, or regenerate the trace",
                "version %llu is not supported (this orchsim reads version %u)", v, TRACE_VERSION);
    OS_CHECK(read_str_attr(t, "source", t->prov.source, sizeof t->prov.source));
    OS_CHECK(read_str_attr(t, "created_by", t->prov.created_by, sizeof t->prov.created_by));
fail:
    if (ty >= 0) H5Tclose(ty);
    if (at >= 0) H5Aclose(at);
    return st;
}

/* Open one table and check it is a rank-1 compound with the expected members. */
static OsStatus open_table(Trace *t, Th5Table tb) {
    OsStatus st = OS_OK;
    hid_t ty = -1, sp = -1, mty = -1, dapl = -1;
    const Th5TableSpec *spec = &TH5_TABLES[tb];
    const char *obj = spec->dataset;
    htri_t ex = H5Lexists(t->file, obj, H5P_DEFAULT);
    H5_CHECK(ex, t->path, obj, NULL);
    if (!ex) OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN, "dataset is missing");
    H5_CHECK(dapl = H5Pcreate(H5P_DATASET_ACCESS), t->path, obj, NULL);
    /* Larger than one chunk of any table, so a sequential scan inflates each chunk once. */
    H5_CHECK(H5Pset_chunk_cache(dapl, 521, READ_CHUNK_CACHE, 1.0), t->path, obj, NULL);
    t->ds[tb] = H5Dopen2(t->file, obj, dapl);
    if (t->ds[tb] < 0) OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN, "not a dataset");
    H5_CHECK(ty = H5Dget_type(t->ds[tb]), t->path, obj, NULL);
    if (H5Tget_class(ty) != H5T_COMPOUND)
        OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN, "expected a compound (table) type");
    for (int i = 0; i < spec->n_fields; i++) {
        const Th5Field *f = &spec->fields[i];
        int idx = H5Tget_member_index(ty, f->name);
        if (idx < 0)
            OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN, "field '%s' is missing", f->name);
        H5_CHECK(mty = H5Tget_member_type(ty, (unsigned)idx), t->path, obj, NULL);
        H5T_class_t c = H5Tget_class(mty);
        size_t sz = H5Tget_size(mty);
        if (f->cls == H5T_INTEGER) {
            if (c != H5T_INTEGER || sz != f->size || H5Tget_sign(mty) != H5T_SGN_NONE)
                OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN,
                        "field '%s' must be an unsigned %zu-bit integer", f->name, 8 * f->size);
        } else if (c != H5T_STRING || H5Tis_variable_str(mty) != 0 || sz > f->size) {
            OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN,
                    "field '%s' must be a fixed string of at most %zu bytes", f->name, f->size);
        }
        H5Tclose(mty);
        mty = -1;
    }
    H5_CHECK(sp = H5Dget_space(t->ds[tb]), t->path, obj, NULL);
    if (H5Sget_simple_extent_ndims(sp) != 1)
        OS_FAIL(OS_ERR_FORMAT, t->path, obj, HINT_REGEN, "expected a 1-D table, got rank %d",
                H5Sget_simple_extent_ndims(sp));
    hsize_t n = 0;
    H5_CHECK(H5Sget_simple_extent_dims(sp, &n, NULL), t->path, obj, NULL);
    t->rows[tb] = n;
    H5_CHECK(t->mtype[tb] = th5_mem_type(tb), t->path, obj, NULL);
fail:
    if (mty >= 0) H5Tclose(mty);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (dapl >= 0) H5Pclose(dapl);
    return st;
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
    if (r->first_example > t->rows[TH5_EXAMPLES] || r->n_examples > t->rows[TH5_EXAMPLES] - r->first_example) {
        snprintf(field, sizeof field, "/steps[%llu].first_example", s);
        OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN,
                "examples [%llu, %llu) run past /examples (%llu rows)", (unsigned long long)r->first_example,
                (unsigned long long)r->first_example + r->n_examples,
                (unsigned long long)t->rows[TH5_EXAMPLES]);
    }
fail:
    return st;
}

static OsStatus check_steps(Trace *t) {
    OsStatus st = OS_OK;
    TraceStepRec *buf = NULL;
    uint64_t n = t->rows[TH5_STEPS];
    buf = malloc(sizeof *buf * (n < READ_STEP_BLOCK ? (n ? n : 1) : READ_STEP_BLOCK));
    ALLOC_CHECK(buf);
    for (uint64_t b = 0; b < n; b += READ_STEP_BLOCK) {
        uint64_t k = OS_MIN((uint64_t)READ_STEP_BLOCK, n - b);
        OS_CHECK(read_rows(t, TH5_STEPS, b, k, buf));
        for (uint64_t i = 0; i < k; i++) OS_CHECK(check_step_rec(t, b + i, &buf[i]));
    }
fail:
    free(buf);
    return st;
}

OsStatus trace_open(Trace **out, const char *path) {
    OsStatus st = OS_OK;
    Trace *t = NULL;
    struct stat sb;
    *out = NULL;
    th5_quiet();
    if (stat(path, &sb) != 0)
        OS_FAIL(OS_ERR_IO, path, NULL, "check the path, or make one with `orchsim gen`", "no such file");
    if (!S_ISREG(sb.st_mode)) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "not a regular file");
    htri_t is = H5Fis_hdf5(path);
    if (is == 0)
        OS_FAIL(OS_ERR_FORMAT, path, NULL, "traces are HDF5 files written by `orchsim gen` or `orchsim import`",
                "not an HDF5 file");
    t = calloc(1, sizeof *t);
    ALLOC_CHECK(t);
    t->file = -1;
    for (int i = 0; i < TH5_N_TABLES; i++) t->ds[i] = t->mtype[i] = -1;
    trace_step_init(&t->step);
    snprintf(t->path, sizeof t->path, "%s", path);
    t->file = is > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (t->file < 0) {
        if (os_verbose()) H5Eprint2(H5E_DEFAULT, stderr);
        OS_FAIL(OS_ERR_FORMAT, path, NULL, "the file is truncated or corrupt: " HINT_REGEN,
                "cannot open as HDF5");
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

void trace_close(Trace *t) {
    if (!t) return;
    for (int i = 0; i < TH5_N_TABLES; i++) {
        if (t->ds[i] >= 0) H5Dclose(t->ds[i]);
        if (t->mtype[i] >= 0) H5Tclose(t->mtype[i]);
    }
    if (t->file >= 0) H5Fclose(t->file);
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
            OS_FAIL(OS_ERR_FORMAT, t->path, field, HINT_REGEN,
                    "items [%llu, %llu) run past /items (%llu rows)", (unsigned long long)e->first_item,
                    (unsigned long long)e->first_item + e->n_items, (unsigned long long)t->rows[TH5_ITEMS]);
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
    if (run > UINT32_MAX)
        OS_FAIL(OS_ERR_RANGE, t->path, "/steps", "split the global batch", "a step holds %llu items (> 2^32-1)",
                (unsigned long long)run);
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
    OS_CHECK(read_rows(t, TH5_STEPS, s, 1, &rec));
    OS_CHECK(check_step_rec(t, s, &rec)); /* checked at open too; one row is cheap */
    OS_CHECK(trace_step_reserve(b, rec.n_examples, 0));
    b->n_examples = 0;
    b->n_items = 0;
    OS_CHECK(read_rows(t, TH5_EXAMPLES, rec.first_example, rec.n_examples, b->examples));
    b->n_examples = rec.n_examples;
    OS_CHECK(check_examples(t, rec.first_example, &fi, &ni));
    OS_CHECK(trace_step_reserve(b, 0, ni));
    OS_CHECK(read_rows(t, TH5_ITEMS, fi, ni, b->items));
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
