/* test_hostile_trace.c — the trace reader against hostile files (issue 14): array-valued root
 * attributes, compounds whose members lie outside their type or whose rows are not packed
 * (forged with valid checksums, as an attacker would), unwritten chunks, memory and time bombs
 * (row counts beyond the storage, steps that overlap, huge chunks, limits), external and
 * virtual storage, foreign filters, soft links, control bytes in names, 0-step traces,
 * filesystem errors, and the fuzz-crash corpus. Every case must end in one error that names
 * the file and the object, never a crash or a hang. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "helpers.h"
#include "traces/h5check.h"
#include "traces/trace.h"

/* exported by libhdf5: the Jenkins lookup3 hash HDF5 puts on every piece of 1.10 metadata */
uint32_t H5_checksum_metadata(const void *data, size_t len, uint32_t initval);

static const TraceModality MODS[] = {{"text", "token", 1}, {"image", "patch", 4}, {"audio", "frame", 2}};

/* A valid 2-step trace: dp 2, 4 examples per step, 1 item each (8 examples, 8 items). */
static const char *valid_file(const char *name) {
    const char *path = th_tmp(name);
    TraceWriter *w = NULL;
    cr_assert_eq(trace_writer_create(&w, path, MODS, 3, NULL, 4), OS_OK, "%s", os_last_error());
    TraceStep s;
    trace_step_init(&s);
    for (int st = 0; st < 2; st++) {
        trace_step_clear(&s);
        s.dp = 2;
        for (int k = 0; k < 4; k++) {
            TraceItem it = {(uint32_t)(10 * k + 1), 1};
            cr_assert_eq(trace_step_push(&s, 3, (uint64_t)k, &it, 1), OS_OK);
        }
        cr_assert_eq(trace_writer_add_step(w, &s), OS_OK);
    }
    cr_assert_eq(trace_writer_close(w), OS_OK, "%s", os_last_error());
    trace_step_free(&s);
    return path;
}

/* Open read-write with the 1.10 format, so new objects carry checksums as a writer's would. */
static hid_t open_rw(const char *p) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    cr_assert_geq(f, 0, "cannot reopen %s", p);
    return f;
}

/* Replace table `name` by a dataset of type ty, n rows of data (may be NULL: unwritten). */
/* Replace table `name` by n rows of file type ty (maxn rows at most), data in memory type mt. */
static void replace_table_as(const char *p, const char *name, hid_t ty, hid_t mt, hsize_t n, hsize_t maxn, hid_t dcpl,
                             const void *data) {
    hid_t f = open_rw(p);
    cr_assert_geq(H5Ldelete(f, name, H5P_DEFAULT), 0);
    hid_t sp = H5Screate_simple(1, &n, &maxn);
    hid_t ds = H5Dcreate2(f, name, ty, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(ds, 0, "cannot create %s", name);
    if (data && n) cr_assert_geq(H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
}

static void replace_table(const char *p, const char *name, hid_t ty, hsize_t n, hsize_t maxn, hid_t dcpl,
                          const void *data) {
    replace_table_as(p, name, ty, ty, n, maxn, dcpl, data);
}

/* The same with orchsim's own row layout of table t: the rows as the writer holds them. */
static void replace_rows(const char *p, const char *name, Th5Table t, hsize_t n, hsize_t maxn, hid_t dcpl,
                         const void *rows) {
    hid_t ft = th5_file_type(t), mt = th5_mem_type(t);
    replace_table_as(p, name, ft, mt, n, maxn, dcpl, rows);
    H5Tclose(ft);
    H5Tclose(mt);
}

static void expect_bad(const char *path, const char *n1, const char *n2) {
    Trace *t = NULL;
    os_clear_error();
    OsStatus st = trace_open(&t, path);
    if (st == OS_OK) {
        st = trace_validate(t);
        trace_close(t);
    } else {
        cr_assert_null(t);
    }
    cr_assert_neq(st, OS_OK, "accepted a bad file");
    const char *e = os_last_error();
    cr_assert(strstr(e, path), "message lacks the file: %s", e);
    cr_assert(strstr(e, n1), "message lacks '%s': %s", n1, e);
    if (n2) cr_assert(strstr(e, n2), "message lacks '%s': %s", n2, e);
    cr_assert(!strchr(e, '\n') && !strchr(e, '\033'), "control bytes in the message: %s", e);
}

/* ---- defect 1: root attributes must hold exactly one value ---------------------------------- */

static void replace_str_attr_array(const char *p, const char *name, hsize_t n) {
    hid_t f = open_rw(p);
    cr_assert_geq(H5Adelete(f, name), 0);
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, 13);
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t at = H5Acreate2(f, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    char *buf = calloc(n, 13);
    for (hsize_t i = 0; i < n; i++) memcpy(buf + 13 * i, "orchsim-trace", 13);
    cr_assert_geq(H5Awrite(at, ty, buf), 0);
    free(buf);
    H5Aclose(at);
    H5Sclose(sp);
    H5Tclose(ty);
    H5Fclose(f);
}

Test(hostile_trace, format_attribute_of_64_strings) {
    const char *p = valid_file("attr64.h5");
    replace_str_attr_array(p, "format", 64);
    expect_bad(p, "/ attribute 'format'", "holds 64 values, expected exactly one");
}

Test(hostile_trace, version_attribute_of_two_values) {
    const char *p = valid_file("ver2.h5");
    hid_t f = open_rw(p);
    cr_assert_geq(H5Adelete(f, "orchsim_trace_version"), 0);
    hsize_t n = 2;
    uint32_t v[2] = {TRACE_VERSION, TRACE_VERSION};
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t at = H5Acreate2(f, "orchsim_trace_version", H5T_STD_U32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Awrite(at, H5T_NATIVE_UINT32, v), 0);
    H5Aclose(at);
    H5Sclose(sp);
    H5Fclose(f);
    expect_bad(p, "orchsim_trace_version", "holds 2 values");
}

Test(hostile_trace, version_attribute_not_an_unsigned_integer) {
    const char *p = valid_file("verf.h5");
    hid_t f = open_rw(p);
    cr_assert_geq(H5Adelete(f, "orchsim_trace_version"), 0);
    double v = TRACE_VERSION;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t at = H5Acreate2(f, "orchsim_trace_version", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Awrite(at, H5T_NATIVE_DOUBLE, &v), 0);
    H5Aclose(at);
    H5Sclose(sp);
    H5Fclose(f);
    expect_bad(p, "orchsim_trace_version", "unsigned integer");
}

/* ---- defect 4: compounds, forged with valid checksums -------------------------------------- */

static unsigned char *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *p, const unsigned char *b, size_t n) {
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Find `needle` in the file, patch the byte `delta` bytes after it, and re-seal the checksum
 * of the v2 object header ("OHDR" chunk 0) that holds it, as a hostile writer would. */
static void forge(const char *p, const char *needle, size_t nlen, long delta, unsigned char value) {
    size_t n;
    unsigned char *b = slurp(p, &n);
    unsigned char *hit = NULL;
    for (size_t i = 0; i + nlen <= n && !hit; i++)
        if (!memcmp(b + i, needle, nlen)) hit = b + i;
    cr_assert_not_null(hit, "needle not in the file");
    unsigned char *h = hit;
    while (h > b && memcmp(h, "OHDR", 4)) h--;
    cr_assert(!memcmp(h, "OHDR", 4), "no object header before the needle");
    unsigned flags = h[5];
    size_t off = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0), sz = 1u << (flags & 3), len = 0;
    for (size_t k = 0; k < sz; k++) len |= (size_t)h[off + k] << (8 * k);
    size_t body = off + sz + len; /* the checksum follows chunk 0's messages */
    cr_assert_lt((size_t)(hit + delta - h), body, "the needle is not in chunk 0");
    hit[delta] = value;
    uint32_t ck = H5_checksum_metadata(h, body, 0);
    for (int k = 0; k < 4; k++) h[body + k] = (unsigned char)(ck >> (8 * k));
    spit(p, b, n);
    free(b);
}

Test(hostile_trace, forged_member_offset_outside_its_type) {
    const char *p = valid_file("forge_off.h5");
    /* datatype message v3: member name, NUL, then its byte offset (1 byte for a 24-byte row) */
    forge(p, "n_items", 8, 8, 200);
    expect_bad(p, "/examples", "field 'n_items' lies at bytes [200, 204) of a 24-byte row");
}

Test(hostile_trace, steps_rows_not_packed) {
    const char *p = valid_file("size223.h5");
    hid_t ct = H5Tcreate(H5T_COMPOUND, 223);
    H5Tinsert(ct, "first_example", 0, H5T_STD_U64LE);
    H5Tinsert(ct, "n_examples", 8, H5T_STD_U32LE);
    H5Tinsert(ct, "dp", 12, H5T_STD_U32LE);
    unsigned char rows[2][223] = {{0}};
    rows[0][8] = 4, rows[0][12] = 2, rows[1][0] = 4, rows[1][8] = 4, rows[1][12] = 2;
    replace_table(p, "/steps", ct, 2, 2, H5P_DEFAULT, rows);
    H5Tclose(ct);
    expect_bad(p, "/steps", "rows of 223 bytes, expected 16");
}

Test(hostile_trace, extra_member) {
    const char *p = valid_file("extra.h5");
    hid_t ct = H5Tcreate(H5T_COMPOUND, 6);
    H5Tinsert(ct, "modality", 0, H5T_STD_U8LE);
    H5Tinsert(ct, "length", 1, H5T_STD_U32LE);
    H5Tinsert(ct, "spare", 5, H5T_STD_U8LE);
    unsigned char rows[8][6] = {{0}};
    replace_table(p, "/items", ct, 8, 8, H5P_DEFAULT, rows);
    H5Tclose(ct);
    expect_bad(p, "/items", "3 fields, expected 2");
}

/* ---- defect 5: memory and time bombs --------------------------------------------------------- */

Test(hostile_trace, unwritten_chunks_read_as_zeros) {
    const char *p = valid_file("unwritten.h5");
    hid_t f = open_rw(p);
    hid_t ds = H5Dopen2(f, "/examples", H5P_DEFAULT);
    hsize_t n = 1u << 30; /* 24 GiB of rows that exist only as a dataspace */
    cr_assert_geq(H5Dset_extent(ds, &n), 0);
    H5Dclose(ds);
    H5Fclose(f);
    expect_bad(p, "/examples", "are stored (unwritten rows would read as zeros)");
}

Test(hostile_trace, memory_bomb_step_against_limits) {
    const char *p = valid_file("limits.h5");
    Trace *t = NULL;
    TraceLimits lim = {.max_step_examples = 2};
    os_clear_error();
    cr_assert_eq(trace_open_limits(&t, p, &lim), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "/steps[0].n_examples: 4 examples in one step exceed the reader's limit of 2"),
              "%s", os_last_error());
    TraceLimits lim2 = {.max_step_items = 3};
    os_clear_error();
    cr_assert_eq(trace_open_limits(&t, p, &lim2), OS_ERR_RANGE);
    cr_assert(strstr(os_last_error(), "4 items in one step exceed the reader's limit of 3"), "%s", os_last_error());
    os_clear_error();
    cr_assert_eq(trace_open_limits(&t, p, NULL), OS_OK, "%s", os_last_error());
    trace_close(t);
}

/* 100000 steps, every one the same 4 examples: 10 KB of file, 4e5 rows of work. */
Test(hostile_trace, overlapping_steps_are_refused_at_open) {
    const char *p = valid_file("overlap.h5");
    enum { NS = 100000 };
    TraceStepRec *rows = malloc(NS * sizeof *rows);
    for (int i = 0; i < NS; i++) rows[i] = (TraceStepRec){0, 4, 2};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = 4096;
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, 9);
    replace_rows(p, "/steps", TH5_STEPS, NS, NS, dcpl, rows);
    H5Pclose(dcpl);
    free(rows);
    double t0 = os_now();
    expect_bad(p, "/steps", "the steps overlap");
    cr_assert_lt(os_now() - t0, 5.0, "took %.1f s", os_now() - t0);
}

/* Two steps over distinct examples whose items are the same rows. */
Test(hostile_trace, steps_sharing_items) {
    const char *p = valid_file("shareitems.h5");
    TraceExample ex[8];
    for (int i = 0; i < 8; i++) ex[i] = (TraceExample){(uint64_t)i, 3, 1, (uint64_t)(i % 4)};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = 4;
    H5Pset_chunk(dcpl, 1, &chunk);
    replace_rows(p, "/examples", TH5_EXAMPLES, 8, 8, dcpl, ex);
    H5Pclose(dcpl);
    /* both steps read items 0..3 (contiguous within each step, so a per-step check passes):
     * 8 items referenced in all, from an /items table of 4 rows */
    TraceItem it[4] = {{1, 1}, {2, 1}, {3, 1}, {4, 1}};
    replace_rows(p, "/items", TH5_ITEMS, 4, 4, H5P_DEFAULT, it);
    expect_bad(p, "/steps", "reference 8 items, but /items holds 4 rows");
}

Test(hostile_trace, chunks_larger_than_the_reader_takes) {
    const char *p = valid_file("bigchunk.h5");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = 1u << 22; /* 4M rows x 5 bytes = 20 MiB per chunk */
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, 1);
    TraceItem it[8];
    for (int i = 0; i < 8; i++) it[i] = (TraceItem){(uint32_t)(10 * (i % 4) + 1), 1};
    replace_rows(p, "/items", TH5_ITEMS, 8, H5S_UNLIMITED, dcpl, it);
    H5Pclose(dcpl);
    expect_bad(p, "/items", "exceed the reader's 16 MiB");
}

/* ---- storage that is not the file's own ---------------------------------------------------- */

Test(hostile_trace, external_storage) {
    const char *p = valid_file("external.h5");
    char ext[1200];
    snprintf(ext, sizeof ext, "%s.raw", p);
    FILE *fp = fopen(ext, "wb");
    char zeros[64] = {0};
    fwrite(zeros, 1, sizeof zeros, fp);
    fclose(fp);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    cr_assert_geq(H5Pset_external(dcpl, ext, 0, 40), 0);
    hid_t ft = th5_file_type(TH5_ITEMS);
    replace_table(p, "/items", ft, 8, 8, dcpl, NULL);
    H5Tclose(ft);
    H5Pclose(dcpl);
    expect_bad(p, "/items", "external file");
}

Test(hostile_trace, foreign_filter) {
    const char *p = valid_file("nbit.h5");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = 4;
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_nbit(dcpl);
    TraceItem it[8];
    for (int i = 0; i < 8; i++) it[i] = (TraceItem){(uint32_t)(10 * (i % 4) + 1), 1};
    replace_rows(p, "/items", TH5_ITEMS, 8, 8, dcpl, it);
    H5Pclose(dcpl);
    expect_bad(p, "/items", "not one orchsim writes");
}

Test(hostile_trace, soft_link_table) {
    const char *p = valid_file("soft.h5");
    hid_t f = open_rw(p);
    H5Ldelete(f, "/items", H5P_DEFAULT);
    cr_assert_geq(H5Lcreate_soft("/examples", f, "/items", H5P_DEFAULT, H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_bad(p, "/items", "soft link");
}

/* ---- defect 9: names, ranges and filesystem errors ----------------------------------------- */

static void patch_row(const char *path, Th5Table tb, uint64_t row, void (*fn)(void *)) {
    hid_t f = open_rw(path);
    hid_t ds = H5Dopen2(f, TH5_TABLES[tb].dataset, H5P_DEFAULT);
    hid_t mt = th5_mem_type(tb);
    hid_t fs = H5Dget_space(ds);
    hsize_t start = row, cnt = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    unsigned char buf[256] = {0};
    cr_assert_geq(H5Dread(ds, mt, ms, fs, H5P_DEFAULT, buf), 0);
    fn(buf);
    cr_assert_geq(H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, buf), 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(mt);
    H5Dclose(ds);
    H5Fclose(f);
}

static void ansi_name(void *row) { strcpy(((TraceModality *)row)->name, "im\033[31mage\nx"); }
Test(hostile_trace, control_bytes_in_a_modality_name) {
    const char *p = valid_file("ansi.h5");
    patch_row(p, TH5_MODALITIES, 1, ansi_name);
    expect_bad(p, "/modalities[1].name", "'im\\x1b[31mage\\x0ax': only letters, digits");
}

static void wrap_first(void *row) {
    ((TraceExample *)row)->first_item = UINT64_MAX - 1;
    ((TraceExample *)row)->n_items = 3;
}
Test(hostile_trace, range_ends_do_not_wrap) {
    const char *p = valid_file("wrap.h5");
    patch_row(p, TH5_EXAMPLES, 7, wrap_first);
    expect_bad(p, "/examples[7].first_item", "3 items from row 18446744073709551614 run past /items (8 rows)");
    cr_assert(!strstr(os_last_error(), ", 1)"), "%s", os_last_error());
}

Test(hostile_trace, zero_steps) {
    const char *p = valid_file("nosteps.h5");
    hid_t ft = th5_file_type(TH5_STEPS), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = 4;
    H5Pset_chunk(dcpl, 1, &chunk);
    replace_table(p, "/steps", ft, 0, H5S_UNLIMITED, dcpl, NULL);
    H5Pclose(dcpl);
    H5Tclose(ft);
    expect_bad(p, "/steps", "0 rows (a trace needs at least one step)");
    cr_assert(!strstr(os_last_error(), "--skip"), "%s", os_last_error());
}

Test(hostile_trace, filesystem_errors_say_what_happened) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s", th_tmp("loop-a.h5"));
    snprintf(b, sizeof b, "%s", th_tmp("loop-b.h5"));
    unlink(a);
    unlink(b);
    cr_assert_eq(symlink(b, a), 0);
    cr_assert_eq(symlink(a, b), 0);
    expect_bad(a, "symbolic link loop", NULL);
    char *longp = malloc(5000);
    memset(longp, 'x', 4999);
    longp[4999] = '\0';
    memcpy(longp, "/tmp/", 5);
    Trace *t = NULL;
    os_clear_error();
    OsStatus st = trace_open(&t, longp);
    free(longp);
    cr_assert_neq(st, OS_OK);
    cr_assert(strstr(os_last_error(), "path too long"), "%s", os_last_error());
    const char *dir = th_tmp("adir");
    mkdir(dir, 0700);
    expect_bad(dir, "is a directory", NULL);
}

Test(hostile_trace, permission_denied_is_not_corrupt) {
    const char *p = valid_file("noperm.h5");
    chmod(p, 0);
    if (geteuid() == 0) {
        chmod(p, 0644);
        cr_skip_test("running as root: permissions do not apply, the EACCES case is not testable here");
    }
    expect_bad(p, "permission denied", NULL);
    chmod(p, 0644);
}

/* ---- the fuzz-crash corpus (traces/fuzz/corpus-crashes, corpus-trace) --------------------- */

static int replay_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        Trace *t = NULL;
        os_clear_error();
        OsStatus st = trace_open(&t, p);
        if (st == OS_OK) {
            st = trace_validate(t);
            trace_close(t);
        }
        if (st != OS_OK) {
            cr_assert(os_has_error(), "%s: rejected without a message", p);
            cr_assert(strstr(os_last_error(), p), "%s: the message does not name the file: %s", p, os_last_error());
        }
        n++;
    }
    closedir(d);
    return n;
}

Test(hostile_trace, fuzz_crash_corpus_is_rejected_cleanly) {
    int n = replay_dir(ORCHSIM_SRC "/traces/fuzz/corpus-crashes");
    cr_assert_geq(n, 7, "the 7 crash inputs of issue 14 must be in the corpus (%d found)", n);
    replay_dir(ORCHSIM_SRC "/traces/fuzz/corpus-trace");
}
