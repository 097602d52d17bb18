/* trace_write.c — the streaming trace writer of trace.h.
 * Rows are buffered one chunk at a time per table and appended by hyperslab, so memory stays
 * at ~3 chunks whatever the trace length. Output goes to "<path>.tmp.<pid>" and is renamed on
 * close (util.h OsOutFile). Byte-identical output for identical input: object modification
 * times are switched off on every creation property list, including the file's (the root
 * group's object header is created from the fcpl), and nothing else time-dependent is stored.
 * Format: HDF5 1.10 objects only (superblock v3, v2 object headers, extensible-array chunk
 * indexes), so every piece of metadata carries a checksum HDF5 verifies before decoding it,
 * and every chunk carries a Fletcher-32 checksum (trace.h, version 2). */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "traces/h5check.h"
#include "traces/trace.h"

#define WRITER_DEFAULT_CHUNK 65536u
#define WRITER_DEFLATE_LEVEL 4 /* zlib level 4: most of level 9's ratio at a fraction of the time */

struct TraceWriter {
    OsOutFile out;
    hid_t file;
    hid_t ds[TH5_N_TABLES];
    hid_t mtype[TH5_N_TABLES];
    uint32_t n_mod;
    uint32_t chunk;
    void *buf[TH5_N_TABLES];     /* [chunk] rows of the memory type, for examples/items/steps */
    uint64_t nbuf[TH5_N_TABLES]; /* rows buffered */
    uint64_t flushed[TH5_N_TABLES]; /* rows already in the file */
    uint32_t tpi[TRACE_MAX_MODALITIES]; /* tokens per item, 0 = by ratio (written at close) */
    int has_tpi;
};

static const size_t ROW_SIZE[TH5_N_TABLES] = {sizeof(TraceModality), sizeof(TraceExample),
                                              sizeof(TraceItem), sizeof(TraceStepRec)};

/* Append n rows from mem to dataset t by extending it and writing a hyperslab. */
static OsStatus append_rows(TraceWriter *w, Th5Table t, const void *mem, uint64_t n) {
    OsStatus st = OS_OK;
    hid_t fs = -1, ms = -1;
    const char *obj = TH5_TABLES[t].dataset;
    if (n == 0) return OS_OK;
    hsize_t start = w->flushed[t], count = n, newsize = w->flushed[t] + n;
    H5_CHECK(H5Dset_extent(w->ds[t], &newsize), w->out.path, obj, "check free disk space");
    H5_CHECK(fs = H5Dget_space(w->ds[t]), w->out.path, obj, NULL);
    H5_CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL), w->out.path, obj, NULL);
    H5_CHECK(ms = H5Screate_simple(1, &count, NULL), w->out.path, obj, NULL);
    H5_CHECK(H5Dwrite(w->ds[t], w->mtype[t], ms, fs, H5P_DEFAULT, mem), w->out.path, obj,
             "check free disk space");
    w->flushed[t] += n;
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

static OsStatus flush_table(TraceWriter *w, Th5Table t) {
    OsStatus st = append_rows(w, t, w->buf[t], w->nbuf[t]);
    if (st == OS_OK) w->nbuf[t] = 0;
    return st;
}

/* Buffer one row; flush the buffer when a whole chunk is ready (aligned chunk writes). */
static OsStatus push_row(TraceWriter *w, Th5Table t, const void *row) {
    OsStatus st = OS_OK;
    memcpy((char *)w->buf[t] + w->nbuf[t] * ROW_SIZE[t], row, ROW_SIZE[t]);
    if (++w->nbuf[t] == w->chunk) OS_CHECK(flush_table(w, t));
fail:
    return st;
}

/* One table dataset: 1-D, extendable, chunked, shuffle + deflate, no time stamps. */
static OsStatus create_table(TraceWriter *w, Th5Table t, hsize_t initial, int extendable) {
    OsStatus st = OS_OK;
    hid_t sp = -1, dcpl = -1, ft = -1;
    const char *obj = TH5_TABLES[t].dataset;
    hsize_t maxd = extendable ? H5S_UNLIMITED : initial, chunk = w->chunk;
    H5_CHECK(sp = H5Screate_simple(1, &initial, &maxd), w->out.path, obj, NULL);
    H5_CHECK(dcpl = H5Pcreate(H5P_DATASET_CREATE), w->out.path, obj, NULL);
    H5_CHECK(H5Pset_obj_track_times(dcpl, 0), w->out.path, obj, NULL);
    if (extendable) {
        H5_CHECK(H5Pset_chunk(dcpl, 1, &chunk), w->out.path, obj, NULL);
        H5_CHECK(H5Pset_shuffle(dcpl), w->out.path, obj, NULL);
        H5_CHECK(H5Pset_deflate(dcpl, WRITER_DEFLATE_LEVEL), w->out.path, obj,
                 "this HDF5 lacks zlib (deflate)");
        H5_CHECK(H5Pset_fletcher32(dcpl), w->out.path, obj, NULL); /* outermost: checked first on read */
    }
    H5_CHECK(ft = th5_file_type((Th5Table)t), w->out.path, obj, NULL);
    H5_CHECK(w->ds[t] = H5Dcreate2(w->file, obj, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT), w->out.path,
             obj, NULL);
fail:
    if (ft >= 0) H5Tclose(ft);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

static void release(TraceWriter *w) {
    for (int t = 0; t < TH5_N_TABLES; t++) {
        if (w->ds[t] >= 0) H5Dclose(w->ds[t]);
        if (w->mtype[t] >= 0) H5Tclose(w->mtype[t]);
        free(w->buf[t]);
        w->ds[t] = w->mtype[t] = -1;
        w->buf[t] = NULL;
    }
    if (w->file >= 0) H5Fclose(w->file);
    w->file = -1;
}

OsStatus trace_writer_create(TraceWriter **out, const char *path, const TraceModality *modalities,
                             uint32_t n_modalities, const TraceProvenance *prov, uint32_t chunk_rows) {
    OsStatus st = OS_OK;
    TraceWriter *w = NULL;
    hid_t fcpl = -1, fapl = -1;
    TraceModality *mods = NULL;
    *out = NULL;
    th5_quiet();
    if (n_modalities < 1 || n_modalities > TRACE_MAX_MODALITIES)
        OS_FAIL(OS_ERR_ARG, path, "/modalities", NULL, "%u modalities (need 1..%d)", n_modalities,
                TRACE_MAX_MODALITIES);
    if (strcmp(modalities[0].name, "text") != 0)
        OS_FAIL(OS_ERR_ARG, path, "/modalities[0].name", NULL, "'%s' (modality 0 must be \"text\")",
                modalities[0].name);
    for (uint32_t m = 0; m < n_modalities; m++)
        if (!modalities[m].name[0] || modalities[m].default_ratio < 1 ||
            !memchr(modalities[m].name, 0, TRACE_NAME_LEN) || !memchr(modalities[m].unit, 0, TRACE_NAME_LEN))
            OS_FAIL(OS_ERR_ARG, path, "/modalities", NULL,
                    "row %u: empty or unterminated name, or ratio < 1", m);
    w = calloc(1, sizeof *w);
    ALLOC_CHECK(w);
    w->file = -1;
    for (int t = 0; t < TH5_N_TABLES; t++) w->ds[t] = w->mtype[t] = -1;
    w->n_mod = n_modalities;
    w->chunk = chunk_rows ? chunk_rows : WRITER_DEFAULT_CHUNK;
    if (w->chunk > TRACE_MAX_CHUNK_ROWS)
        OS_FAIL(OS_ERR_ARG, path, "--chunk-rows", "use at most 524288 rows",
                "%u rows per chunk: the reader takes at most %u (chunks up to %u MiB)", w->chunk,
                TRACE_MAX_CHUNK_ROWS, TRACE_MAX_CHUNK_BYTES >> 20);
    OS_CHECK(os_outfile_open(&w->out, path, 0));
    for (int t = 0; t < TH5_N_TABLES; t++) {
        H5_CHECK(w->mtype[t] = th5_mem_type((Th5Table)t), path, TH5_TABLES[t].dataset, NULL);
        if (t != TH5_MODALITIES) {
            w->buf[t] = malloc((size_t)w->chunk * ROW_SIZE[t]);
            ALLOC_CHECK(w->buf[t]);
        }
    }
    H5_CHECK(fcpl = H5Pcreate(H5P_FILE_CREATE), path, "/", NULL);
    H5_CHECK(H5Pset_obj_track_times(fcpl, 0), path, "/", NULL);
    H5_CHECK(fapl = H5Pcreate(H5P_FILE_ACCESS), path, "/", NULL);
    H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110), path, "/",
             "this HDF5 is older than 1.10");
    w->file = H5Fcreate(w->out.tmp, H5F_ACC_TRUNC, fcpl, fapl);
    if (w->file < 0)
        OS_FAIL(OS_ERR_IO, path, NULL, "check the directory exists and is writable",
                "cannot create the output file");
    OS_CHECK(h5_write_str_attr(w->file, "format", TRACE_FORMAT_NAME, w->out.path));
    uint32_t version = TRACE_VERSION;
    OS_CHECK(h5_write_num_attr(w->file, "orchsim_trace_version", H5T_STD_U32LE, H5T_NATIVE_UINT32, &version,
                               w->out.path));
    OS_CHECK(h5_write_str_attr(w->file, "source", prov ? prov->source : "", w->out.path));
    OS_CHECK(h5_write_str_attr(w->file, "created_by", prov ? prov->created_by : "", w->out.path));
    OS_CHECK(create_table(w, TH5_MODALITIES, n_modalities, 0));
    /* Copy into zeroed rows so the padding after each name's NUL is the same on every run. */
    mods = calloc(n_modalities, sizeof *mods);
    ALLOC_CHECK(mods);
    for (uint32_t m = 0; m < n_modalities; m++) {
        /* both checked NUL-terminated within TRACE_NAME_LEN above */
        memcpy(mods[m].name, modalities[m].name, strnlen(modalities[m].name, TRACE_NAME_LEN - 1));
        memcpy(mods[m].unit, modalities[m].unit, strnlen(modalities[m].unit, TRACE_NAME_LEN - 1));
        mods[m].default_ratio = modalities[m].default_ratio;
    }
    H5_CHECK(H5Dwrite(w->ds[TH5_MODALITIES], w->mtype[TH5_MODALITIES], H5S_ALL, H5S_ALL, H5P_DEFAULT, mods),
             path, "/modalities", NULL);
    for (int t = TH5_EXAMPLES; t < TH5_N_TABLES; t++) OS_CHECK(create_table(w, (Th5Table)t, 0, 1));
    free(mods);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    *out = w;
    return OS_OK;
fail:
    free(mods);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    trace_writer_abort(w);
    return st;
}

/* The same rules trace_read_step enforces, checked before anything is buffered so a rejected
 * step leaves the writer unchanged. */
static OsStatus check_step(const TraceWriter *w, const TraceStep *s) {
    OsStatus st = OS_OK;
    const char *p = w->out.path;
    if (s->dp < 1) OS_FAIL(OS_ERR_ARG, p, "step", NULL, "dp = 0");
    if (s->n_examples < 1) OS_FAIL(OS_ERR_ARG, p, "step", NULL, "a step needs at least one example");
    if (s->n_examples % s->dp)
        OS_FAIL(OS_ERR_ARG, p, "step", "make the global batch a multiple of dp",
                "%u examples do not split over dp = %u", s->n_examples, s->dp);
    for (uint32_t k = 0; k < s->n_examples; k++) {
        const TraceExample *e = &s->examples[k];
        if (e->text >= TRACE_MAX_LEN)
            OS_FAIL(OS_ERR_RANGE, p, "example.text", NULL, "%u is absurd (>= 2^31)", e->text);
        if (e->first_item > s->n_items || e->n_items > s->n_items - e->first_item)
            OS_FAIL(OS_ERR_INTERNAL, p, "example.first_item", NULL, "items run past the step's %u items",
                    s->n_items);
        for (uint32_t i = 0; i < e->n_items; i++) {
            const TraceItem *it = &s->items[e->first_item + i];
            if (it->length >= TRACE_MAX_LEN)
                OS_FAIL(OS_ERR_RANGE, p, "item.length", NULL, "%u is absurd (>= 2^31)", it->length);
            if (it->modality < 1 || it->modality >= w->n_mod)
                OS_FAIL(OS_ERR_ARG, p, "item.modality", NULL, "%u is not an item modality (1..%u)",
                        it->modality, w->n_mod - 1);
        }
    }
fail:
    return st;
}

OsStatus trace_writer_add_step(TraceWriter *w, const TraceStep *s) {
    OsStatus st = OS_OK;
    OS_CHECK(check_step(w, s));
    TraceStepRec rec = {w->flushed[TH5_EXAMPLES] + w->nbuf[TH5_EXAMPLES], s->n_examples, s->dp};
    for (uint32_t k = 0; k < s->n_examples; k++) {
        const TraceExample *e = &s->examples[k];
        TraceExample row = *e;
        row.first_item = w->flushed[TH5_ITEMS] + w->nbuf[TH5_ITEMS];
        OS_CHECK(push_row(w, TH5_EXAMPLES, &row));
        for (uint32_t i = 0; i < e->n_items; i++) OS_CHECK(push_row(w, TH5_ITEMS, &s->items[e->first_item + i]));
    }
    OS_CHECK(push_row(w, TH5_STEPS, &rec));
fail:
    return st;
}

OsStatus trace_writer_set_tokens_per_item(TraceWriter *w, const uint32_t *tpi) {
    OsStatus st = OS_OK;
    w->has_tpi = 0;
    for (uint32_t m = 0; m < w->n_mod; m++) {
        if (tpi[m] >= TRACE_MAX_LEN)
            OS_FAIL(OS_ERR_ARG, w->out.path, "tokens_per_item", NULL, "%u is absurd (>= 2^31)", tpi[m]);
        if (m == 0 && tpi[m])
            OS_FAIL(OS_ERR_ARG, w->out.path, "tokens_per_item", NULL, "text has no items");
        w->tpi[m] = tpi[m];
        w->has_tpi |= tpi[m] != 0;
    }
fail:
    return st;
}

/* /modalities attribute tokens_per_item: u32[n_mod], written only when some entry is set so
 * traces without it keep their bytes. */
static OsStatus write_tpi(TraceWriter *w) {
    OsStatus st = OS_OK;
    hid_t sp = -1, at = -1;
    hsize_t n = w->n_mod;
    if (!w->has_tpi) return OS_OK;
    H5_CHECK(sp = H5Screate_simple(1, &n, NULL), w->out.path, "/modalities", NULL);
    H5_CHECK(at = H5Acreate2(w->ds[TH5_MODALITIES], "tokens_per_item", H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT),
             w->out.path, "/modalities", NULL);
    H5_CHECK(H5Awrite(at, H5T_NATIVE_UINT32, w->tpi), w->out.path, "/modalities", NULL);
fail:
    if (at >= 0) H5Aclose(at);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

OsStatus trace_writer_close(TraceWriter *w) {
    OsStatus st = OS_OK;
    if (w->flushed[TH5_STEPS] + w->nbuf[TH5_STEPS] == 0)
        OS_FAIL(OS_ERR_ARG, w->out.path, "/steps", "add at least one step", "a trace needs at least one step");
    OS_CHECK(write_tpi(w));
    for (int t = TH5_EXAMPLES; t < TH5_N_TABLES; t++) OS_CHECK(flush_table(w, (Th5Table)t));
    for (int t = 0; t < TH5_N_TABLES; t++) {
        herr_t r = H5Dclose(w->ds[t]);
        w->ds[t] = -1;
        H5_CHECK(r, w->out.path, TH5_TABLES[t].dataset, NULL);
    }
    {
        herr_t r = H5Fclose(w->file);
        w->file = -1;
        H5_CHECK(r, w->out.path, NULL, "check free disk space");
    }
    OS_CHECK(os_outfile_commit(&w->out));
    release(w);
    free(w);
    return OS_OK;
fail:
    trace_writer_abort(w);
    return st;
}

void trace_writer_abort(TraceWriter *w) {
    if (!w) return;
    release(w);
    os_outfile_abort(&w->out);
    free(w);
}
