/* test_trace.c — traces/trace.h: round trips, streaming memory bound, byte-identical output,
 * and every bad-file case (the message names the file, the dataset/row and the field). */
#include <criterion/criterion.h>
#include <glob.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "traces/h5check.h"
#include "traces/trace.h"

static const TraceModality MODS[] = {{"text", "token", 1}, {"image", "patch", 4}, {"audio", "frame", 2}};

/* A random trace: n_steps steps, random dp and sizes, lengths including 0 and 2^31-1. */
static void random_step(gsl_rng *r, TraceStep *s, uint64_t *id) {
    trace_step_clear(s);
    s->dp = 1 + (uint32_t)gsl_rng_uniform_int(r, 5);
    uint32_t n = s->dp * (1 + (uint32_t)gsl_rng_uniform_int(r, 6));
    for (uint32_t k = 0; k < n; k++) {
        TraceItem it[6];
        uint32_t ni = (uint32_t)gsl_rng_uniform_int(r, 7);
        for (uint32_t i = 0; i < ni; i++) {
            it[i].modality = (uint8_t)(1 + gsl_rng_uniform_int(r, 2));
            unsigned long u = gsl_rng_uniform_int(r, 10);
            it[i].length = u == 0 ? 0u : u == 1 ? TRACE_MAX_LEN - 1u : (uint32_t)gsl_rng_uniform_int(r, 5000);
        }
        uint32_t text = gsl_rng_uniform_int(r, 20) == 0 ? TRACE_MAX_LEN - 1u : (uint32_t)gsl_rng_uniform_int(r, 3000);
        cr_assert_eq(trace_step_push(s, text, (*id)++ * 3 + 1, it, ni), OS_OK);
    }
}

static void write_random(const char *path, unsigned long seed, int n_steps, uint32_t chunk) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    TraceWriter *w = NULL;
    TraceProvenance prov = {"test random", "test_trace"};
    cr_assert_eq(trace_writer_create(&w, path, MODS, 3, &prov, chunk), OS_OK, "%s", os_last_error());
    TraceStep s;
    trace_step_init(&s);
    uint64_t id = 0;
    for (int i = 0; i < n_steps; i++) {
        random_step(r, &s, &id);
        cr_assert_eq(trace_writer_add_step(w, &s), OS_OK, "%s", os_last_error());
    }
    cr_assert_eq(trace_writer_close(w), OS_OK, "%s", os_last_error());
    trace_step_free(&s);
    gsl_rng_free(r);
}

static int no_tmp_left(const char *path) {
    char pat[1200];
    glob_t g;
    snprintf(pat, sizeof pat, "%s.tmp.*", path);
    int rc = glob(pat, 0, NULL, &g);
    globfree(&g);
    return rc == GLOB_NOMATCH;
}

Test(trace, llm_tokens_hand_case) {
    TraceStep s;
    trace_step_init(&s);
    TraceItem it[3] = {{5, 1}, {4, 2}, {8, 1}};
    cr_assert_eq(trace_step_push(&s, 10, 0, it, 3), OS_OK);
    uint32_t ratio[3] = {1, 4, 2};
    /* 10 + ceil(5/4) + ceil(4/2) + ceil(8/4) = 10 + 2 + 2 + 2 */
    cr_assert_eq(trace_llm_tokens(&s, 0, ratio), 16u);
    uint32_t one[3] = {1, 1, 1};
    cr_assert_eq(trace_llm_tokens(&s, 0, one), 27u);
    trace_step_free(&s);
}

/* Property: for many seeds, what is read equals what was written (regenerated from the seed). */
Test(trace, round_trip_many_seeds) {
    for (unsigned long seed = 1; seed <= 40; seed++) {
        const char *path = th_tmp("rt.h5");
        int n_steps = 1 + (int)(seed % 9);
        write_random(path, seed, n_steps, 1 + (uint32_t)(seed % 13)); /* tiny chunks cross boundaries */
        Trace *t = NULL;
        cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
        cr_assert_eq(trace_n_steps(t), (uint64_t)n_steps);
        cr_assert_eq(trace_n_modalities(t), 3u);
        cr_assert_str_eq(trace_modality(t, 1)->name, "image");
        cr_assert_eq(trace_modality(t, 2)->default_ratio, 2u);
        cr_assert_eq(trace_modality_index(t, "audio"), 2);
        cr_assert_eq(trace_modality_index(t, "video"), -1);
        cr_assert_str_eq(trace_provenance(t)->source, "test random");
        gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(r, seed);
        TraceStep exp;
        trace_step_init(&exp);
        uint64_t id = 0, n_ex = 0, n_it = 0;
        const TraceStep *got = NULL;
        for (int i = 0; i < n_steps; i++) {
            random_step(r, &exp, &id);
            cr_assert_eq(trace_next_step(t, &got), OS_OK, "%s", os_last_error());
            cr_assert_eq(got->index, (uint64_t)i);
            cr_assert_eq(got->dp, exp.dp);
            cr_assert_eq(got->n_examples, exp.n_examples);
            cr_assert_eq(got->n_items, exp.n_items);
            for (uint32_t k = 0; k < exp.n_examples; k++) {
                cr_assert_eq(got->examples[k].id, exp.examples[k].id);
                cr_assert_eq(got->examples[k].text, exp.examples[k].text);
                cr_assert_eq(got->examples[k].n_items, exp.examples[k].n_items);
                cr_assert_eq(got->examples[k].first_item, exp.examples[k].first_item);
            }
            for (uint32_t k = 0; k < exp.n_items; k++) {
                cr_assert_eq(got->items[k].length, exp.items[k].length);
                cr_assert_eq(got->items[k].modality, exp.items[k].modality);
            }
            n_ex += exp.n_examples;
            n_it += exp.n_items;
        }
        cr_assert_eq(trace_next_step(t, &got), OS_DONE);
        cr_assert_eq(trace_n_examples(t), n_ex);
        cr_assert_eq(trace_n_items(t), n_it);
        trace_rewind(t);
        cr_assert_eq(trace_next_step(t, &got), OS_OK);
        cr_assert_eq(got->index, 0u);
        cr_assert_eq(trace_validate(t), OS_OK);
        trace_step_free(&exp);
        gsl_rng_free(r);
        trace_close(t);
        remove(path);
    }
}

Test(trace, byte_identical_same_input) {
    const char *a = th_tmp("same_a.h5"), *b = th_tmp("same_b.h5");
    write_random(a, 99, 7, 16);
    write_random(b, 99, 7, 16);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa && fb);
    long n = 0;
    int ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        cr_assert_eq(ca, cb, "files differ at byte %ld", n);
        n++;
    } while (ca != EOF);
    cr_assert_gt(n, 1000);
    fclose(fa);
    fclose(fb);
    remove(a);
    remove(b);
}

/* The reader's buffers are bounded by the largest step, not the trace: 400 steps x 64
 * examples read with buffers that never exceed one step's (doubling) capacity. */
Test(trace, streaming_memory_bound) {
    const char *path = th_tmp("big.h5");
    TraceWriter *w = NULL;
    cr_assert_eq(trace_writer_create(&w, path, MODS, 3, NULL, 1024), OS_OK);
    TraceStep s;
    trace_step_init(&s);
    uint64_t id = 0;
    for (int i = 0; i < 400; i++) {
        trace_step_clear(&s);
        s.dp = 8;
        for (int k = 0; k < 64; k++) {
            TraceItem it[2] = {{100u + (uint32_t)k, 1}, {7, 2}};
            cr_assert_eq(trace_step_push(&s, 5, id++, it, 2), OS_OK);
        }
        cr_assert_eq(trace_writer_add_step(w, &s), OS_OK);
    }
    cr_assert_eq(trace_writer_close(w), OS_OK);
    trace_step_free(&s);
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(trace_n_examples(t), 400u * 64u);
    const TraceStep *got = NULL;
    uint64_t seen = 0;
    while (trace_next_step(t, &got) == OS_OK) {
        cr_assert_leq(got->cap_examples, 128u);
        cr_assert_leq(got->cap_items, 256u);
        seen += got->n_examples;
        cr_assert_eq(got->items[2 * 63].length, 163u);
    }
    cr_assert_eq(seen, 400u * 64u);
    trace_close(t);
    remove(path);
}

Test(trace, writer_rejects_bad_steps_and_abort_leaves_nothing) {
    const char *path = th_tmp("rej.h5");
    TraceWriter *w = NULL;
    cr_assert_eq(trace_writer_create(&w, path, MODS, 3, NULL, 0), OS_OK);
    TraceStep s;
    trace_step_init(&s);
    s.dp = 2;
    cr_assert_eq(trace_step_push(&s, 1, 0, NULL, 0), OS_OK);
    os_clear_error();
    cr_assert_eq(trace_writer_add_step(w, &s), OS_ERR_ARG); /* 1 % 2 != 0 */
    cr_assert(strstr(os_last_error(), "dp = 2"), "%s", os_last_error());
    TraceItem bad = {5, 3}; /* modality 3 does not exist */
    s.dp = 1;
    trace_step_clear(&s);
    cr_assert_eq(trace_step_push(&s, 1, 0, &bad, 1), OS_OK);
    os_clear_error();
    cr_assert_neq(trace_writer_add_step(w, &s), OS_OK);
    trace_writer_abort(w);
    cr_assert(!th_exists(path));
    cr_assert(no_tmp_left(path));
    trace_step_free(&s);
    /* modality 0 must be text */
    TraceModality m2[2] = {{"image", "patch", 4}, {"text", "token", 1}};
    os_clear_error();
    cr_assert_eq(trace_writer_create(&w, path, m2, 2, NULL, 0), OS_ERR_ARG);
    cr_assert(!th_exists(path));
}

/* ---- bad files ------------------------------------------------------------------------ */

/* A valid 2-step trace: dp 2, 4 examples per step, 1 item each, then patched by the test. */
static const char *valid_file(const char *name) {
    const char *path = th_tmp(name);
    TraceWriter *w = NULL;
    cr_assert_eq(trace_writer_create(&w, path, MODS, 3, NULL, 4), OS_OK);
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
    cr_assert_eq(trace_writer_close(w), OS_OK);
    trace_step_free(&s);
    return path;
}

typedef void PatchFn(void *row);

/* Read row `row` of table tb, let fn change it, write it back. */
static void patch_row(const char *path, Th5Table tb, uint64_t row, PatchFn *fn) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
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

/* Expect open (or, when open passes, a full validation) to fail with all needles. */
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
}

Test(trace_bad, missing_file) { expect_bad(th_tmp("does-not-exist.h5"), "no such file", NULL); }

Test(trace_bad, not_hdf5) {
    const char *p = th_tmp("not.h5");
    FILE *f = fopen(p, "w");
    fputs("id,text\n1,2\n", f);
    fclose(f);
    expect_bad(p, "not an HDF5 file", NULL);
}

Test(trace_bad, truncated) {
    const char *p = valid_file("trunc.h5");
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    f = fopen(p, "wb");
    fwrite(buf, 1, (size_t)n / 2, f);
    fclose(f);
    free(buf);
    expect_bad(p, "truncated or corrupt", NULL);
}

Test(trace_bad, missing_dataset) {
    const char *p = valid_file("nods.h5");
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "/items", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_bad(p, "/items", "missing");
}

Test(trace_bad, dataset_not_a_table) {
    const char *p = valid_file("notable.h5");
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "/steps", H5P_DEFAULT), 0);
    hsize_t n = 3;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, "/steps", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    expect_bad(p, "/steps", "compound");
}

Test(trace_bad, signed_field) {
    const char *p = valid_file("signed.h5");
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "/items", H5P_DEFAULT), 0);
    hid_t ct = H5Tcreate(H5T_COMPOUND, 5);
    H5Tinsert(ct, "modality", 0, H5T_STD_U8LE);
    H5Tinsert(ct, "length", 1, H5T_STD_I32LE);
    hsize_t n = 8;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, "/items", ct, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(ct);
    H5Fclose(f);
    expect_bad(p, "/items", "'length' must be an unsigned 32-bit integer");
}

static void set_version(const char *p, uint32_t v) {
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "orchsim_trace_version", H5P_DEFAULT);
    cr_assert_geq(H5Awrite(a, H5T_NATIVE_UINT32, &v), 0);
    H5Aclose(a);
    H5Fclose(f);
}

Test(trace_bad, wrong_version) {
    const char *p = valid_file("ver.h5");
    set_version(p, TRACE_VERSION + 1);
    expect_bad(p, "orchsim_trace_version", "is not supported (this orchsim reads versions 2 to");
    set_version(p, 2); /* version 2: the same tables without the optional request tables, still read */
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, p), OS_OK, "%s", os_last_error());
    trace_close(t);
    set_version(p, 1); /* version 1 = the unchecksummed format: regenerate */
    expect_bad(p, "version 1 is not supported", "regenerate");
}

/* A file in the HDF5 1.10 format (checksummed metadata), as trace format 2 requires. */
static hid_t create_v110(const char *p) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    cr_assert_geq(f, 0);
    return f;
}

Test(trace_bad, wrong_format_name) {
    const char *p = th_tmp("fmt.h5");
    H5Fclose(create_v110(p));
    expect_bad(p, "'format'", "missing");
}

/* The HDF5 1.8 default format has no metadata checksums: refused before HDF5 parses it. */
Test(trace_bad, unchecksummed_hdf5_format) {
    const char *p = th_tmp("v0.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    expect_bad(p, "superblock version 0", "checksums");
}

static void absurd_len(void *row) { ((TraceItem *)row)->length = 4294967295u; }
Test(trace_bad, absurd_item_length) {
    const char *p = valid_file("absurd.h5");
    patch_row(p, TH5_ITEMS, 5, absurd_len);
    expect_bad(p, "/items[5].length", "4294967295 is absurd (>= 2^31)");
}

static void absurd_text(void *row) { ((TraceExample *)row)->text = 1u << 31; }
Test(trace_bad, absurd_text) {
    const char *p = valid_file("absurdtext.h5");
    patch_row(p, TH5_EXAMPLES, 2, absurd_text);
    expect_bad(p, "/examples[2].text", "absurd");
}

static void past_table(void *row) { ((TraceExample *)row)->n_items = 50; }
Test(trace_bad, item_past_table) {
    const char *p = valid_file("past.h5");
    patch_row(p, TH5_EXAMPLES, 7, past_table);
    expect_bad(p, "/examples[7].first_item", "run past /items (8 rows)");
}

static void shift_first(void *row) { ((TraceExample *)row)->first_item += 1; }
Test(trace_bad, items_not_contiguous) {
    const char *p = valid_file("gap.h5");
    patch_row(p, TH5_EXAMPLES, 1, shift_first);
    expect_bad(p, "/examples[1].first_item", "not contiguous");
}

static void bad_mod(void *row) { ((TraceItem *)row)->modality = 9; }
Test(trace_bad, modality_out_of_range) {
    const char *p = valid_file("mod.h5");
    patch_row(p, TH5_ITEMS, 3, bad_mod);
    expect_bad(p, "/items[3].modality", "not an item modality");
}

static void dp3(void *row) { ((TraceStepRec *)row)->dp = 3; }
Test(trace_bad, step_not_divisible_by_dp) {
    const char *p = valid_file("dp.h5");
    patch_row(p, TH5_STEPS, 1, dp3);
    expect_bad(p, "/steps[1].n_examples", "not divisible by dp = 3");
}

static void step_past(void *row) { ((TraceStepRec *)row)->first_example = 6; }
Test(trace_bad, step_past_examples) {
    const char *p = valid_file("steppast.h5");
    patch_row(p, TH5_STEPS, 1, step_past);
    expect_bad(p, "/steps[1].first_example", "run past /examples");
}

static void mod0_not_text(void *row) { strcpy(((TraceModality *)row)->name, "image0"); }
Test(trace_bad, modality_table) {
    const char *p = valid_file("modtab.h5");
    patch_row(p, TH5_MODALITIES, 0, mod0_not_text);
    expect_bad(p, "/modalities[0].name", "must be \"text\"");
}

static void ratio0(void *row) { ((TraceModality *)row)->default_ratio = 0; }
Test(trace_bad, modality_ratio_zero) {
    const char *p = valid_file("ratio0.h5");
    patch_row(p, TH5_MODALITIES, 2, ratio0);
    expect_bad(p, "/modalities[2].default_ratio", "must be >= 1");
}

/* The read-ahead (small steps served from kept blocks) against direct reads: the same steps,
 * read in order, backwards and at random, with chunk and block boundaries crossed. */
Test(trace, read_ahead_matches_direct_reads) {
    const char *path = th_tmp("ra.h5");
    write_random(path, 77, 120, 13); /* 13-row chunks, 64-row blocks: both boundaries crossed */
    Trace *a = NULL, *b = NULL;
    TraceLimits fast = {.read_ahead_rows = 64}, slow = {.read_ahead_rows = 1};
    cr_assert_eq(trace_open_limits(&a, path, &fast), OS_OK, "%s", os_last_error());
    cr_assert_eq(trace_open_limits(&b, path, &slow), OS_OK, "%s", os_last_error());
    uint64_t n = trace_n_steps(a), x = 12345;
    for (uint64_t k = 0; k < 3 * n; k++) {
        uint64_t s = k < n ? k : k < 2 * n ? 2 * n - 1 - k : (x = x * 6364136223846793005ull + 1) >> 33;
        s %= n;
        const TraceStep *sa, *sb;
        cr_assert_eq(trace_read_step(a, s, &sa), OS_OK, "%s", os_last_error());
        cr_assert_eq(trace_read_step(b, s, &sb), OS_OK, "%s", os_last_error());
        cr_assert_eq(sa->n_examples, sb->n_examples);
        cr_assert_eq(sa->n_items, sb->n_items);
        cr_assert_eq(memcmp(sa->examples, sb->examples, sa->n_examples * sizeof *sa->examples), 0, "step %llu",
                     (unsigned long long)s);
        for (uint32_t i = 0; i < sa->n_items; i++) {
            cr_assert_eq(sa->items[i].length, sb->items[i].length);
            cr_assert_eq(sa->items[i].modality, sb->items[i].modality);
        }
    }
    trace_close(a);
    trace_close(b);
}
