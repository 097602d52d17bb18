/* test_diffusion_trace.c — traces/requests.h and gen_t2i.h: the version-3 request tables
 * written and read back, version 2 still read, a corrupt row named by file, row and field, the
 * cpdm and t2i-mixed profiles against their documented parameters. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "traces/gen_t2i.h"
#include "traces/trace.h"

static const char *write_profile(const char *name, const char *profile, uint64_t steps, uint32_t B, uint32_t D,
                                 uint64_t seed) {
    const char *p = th_tmp(name);
    GenConfig g = {profile, seed, steps, B, D, 0, "test"};
    cr_assert_eq(gen_t2i_write(p, &g), OS_OK, "%s", os_last_error());
    return p;
}

static void load(T2iRequests *r, const char *p, int want_present) {
    Trace *t = NULL;
    int present = -1;
    cr_assert_eq(trace_open(&t, p), OS_OK, "%s", os_last_error());
    cr_assert_eq(t2i_requests_load(r, p, trace_n_examples(t), &present), OS_OK, "%s", os_last_error());
    cr_assert_eq(present, want_present);
    trace_close(t);
}

/* CPDM.md "The dataset": 1,500 + 200 + 200 + 200 anchors, each 9 images at 768^2, 50 steps,
 * guidance 9, SD 2.1-768; the chain length 8..32 with the documented synthetic law. */
Test(t2i_trace, cpdm_profile) {
    cr_assert_eq(gen_t2i_fixed_count("cpdm"), 2100);
    const char *p = write_profile("cpdm.h5", "cpdm", 0, 420, 4, 1);
    T2iRequests r;
    load(&r, p, 1);
    cr_assert_eq(r.n, 2100);
    cr_assert_eq(r.n_steps, 5);
    cr_assert_eq(r.step_first[3], 3 * 420);
    uint64_t per[T2I_MAX_NAMES] = {0}, it_sum = 0, it_le13 = 0;
    for (uint64_t i = 0; i < r.n; i++) {
        const T2iRequest *q = &r.rows[i];
        per[q->category]++;
        cr_assert_str_eq(r.models[q->model], "sd21-768");
        cr_assert(q->width == 768 && q->height == 768 && q->images == 9 && q->steps == 50 && q->cfg == 9.0f);
        cr_assert(q->iters >= 8 && q->iters <= 32, "iters %u", q->iters);
        it_sum += q->iters;
        it_le13 += q->iters <= 13;
    }
    cr_assert_str_eq(r.categories[0], "style");
    cr_assert_eq(per[0], 1500);
    cr_assert_eq(per[1], 200);
    cr_assert_eq(per[2], 200);
    cr_assert_eq(per[3], 200);
    double mean = (double)it_sum / (double)r.n;
    cr_assert(fabs(mean - 15.53) < 0.6, "mean chain length %.3f (law: 15.53)", mean);
    cr_assert(fabs((double)it_le13 / (double)r.n - 0.5) < 0.06, "median 13: %.3f at or below", (double)it_le13 / (double)r.n);
    t2i_requests_free(&r);
    /* the law itself: u = 0 -> 8, the top of the range -> 32, P(X >= k) = (8/9)^k */
    cr_assert_eq(gen_t2i_iters(0.0), 8);
    cr_assert_eq(gen_t2i_iters(0.9999999), 32);
    cr_assert_eq(gen_t2i_iters(1.0 - pow(8.0 / 9.0, 5) + 1e-9), 13);
    /* a batch that does not divide the anchors: one clear error */
    GenConfig g = {"cpdm", 1, 0, 512, 8, 0, "test"};
    os_clear_error();
    cr_assert_eq(gen_t2i_write(th_tmp("bad.h5"), &g), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "2100 anchors"), "%s", os_last_error());
    os_clear_error();
}

/* t2i-mixed (labelled synthetic): half SD 1.4 at 512^2, half SD 2.1 at 768^2, 1..9 images,
 * 20..50 steps, guidance 7.5, no interrogation; the same seed gives the same rows. */
Test(t2i_trace, mixed_profile_and_determinism) {
    const char *p = write_profile("mixed.h5", "t2i-mixed", 16, 256, 8, 9);
    T2iRequests r, r2;
    load(&r, p, 1);
    cr_assert_eq(r.n, 4096);
    uint64_t n14 = 0, img_lo = 0, img_hi = 0, st_lo = 0, st_hi = 0;
    for (uint64_t i = 0; i < r.n; i++) {
        const T2iRequest *q = &r.rows[i];
        int sd14 = !strcmp(r.models[q->model], "sd14");
        n14 += sd14;
        cr_assert_eq(q->width, sd14 ? 512 : 768);
        cr_assert(q->images >= 1 && q->images <= 9);
        cr_assert(q->steps >= 20 && q->steps <= 50);
        cr_assert_eq(q->cfg, 7.5f);
        cr_assert_eq(q->iters, 0);
        img_lo += q->images == 1, img_hi += q->images == 9, st_lo += q->steps == 20, st_hi += q->steps == 50;
    }
    cr_assert(fabs((double)n14 / r.n - 0.5) < 0.03, "sd14 share %.3f", (double)n14 / r.n);
    cr_assert(img_lo > 0 && img_hi > 0 && st_lo > 0 && st_hi > 0, "the ends of both ranges are drawn");
    const char *p2 = write_profile("mixed2.h5", "t2i-mixed", 16, 256, 8, 9);
    load(&r2, p2, 1);
    cr_assert_eq(memcmp(r.rows, r2.rows, r.n * sizeof *r.rows), 0, "same seed, same requests");
    t2i_requests_free(&r);
    t2i_requests_free(&r2);
}

/* A version-2 trace (no request tables) is still read: its examples take the stage defaults. */
Test(t2i_trace, version2_still_read) {
    ThEx ex[4] = {{77, 0, 0, 0, 0}, {77, 0, 0, 0, 0}, {77, 0, 0, 0, 0}, {77, 0, 0, 0, 0}};
    const char *p = th_write_trace("v2.h5", ex, 4, 2, 3);
    cr_assert_not_null(p, "%s", os_last_error());
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    uint32_t v = 2;
    hid_t a = H5Aopen(f, "orchsim_trace_version", H5P_DEFAULT);
    cr_assert_geq(H5Awrite(a, H5T_NATIVE_UINT32, &v), 0);
    H5Aclose(a);
    H5Fclose(f);
    T2iRequests r;
    load(&r, p, 0);
    cr_assert_eq(r.n, 0);
    t2i_requests_free(&r);
    /* a version-3 trace written by the MLLM writers has no request tables either */
    const char *p3 = th_write_trace("v3plain.h5", ex, 4, 2, 3);
    load(&r, p3, 0);
    t2i_requests_free(&r);
}

/* A row corrupted in the file: the loader names the file, the row and the field. */
Test(t2i_trace, corrupt_row_named) {
    const char *p = write_profile("corrupt.h5", "t2i-mixed", 2, 64, 8, 1);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/requests", H5P_DEFAULT);
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(uint16_t));
    H5Tinsert(mt, "steps", 0, H5T_NATIVE_UINT16);
    hid_t fs = H5Dget_space(ds);
    hsize_t start = 37, count = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    hid_t ms = H5Screate_simple(1, &count, NULL);
    uint16_t zero = 0;
    cr_assert_geq(H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, &zero), 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(mt);
    H5Dclose(ds);
    H5Fclose(f);
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, p), OS_OK, "%s", os_last_error());
    T2iRequests r;
    int present = 0;
    os_clear_error();
    cr_assert_eq(t2i_requests_load(&r, p, trace_n_examples(t), &present), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "/requests[37].steps: 0 steps"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), p), "names the file: %s", os_last_error());
    os_clear_error();
    /* a row count that does not match the examples */
    cr_assert_eq(t2i_requests_load(&r, p, trace_n_examples(t) + 1, &present), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "128 rows for 129 examples"), "%s", os_last_error());
    os_clear_error();
    trace_close(t);
}
