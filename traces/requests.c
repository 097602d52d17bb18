/* requests.c — the text-to-image request tables of a version-3 trace. See requests.h.
 * Layout (traces/README.md "Text-to-image requests"):
 *   /requests            compound {model u8, category u8, width u16, height u16, images u16,
 *                        steps u16, iters u16, cfg f32}, packed little-endian (16 bytes), one
 *                        row per /examples row, chunked + shuffle + deflate + Fletcher-32;
 *   /request_models      fixed 32-byte strings, the names /requests.model indexes;
 *   /request_categories  fixed 32-byte strings, the names /requests.category indexes.
 * The loader checks what the trace reader checks of its own tables that matter here: hard
 * links to checksummed objects (th5_check_object), the exact compound members, a 1-D shape of
 * exactly the trace's example count, and every row's values, before using any of them. */
#include "traces/requests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "traces/h5check.h"

#define REQ_DS "/requests"
#define REQ_MODELS "/request_models"
#define REQ_CATS "/request_categories"
#define REQ_CHUNK 65536u
#define HINT "regenerate the trace (orchsim gen --profile cpdm | t2i-mixed)"

typedef struct {
    const char *name;
    H5T_class_t cls;
    size_t size;
    size_t off; /* in T2iRequest */
} ReqField;

static const ReqField FIELDS[] = {
    {"model", H5T_INTEGER, 1, offsetof(T2iRequest, model)},
    {"category", H5T_INTEGER, 1, offsetof(T2iRequest, category)},
    {"width", H5T_INTEGER, 2, offsetof(T2iRequest, width)},
    {"height", H5T_INTEGER, 2, offsetof(T2iRequest, height)},
    {"images", H5T_INTEGER, 2, offsetof(T2iRequest, images)},
    {"steps", H5T_INTEGER, 2, offsetof(T2iRequest, steps)},
    {"iters", H5T_INTEGER, 2, offsetof(T2iRequest, iters)},
    {"cfg", H5T_FLOAT, 4, offsetof(T2iRequest, cfg)},
};
#define N_FIELDS ((int)OS_ARRAY_LEN(FIELDS))

void t2i_requests_init(T2iRequests *r) { memset(r, 0, sizeof *r); }
void t2i_requests_free(T2iRequests *r) {
    if (!r) return;
    free(r->rows);
    free(r->step_first);
    t2i_requests_init(r);
}

static hid_t int_type(size_t size, int file) {
    if (size == 1) return file ? H5T_STD_U8LE : H5T_NATIVE_UINT8;
    return file ? H5T_STD_U16LE : H5T_NATIVE_UINT16;
}

/* file = 1: packed little-endian; 0: the native struct. */
static hid_t req_type(int file) {
    size_t packed = 0;
    for (int i = 0; i < N_FIELDS; i++) packed += FIELDS[i].size;
    hid_t t = H5Tcreate(H5T_COMPOUND, file ? packed : sizeof(T2iRequest));
    if (t < 0) return t;
    size_t off = 0;
    for (int i = 0; i < N_FIELDS; i++) {
        hid_t mt = FIELDS[i].cls == H5T_FLOAT ? (file ? H5T_IEEE_F32LE : H5T_NATIVE_FLOAT) : int_type(FIELDS[i].size, file);
        if (H5Tinsert(t, FIELDS[i].name, file ? off : FIELDS[i].off, mt) < 0) {
            H5Tclose(t);
            return -1;
        }
        off += FIELDS[i].size;
    }
    return t;
}

static int ident_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '.' || *s == '+' || *s == '-'))
            return 0;
    return 1;
}

OsStatus t2i_requests_name(T2iRequests *r, int category, const char *name, uint8_t *index) {
    OsStatus st = OS_OK;
    uint32_t *n = category ? &r->n_categories : &r->n_models;
    char(*tab)[T2I_NAME_LEN] = category ? r->categories : r->models;
    const char *what = category ? "category" : "model";
    if (strlen(name) >= T2I_NAME_LEN || !ident_ok(name))
        OS_FAIL(OS_ERR_ARG, "requests", what, "letters, digits and _ . + - only, < 32 characters", "bad name '%.40s'", name);
    for (uint32_t i = 0; i < *n; i++)
        if (!strcmp(tab[i], name)) {
            *index = (uint8_t)i;
            return OS_OK;
        }
    if (*n >= T2I_MAX_NAMES) OS_FAIL(OS_ERR_RANGE, "requests", what, NULL, "more than %d names", T2I_MAX_NAMES);
    snprintf(tab[*n], T2I_NAME_LEN, "%s", name);
    *index = (uint8_t)(*n)++;
fail:
    return st;
}

/* ---- checks -------------------------------------------------------------------------- */

static OsStatus check_row(const T2iRequests *r, uint64_t i, const char *where) {
    OsStatus st = OS_OK;
    const T2iRequest *q = &r->rows[i];
    char f[96];
#define ROWF(name) snprintf(f, sizeof f, REQ_DS "[%llu]." name, (unsigned long long)i)
    if (q->model >= r->n_models) {
        ROWF("model");
        OS_FAIL(OS_ERR_FORMAT, where, f, HINT, "index %u, the trace names %u models", q->model, r->n_models);
    }
    if (q->category >= r->n_categories) {
        ROWF("category");
        OS_FAIL(OS_ERR_FORMAT, where, f, HINT, "index %u, the trace names %u categories", q->category, r->n_categories);
    }
    if (q->images == 0) {
        ROWF("images");
        OS_FAIL(OS_ERR_FORMAT, where, f, "every prompt generates at least one image", "0 images");
    }
    if (q->steps == 0) {
        ROWF("steps");
        OS_FAIL(OS_ERR_FORMAT, where, f, "a sampler takes at least one denoising step", "0 steps");
    }
    if (!isfinite(q->cfg) || q->cfg < 1.0f) {
        ROWF("cfg");
        OS_FAIL(OS_ERR_FORMAT, where, f, "1 = no guidance (one UNet pass per step), > 1 = two passes",
                "guidance scale %g is below 1", (double)q->cfg);
    }
    if ((q->width == 0) != (q->height == 0) || q->width % T2I_VAE_FACTOR || q->height % T2I_VAE_FACTOR) {
        int wbad = q->width == 0 ? q->height != 0 : q->width % T2I_VAE_FACTOR != 0;
        if (wbad) ROWF("width");
        else ROWF("height");
        OS_FAIL(OS_ERR_FORMAT, where, f, "both a multiple of the VAE factor 8, or both 0 (the stage's default)",
                "%ux%u", q->width, q->height);
    }
    if (q->iters && (q->iters < T2I_MIN_ITERS || q->iters > T2I_MAX_ITERS)) {
        ROWF("iters");
        OS_FAIL(OS_ERR_FORMAT, where, f, "CLIP Interrogator's chain runs 8 to 32 iterations (0 = none)",
                "%u iterations", q->iters);
    }
#undef ROWF
fail:
    return st;
}

OsStatus t2i_requests_check(const T2iRequests *r, const char *where) {
    OsStatus st = OS_OK;
    if (r->n && !r->rows) OS_FAIL(OS_ERR_ARG, where, REQ_DS, NULL, "no rows");
    for (uint32_t k = 0; k < 2; k++) {
        uint32_t n = k ? r->n_categories : r->n_models;
        const char(*tab)[T2I_NAME_LEN] = k ? r->categories : r->models;
        if (n == 0 || n > T2I_MAX_NAMES)
            OS_FAIL(OS_ERR_FORMAT, where, k ? REQ_CATS : REQ_MODELS, HINT, "%u names (need 1..%d)", n, T2I_MAX_NAMES);
        for (uint32_t i = 0; i < n; i++) {
            char f[64];
            snprintf(f, sizeof f, "%s[%u]", k ? REQ_CATS : REQ_MODELS, i);
            if (memchr(tab[i], '\0', T2I_NAME_LEN) == NULL || !ident_ok(tab[i])) {
                char esc[160];
                os_escape(esc, sizeof esc, tab[i], strnlen(tab[i], T2I_NAME_LEN));
                OS_FAIL(OS_ERR_FORMAT, where, f, HINT, "'%s': names are letters, digits and _ . + -", esc);
            }
            for (uint32_t j = 0; j < i; j++)
                if (!strcmp(tab[i], tab[j])) OS_FAIL(OS_ERR_FORMAT, where, f, HINT, "'%s' repeats row %u", tab[i], j);
        }
    }
    for (uint64_t i = 0; i < r->n; i++) OS_CHECK(check_row(r, i, where));
fail:
    return st;
}

/* ---- reading ------------------------------------------------------------------------- */

uint64_t t2i_request_row(const T2iRequests *r, uint64_t step, uint32_t i) {
    if (!r || !r->step_first || step >= r->n_steps) return UINT64_MAX;
    return r->step_first[step] + i;
}

typedef struct {
    uint64_t first_example;
    uint32_t n_examples;
} StepHead;

static OsStatus dims1(hid_t ds, const char *path, const char *obj, uint64_t *n);

/* /steps' first_example and n_examples (trace_open has vetted the table): each step's examples
 * must be rows of /requests. */
static OsStatus read_steps(T2iRequests *r, hid_t f, const char *path) {
    OsStatus st = OS_OK;
    hid_t ds = -1, mt = -1;
    StepHead *h = NULL;
    uint64_t n = 0;
    ds = H5Dopen2(f, "/steps", H5P_DEFAULT);
    if (ds < 0) OS_FAIL(OS_ERR_FORMAT, path, "/steps", HINT, "cannot open the dataset");
    OS_CHECK(dims1(ds, path, "/steps", &n));
    if (n > T2I_MAX_ROWS) OS_FAIL(OS_ERR_RANGE, path, "/steps", "split the trace", "%llu steps", (unsigned long long)n);
    H5_CHECK(mt = H5Tcreate(H5T_COMPOUND, sizeof(StepHead)), path, "/steps", NULL);
    H5_CHECK(H5Tinsert(mt, "first_example", offsetof(StepHead, first_example), H5T_NATIVE_UINT64), path, "/steps", NULL);
    H5_CHECK(H5Tinsert(mt, "n_examples", offsetof(StepHead, n_examples), H5T_NATIVE_UINT32), path, "/steps", NULL);
    h = calloc(n ? n : 1, sizeof *h);
    r->step_first = calloc(n ? n : 1, sizeof *r->step_first);
    ALLOC_CHECK(h && r->step_first);
    if (n) H5_CHECK(H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, h), path, "/steps", "the file is corrupt: " HINT);
    for (uint64_t k = 0; k < n; k++) {
        if (h[k].first_example > r->n || h[k].n_examples > r->n - h[k].first_example) {
            char fld[64];
            snprintf(fld, sizeof fld, "/steps[%llu]", (unsigned long long)k);
            OS_FAIL(OS_ERR_FORMAT, path, fld, HINT, "examples [%llu, +%u) lie outside the %llu requests",
                    (unsigned long long)h[k].first_example, h[k].n_examples, (unsigned long long)r->n);
        }
        r->step_first[k] = h[k].first_example;
    }
    r->n_steps = n;
fail:
    free(h);
    if (mt >= 0) H5Tclose(mt);
    if (ds >= 0) H5Dclose(ds);
    return st;
}

static OsStatus check_type(hid_t ty, const char *path) {
    OsStatus st = OS_OK;
    hid_t mty = -1;
    size_t packed = 0;
    if (H5Tget_class(ty) != H5T_COMPOUND) OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, HINT, "expected a compound (table) type");
    int nm = H5Tget_nmembers(ty);
    H5_CHECK(nm, path, REQ_DS, NULL);
    if (nm != N_FIELDS) OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, HINT, "%d fields, expected %d", nm, N_FIELDS);
    size_t total = H5Tget_size(ty);
    for (int i = 0; i < N_FIELDS; i++) {
        const ReqField *fd = &FIELDS[i];
        int idx = H5Tget_member_index(ty, fd->name);
        if (idx < 0) OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, HINT, "field '%s' is missing", fd->name);
        H5_CHECK(mty = H5Tget_member_type(ty, (unsigned)idx), path, REQ_DS, NULL);
        int ok = H5Tget_class(mty) == fd->cls && H5Tget_size(mty) == fd->size &&
                 (fd->cls != H5T_INTEGER || H5Tget_sign(mty) == H5T_SGN_NONE);
        if (!ok)
            OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, HINT, "field '%s' must be %s %zu-bit %s", fd->name,
                    fd->cls == H5T_FLOAT ? "a" : "an unsigned", 8 * fd->size, fd->cls == H5T_FLOAT ? "float" : "integer");
        size_t off = H5Tget_member_offset(ty, (unsigned)idx);
        if (off > total || fd->size > total - off)
            OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, "the file is corrupt: " HINT, "field '%s' lies outside the row", fd->name);
        H5Tclose(mty);
        mty = -1;
        packed += fd->size;
    }
    if (total != packed) OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, HINT, "rows of %zu bytes, expected %zu", total, packed);
fail:
    if (mty >= 0) H5Tclose(mty);
    return st;
}

/* A 1-D dataset of rows; *n = its length. */
static OsStatus dims1(hid_t ds, const char *path, const char *obj, uint64_t *n) {
    OsStatus st = OS_OK;
    hid_t sp = -1;
    hsize_t d = 0;
    H5_CHECK(sp = H5Dget_space(ds), path, obj, NULL);
    if (H5Sget_simple_extent_type(sp) != H5S_SIMPLE || H5Sget_simple_extent_ndims(sp) != 1)
        OS_FAIL(OS_ERR_FORMAT, path, obj, HINT, "expected a 1-D table");
    H5_CHECK(H5Sget_simple_extent_dims(sp, &d, NULL), path, obj, NULL);
    *n = d;
fail:
    if (sp >= 0) H5Sclose(sp);
    return st;
}

static OsStatus read_names(hid_t f, const char *path, const char *obj, char (*tab)[T2I_NAME_LEN], uint32_t *n) {
    OsStatus st = OS_OK;
    hid_t ds = -1, ty = -1, mt = -1;
    uint64_t rows = 0;
    OS_CHECK(th5_check_object(f, path, obj, 1));
    ds = H5Dopen2(f, obj, H5P_DEFAULT);
    if (ds < 0) OS_FAIL(OS_ERR_FORMAT, path, obj, HINT, "cannot open the dataset");
    H5_CHECK(ty = H5Dget_type(ds), path, obj, NULL);
    if (H5Tget_class(ty) != H5T_STRING || H5Tis_variable_str(ty) != 0 || H5Tget_size(ty) != T2I_NAME_LEN)
        OS_FAIL(OS_ERR_FORMAT, path, obj, HINT, "expected fixed strings of %d bytes", T2I_NAME_LEN);
    OS_CHECK(dims1(ds, path, obj, &rows));
    if (rows == 0 || rows > T2I_MAX_NAMES)
        OS_FAIL(OS_ERR_FORMAT, path, obj, HINT, "%llu names (need 1..%d)", (unsigned long long)rows, T2I_MAX_NAMES);
    H5_CHECK(mt = H5Tcopy(H5T_C_S1), path, obj, NULL);
    H5_CHECK(H5Tset_size(mt, T2I_NAME_LEN), path, obj, NULL);
    H5_CHECK(H5Tset_strpad(mt, H5T_STR_NULLPAD), path, obj, NULL);
    memset(tab, 0, (size_t)T2I_MAX_NAMES * T2I_NAME_LEN);
    H5_CHECK(H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tab), path, obj, "the file is corrupt: " HINT);
    *n = (uint32_t)rows;
fail:
    if (mt >= 0) H5Tclose(mt);
    if (ty >= 0) H5Tclose(ty);
    if (ds >= 0) H5Dclose(ds);
    return st;
}

OsStatus t2i_requests_load(T2iRequests *r, const char *path, uint64_t expect_rows, int *present) {
    OsStatus st = OS_OK;
    hid_t f = -1, ds = -1, ty = -1, mt = -1;
    uint64_t size = 0, v = 0, rows = 0;
    t2i_requests_init(r);
    *present = 0;
    th5_quiet();
    OS_CHECK(th5_check_file(path, &size));
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) OS_FAIL(OS_ERR_FORMAT, path, NULL, HINT, "HDF5 cannot open the file");
    OS_CHECK(th5_read_uint_attr(f, path, "/", "orchsim_trace_version", &v));
    htri_t has = H5Lexists(f, REQ_DS, H5P_DEFAULT);
    H5_CHECK(has, path, REQ_DS, NULL);
    if (v < 3 || !has) goto fail; /* no request fields: every request takes the stage defaults */
    OS_CHECK(read_names(f, path, REQ_MODELS, r->models, &r->n_models));
    OS_CHECK(read_names(f, path, REQ_CATS, r->categories, &r->n_categories));
    OS_CHECK(th5_check_object(f, path, REQ_DS, 1));
    ds = H5Dopen2(f, REQ_DS, H5P_DEFAULT);
    if (ds < 0) OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, HINT, "cannot open the dataset");
    H5_CHECK(ty = H5Dget_type(ds), path, REQ_DS, NULL);
    OS_CHECK(check_type(ty, path));
    OS_CHECK(dims1(ds, path, REQ_DS, &rows));
    if (rows != expect_rows)
        OS_FAIL(OS_ERR_FORMAT, path, REQ_DS, HINT, "%llu rows for %llu examples (one request per example)",
                (unsigned long long)rows, (unsigned long long)expect_rows);
    if (rows > T2I_MAX_ROWS)
        OS_FAIL(OS_ERR_RANGE, path, REQ_DS, "split the trace", "%llu requests (at most %u)", (unsigned long long)rows,
                T2I_MAX_ROWS);
    r->rows = calloc(rows ? rows : 1, sizeof *r->rows);
    ALLOC_CHECK(r->rows);
    r->n = rows;
    H5_CHECK(mt = req_type(0), path, REQ_DS, NULL);
    if (rows) H5_CHECK(H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->rows), path, REQ_DS, "the file is corrupt: " HINT);
    OS_CHECK(t2i_requests_check(r, path));
    OS_CHECK(read_steps(r, f, path));
    *present = 1;
fail:
    if (mt >= 0) H5Tclose(mt);
    if (ty >= 0) H5Tclose(ty);
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    if (st != OS_OK) t2i_requests_free(r);
    return st;
}

/* ---- writing ------------------------------------------------------------------------- */

static OsStatus write_names(hid_t f, const char *path, const char *obj, const char (*tab)[T2I_NAME_LEN], uint32_t n) {
    OsStatus st = OS_OK;
    hid_t ty = -1, sp = -1, ds = -1, dcpl = -1;
    hsize_t d = n;
    H5_CHECK(ty = H5Tcopy(H5T_C_S1), path, obj, NULL);
    H5_CHECK(H5Tset_size(ty, T2I_NAME_LEN), path, obj, NULL);
    H5_CHECK(H5Tset_strpad(ty, H5T_STR_NULLPAD), path, obj, NULL);
    H5_CHECK(sp = H5Screate_simple(1, &d, NULL), path, obj, NULL);
    H5_CHECK(dcpl = H5Pcreate(H5P_DATASET_CREATE), path, obj, NULL);
    H5_CHECK(H5Pset_obj_track_times(dcpl, 0), path, obj, NULL);
    H5_CHECK(ds = H5Dcreate2(f, obj, ty, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT), path, obj, NULL);
    H5_CHECK(H5Dwrite(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, tab), path, obj, "check free disk space");
fail:
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    return st;
}

OsStatus t2i_requests_attach(const char *path, const T2iRequests *r) {
    OsStatus st = OS_OK;
    hid_t fapl = -1, f = -1, ft = -1, mt = -1, sp = -1, dcpl = -1, ds = -1, ex = -1;
    uint64_t examples = 0;
    th5_quiet();
    OS_CHECK(t2i_requests_check(r, path));
    H5_CHECK(fapl = H5Pcreate(H5P_FILE_ACCESS), path, "/", NULL);
    /* the 1.10 object format (checksummed headers), as the trace writer makes every object */
    H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110), path, "/", NULL);
    f = H5Fopen(path, H5F_ACC_RDWR, fapl);
    if (f < 0) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "HDF5 cannot open the trace for writing");
    H5_CHECK(ex = H5Dopen2(f, "/examples", H5P_DEFAULT), path, "/examples", NULL);
    OS_CHECK(dims1(ex, path, "/examples", &examples));
    if (examples != r->n)
        OS_FAIL(OS_ERR_ARG, path, REQ_DS, NULL, "%llu requests for %llu examples", (unsigned long long)r->n,
                (unsigned long long)examples);
    OS_CHECK(write_names(f, path, REQ_MODELS, (const char(*)[T2I_NAME_LEN])r->models, r->n_models));
    OS_CHECK(write_names(f, path, REQ_CATS, (const char(*)[T2I_NAME_LEN])r->categories, r->n_categories));
    hsize_t d = r->n, chunk = r->n < REQ_CHUNK ? (r->n ? r->n : 1) : REQ_CHUNK;
    H5_CHECK(ft = req_type(1), path, REQ_DS, NULL);
    H5_CHECK(mt = req_type(0), path, REQ_DS, NULL);
    H5_CHECK(sp = H5Screate_simple(1, &d, NULL), path, REQ_DS, NULL);
    H5_CHECK(dcpl = H5Pcreate(H5P_DATASET_CREATE), path, REQ_DS, NULL);
    H5_CHECK(H5Pset_obj_track_times(dcpl, 0), path, REQ_DS, NULL);
    H5_CHECK(H5Pset_chunk(dcpl, 1, &chunk), path, REQ_DS, NULL);
    H5_CHECK(H5Pset_shuffle(dcpl), path, REQ_DS, NULL);
    H5_CHECK(H5Pset_deflate(dcpl, 4), path, REQ_DS, NULL);
    H5_CHECK(H5Pset_fletcher32(dcpl), path, REQ_DS, NULL);
    H5_CHECK(ds = H5Dcreate2(f, REQ_DS, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT), path, REQ_DS, NULL);
    if (r->n) H5_CHECK(H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->rows), path, REQ_DS, "check free disk space");
fail:
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (ex >= 0) H5Dclose(ex);
    if (f >= 0 && H5Fclose(f) < 0 && st == OS_OK)
        st = os_fail(OS_ERR_IO, path, NULL, "check free disk space", "closing the trace failed");
    if (fapl >= 0) H5Pclose(fapl);
    return st;
}
