/* fuzz_trace_struct.c — libFuzzer target, structure-aware: the bytes are a recipe for a trace
 * built through the HDF5 API (so every checksum is right and the file reaches orchsim's own
 * checks, which a raw-byte mutation of a checksummed file almost never does): per root
 * attribute its presence, shape, class and value; per table its link kind, compound layout
 * (total size, each member's offset, class, width and sign, an extra member), storage layout,
 * filters, chunk rows, row count, rows left unwritten, and row contents. An all-zero recipe is
 * exactly the valid 2-step trace the writer makes; each byte steers one decision away from it.
 * The file is opened and validated: any outcome but a crash, leak, hang or sanitizer report is
 * fine, and every rejection must carry a message. Build and run: traces/fuzz/run.sh. */
#include "traces/fuzz/fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <hdf5.h>
#include <stdint.h>

#include "base/util.h"
#include "traces/h5check.h"
#include "traces/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *p;
    size_t n, i;
} Recipe;

static unsigned u8(Recipe *r) { return r->i < r->n ? r->p[r->i++] : 0u; }
static uint64_t u64(Recipe *r) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)u8(r) << (8 * k);
    return v;
}

/* The valid template: 2 steps of 4 examples (dp 2), one image item each. */
static const TraceModality MODS[3] = {{"text", "token", 1}, {"image", "patch", 4}, {"audio", "frame", 2}};

static void attr(Recipe *r, hid_t obj, const char *name, int is_str, const char *sval, uint64_t ival) {
    unsigned how = u8(r);
    if (how == 1) return; /* missing */
    hsize_t n = how == 2 ? 1 + u8(r) % 70 : 1;
    hid_t sp = how == 2 ? H5Screate_simple(1, &n, NULL) : how == 3 ? H5Screate(H5S_NULL) : H5Screate(H5S_SCALAR);
    unsigned cls = u8(r) % 5; /* 0: as written; 1: u8; 2: i32; 3: f64; 4: string */
    if (is_str && cls == 0) cls = 4;
    hid_t ty = -1;
    int own = 0;
    if (cls == 4) {
        size_t len = is_str ? strlen(sval) : 4;
        unsigned d = u8(r);
        if (d) len = d % 80 + 1;
        ty = H5Tcopy(H5T_C_S1);
        own = 1;
        H5Tset_size(ty, len ? len : 1);
        if (u8(r) & 1) H5Tset_strpad(ty, H5T_STR_NULLTERM);
    } else {
        ty = cls == 1 ? H5T_STD_U8LE : cls == 2 ? H5T_STD_I32LE : cls == 3 ? H5T_IEEE_F64LE : H5T_STD_U32LE;
    }
    hid_t at = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (at >= 0) {
        size_t sz = H5Tget_size(ty);
        unsigned char *buf = calloc((size_t)n, sz + 8);
        for (hsize_t k = 0; k < n; k++) {
            unsigned char *b = buf + k * sz;
            if (cls == 4) memcpy(b, is_str ? sval : "1", OS_MIN(sz, is_str ? strlen(sval) : 1));
            else if (cls == 3) *(double *)(void *)b = (double)ival;
            else if (cls == 1) b[0] = (unsigned char)ival;
            else memcpy(b, &ival, 4);
            b[u8(r) % sz] ^= (unsigned char)u8(r);
        }
        if (how != 3) H5Awrite(at, ty, buf);
        free(buf);
        H5Aclose(at);
    }
    if (own) H5Tclose(ty);
    H5Sclose(sp);
}

/* A table: the template rows in the writer's types, unless the recipe says otherwise. */
static void table(Recipe *r, hid_t f, Th5Table tb, const void *rows, hsize_t nrows, size_t rowsz) {
    const Th5TableSpec *spec = &TH5_TABLES[tb];
    unsigned how = u8(r);
    if (how == 1) return; /* missing */
    if (how == 2) { /* a soft link to another table */
        H5Lcreate_soft(TH5_TABLES[(tb + 1) % TH5_N_TABLES].dataset, f, spec->dataset, H5P_DEFAULT, H5P_DEFAULT);
        return;
    }
    hid_t ft = th5_file_type(tb), mt = th5_mem_type(tb);
    if (u8(r) & 1) { /* a hand-made compound */
        H5Tclose(ft);
        size_t total = 0;
        for (int i = 0; i < spec->n_fields; i++) total += spec->fields[i].size;
        unsigned d = u8(r);
        if (d) total = d % 64 + 1;
        ft = H5Tcreate(H5T_COMPOUND, total);
        size_t off = 0;
        for (int i = 0; i < spec->n_fields; i++) {
            const Th5Field *fl = &spec->fields[i];
            unsigned c = u8(r);
            if (c == 1) continue; /* member missing */
            size_t o = c == 2 ? u8(r) % 64 : off;
            hid_t m;
            int own = 0;
            if (fl->cls == H5T_STRING || c == 3) {
                m = H5Tcopy(H5T_C_S1);
                own = 1;
                H5Tset_size(m, c == 3 ? 8 : fl->size);
            } else {
                m = c == 4 ? H5T_STD_I32LE : c == 5 ? H5T_STD_U16LE : c == 6 ? H5T_IEEE_F32LE
                  : fl->size == 1 ? H5T_STD_U8LE : fl->size == 4 ? H5T_STD_U32LE : H5T_STD_U64LE;
            }
            H5Tinsert(ft, c == 7 ? "renamed" : fl->name, o, m);
            if (own) H5Tclose(m);
            off += fl->size;
        }
        if (u8(r) == 9) H5Tinsert(ft, "extra", 0, H5T_STD_U8LE);
    }
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    unsigned lay = u8(r) % 4; /* 0: chunked (the writer), 1: contiguous, 2: compact, 3: chunked odd */
    hsize_t n = nrows, mx = H5S_UNLIMITED, chunk = 4;
    unsigned dn = u8(r);
    if (dn) n = (hsize_t)(u64(r) % (dn > 200 ? (1u << 30) : 4096));
    /* the builder must not need gigabytes itself: a chunk is one buffer when written, and a
     * contiguous or compact dataset is filled at its full size */
    size_t fsz = H5Tget_size(ft) ? H5Tget_size(ft) : 1;
    if (lay == 1 || lay == 2) n = OS_MIN(n, (hsize_t)65536);
    if (lay == 0 || lay == 3) {
        if (lay == 3) chunk = 1 + u64(r) % OS_MAX((hsize_t)1, (hsize_t)((64u << 20) / fsz));
        H5Pset_chunk(dcpl, 1, &chunk);
        unsigned fm = u8(r);
        if (!(fm & 1)) H5Pset_shuffle(dcpl);
        if (!(fm & 2)) H5Pset_deflate(dcpl, 4);
        if (!(fm & 4)) H5Pset_fletcher32(dcpl);
        if (fm & 8) H5Pset_nbit(dcpl);
        if (fm & 16) H5Pset_scaleoffset(dcpl, H5Z_SO_INT, 0);
    } else {
        mx = n;
        if (lay == 2) H5Pset_layout(dcpl, H5D_COMPACT);
    }
    hsize_t cur = n;
    hid_t sp = H5Screate_simple(1, &cur, &mx);
    hid_t ds = H5Dcreate2(f, spec->dataset, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds >= 0) {
        hsize_t w = u8(r) == 3 ? n / 2 : n; /* rows written; the rest stay unwritten */
        if (w > nrows * 4) w = nrows * 4;
        if (w) {
            unsigned char *buf = calloc((size_t)w, rowsz);
            for (hsize_t k = 0; k < w; k++) memcpy(buf + k * rowsz, (const char *)rows + (k % nrows) * rowsz, rowsz);
            for (unsigned e = u8(r); e; e--) buf[u64(r) % (w * rowsz)] ^= (unsigned char)u8(r);
            hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &w, NULL);
            hsize_t start = 0;
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &w, NULL);
            H5Dwrite(ds, H5Tget_class(ft) == H5T_COMPOUND && H5Tget_nmembers(ft) > 0 ? mt : ft, ms, fs, H5P_DEFAULT, buf);
            H5Sclose(ms);
            H5Sclose(fs);
            free(buf);
        }
        if (tb == TH5_MODALITIES && u8(r) == 5) { /* tokens_per_item of any shape */
            hsize_t k = u8(r) % 20;
            hid_t asp = H5Screate_simple(1, &k, NULL);
            hid_t at = H5Acreate2(ds, "tokens_per_item", H5T_STD_U32LE, asp, H5P_DEFAULT, H5P_DEFAULT);
            uint32_t v[20] = {0};
            for (unsigned q = 0; q < 20; q++) v[q] = (uint32_t)u64(r);
            if (at >= 0) {
                H5Awrite(at, H5T_NATIVE_UINT32, v);
                H5Aclose(at);
            }
            H5Sclose(asp);
        }
        H5Dclose(ds);
    }
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Tclose(ft);
    H5Tclose(mt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Recipe r = {data, size, 0};
    char path[640];
    snprintf(path, sizeof path, "%s/%ld-struct.h5", fuzz_scratch(), (long)getpid());
    h5_init();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
    H5Pset_obj_track_times(fcpl, 0);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fapl);
    H5Pclose(fcpl);
    if (f < 0) return 0;
    attr(&r, f, "format", 1, TRACE_FORMAT_NAME, 0);
    attr(&r, f, "orchsim_trace_version", 0, NULL, TRACE_VERSION);
    attr(&r, f, "source", 1, "fuzz", 0);
    attr(&r, f, "created_by", 1, "fuzz", 0);
    TraceModality mods[3];
    memset(mods, 0, sizeof mods);
    for (int m = 0; m < 3; m++) {
        memcpy(mods[m].name, MODS[m].name, strlen(MODS[m].name));
        memcpy(mods[m].unit, MODS[m].unit, strlen(MODS[m].unit));
        mods[m].default_ratio = MODS[m].default_ratio;
    }
    TraceExample ex[8];
    TraceItem it[8];
    TraceStepRec st[2] = {{0, 4, 2}, {4, 4, 2}};
    for (int k = 0; k < 8; k++) {
        ex[k] = (TraceExample){(uint64_t)k, 3, 1, (uint64_t)k};
        it[k] = (TraceItem){(uint32_t)(10 * (k % 4) + 1), 1};
    }
    table(&r, f, TH5_MODALITIES, mods, 3, sizeof mods[0]);
    table(&r, f, TH5_EXAMPLES, ex, 8, sizeof ex[0]);
    table(&r, f, TH5_ITEMS, it, 8, sizeof it[0]);
    table(&r, f, TH5_STEPS, st, 2, sizeof st[0]);
    if (H5Fclose(f) < 0) {
        unlink(path);
        return 0;
    }
    if (getenv("FUZZ_BUILD_ONLY")) { /* debugging: is a finding in the builder or the reader? */
        fprintf(stderr, "built %s\n", path);
        return 0;
    }
    os_clear_error();
    Trace *t = NULL;
    OsStatus s = trace_open(&t, path);
    if (s == OS_OK) {
        s = trace_validate(t);
        trace_close(t);
    }
    if (s != OS_OK && !os_has_error()) abort(); /* every rejection names its reason */
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "%s\n", s == OS_OK ? "accepted" : os_last_error());
    unlink(path);
    return 0;
}
