/* test_sweep.c — the sweep grid, its process pool, the run-level CSV and the HDF5 copy, on a
 * tiny trace written here with the trace writer (3 steps x 16 examples, text + image). */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "analysis/runtable.h"
#include "analysis/schema.h"
#include "analysis/sweep.h"
#include "helpers.h"
#include "traces/trace.h"

static void write_trace(const char *path) {
    const TraceModality mods[] = {{"text", "token", 1}, {"image", "patch", 4}};
    TraceProvenance prov;
    memset(&prov, 0, sizeof prov);
    snprintf(prov.source, sizeof prov.source, "test_sweep synthetic");
    snprintf(prov.created_by, sizeof prov.created_by, "test_sweep");
    TraceWriter *w = NULL;
    cr_assert_eq(trace_writer_create(&w, path, mods, 2, &prov, 0), OS_OK, "%s", os_last_error());
    TraceStep s;
    trace_step_init(&s);
    uint64_t id = 0;
    for (int step = 0; step < 3; step++) {
        trace_step_clear(&s);
        s.index = (uint64_t)step;
        s.dp = 4;
        for (int e = 0; e < 16; e++, id++) {
            TraceItem it = {(uint32_t)(64 + (id * 389) % 2000), 1};
            cr_assert_eq(trace_step_push(&s, (uint32_t)(16 + (id * 97) % 700), id, &it, id % 3 ? 1u : 0u), OS_OK);
        }
        cr_assert_eq(trace_writer_add_step(w, &s), OS_OK, "%s", os_last_error());
    }
    trace_step_free(&s);
    cr_assert_eq(trace_writer_close(w), OS_OK, "%s", os_last_error());
}

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "%s missing", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return b;
}

static void grid_small(SweepGrid *g, char *pol, char *gpus) {
    sweep_grid_init(g);
    cr_assert_eq(sweep_axis_strs(g->policies, &g->n_policies, pol, "--policies"), OS_OK);
    g->models[g->n_models++] = "llava-7b";
    g->setups[g->n_setups++] = "fsdp";
    cr_assert_eq(sweep_axis_u32(g->gpus, &g->n_gpus, gpus, 1, 1u << 24, "--gpus"), OS_OK);
    cr_assert_eq(sweep_grid_finish(g), OS_OK);
}

Test(sweep, grid_product_and_points) {
    SweepGrid g;
    sweep_grid_init(&g);
    char pol[] = "none, post ,lpt", gp[] = "8,16", tp[] = "1,2";
    cr_assert_eq(sweep_axis_strs(g.policies, &g.n_policies, pol, "--policies"), OS_OK);
    cr_assert_eq(g.n_policies, 3);
    cr_assert_str_eq(g.policies[1], "post");
    cr_assert_eq(sweep_axis_u32(g.gpus, &g.n_gpus, gp, 1, 1u << 24, "--gpus"), OS_OK);
    cr_assert_eq(sweep_axis_u32(g.tp, &g.n_tp, tp, 1, 64, "--tp"), OS_OK);
    g.models[g.n_models++] = "a";
    g.models[g.n_models++] = "b";
    cr_assert_eq(sweep_grid_finish(&g), OS_OK);
    cr_assert_eq(sweep_grid_size(&g), 3 * 2 * 2 * 2); /* setups and gpus_per_node default to one value */
    /* every combination exactly once */
    int seen[2][2][2][3] = {{{{0}}}};
    for (size_t i = 0; i < sweep_grid_size(&g); i++) {
        SweepPoint p;
        sweep_grid_point(&p, &g, i);
        int m = p.model[0] - 'a', gi = p.gpus == 16, ti = p.tp == 2;
        int pi = !strcmp(p.policy, "none") ? 0 : !strcmp(p.policy, "post") ? 1 : 2;
        seen[m][gi][ti][pi]++;
        cr_assert_str_eq(p.setup, "ddp");
        cr_assert_eq(p.gpus_per_node, 8);
    }
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++)
                for (int d = 0; d < 3; d++) cr_assert_eq(seen[a][b][c][d], 1);
    char bad[] = "8,x";
    os_clear_error();
    cr_assert_eq(sweep_axis_u32(g.gpus, &g.n_gpus, bad, 1, 100, "--gpus"), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "--gpus"), "%s", os_last_error());
    os_clear_error();
    SweepGrid e;
    sweep_grid_init(&e);
    cr_assert_eq(sweep_grid_finish(&e), OS_ERR_ARG);
    os_clear_error();
}

Test(sweep, grid_file) {
    const char *path = th_tmp("grid.txt");
    FILE *fp = fopen(path, "w");
    fputs("# a sweep\npolicies = none, post\nmodels = llava-7b\n\ngpus = 8, 16 # two sizes\nsteps = 2\n", fp);
    fclose(fp);
    SweepGrid g;
    sweep_grid_init(&g);
    char *text = NULL;
    cr_assert_eq(sweep_grid_load(&g, &text, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(g.n_policies, 2);
    cr_assert_str_eq(g.policies[1], "post");
    cr_assert_eq(g.n_gpus, 2);
    cr_assert_eq(g.gpus[1], 16);
    cr_assert_eq(g.steps, 2);
    free(text);
    /* an axis given twice (command line, then file) is refused with the file and line */
    sweep_grid_init(&g);
    g.gpus[g.n_gpus++] = 64;
    os_clear_error();
    cr_assert_eq(sweep_grid_load(&g, &text, path), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), path) && strstr(os_last_error(), "line 5"), "%s", os_last_error());
    os_clear_error();
    fp = fopen(path, "w");
    fputs("policies = none\ncolour = blue\n", fp);
    fclose(fp);
    sweep_grid_init(&g);
    cr_assert_eq(sweep_grid_load(&g, &text, path), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "line 2") && strstr(os_last_error(), "colour"), "%s", os_last_error());
    os_clear_error();
}

Test(sweep, runs_in_workers_and_matches_in_process) {
    const char *trace = th_tmp("sw.h5");
    write_trace(trace);
    char pol[] = "none,post", gpus[] = "4,8";
    SweepGrid g;
    grid_small(&g, pol, gpus);
    SweepOptions o;
    sweep_options_init(&o);
    o.trace_path = trace;
    o.balancer_cost_s = 0.0; /* byte-identical reruns */
    o.jobs = 2;
    char csv[1024], csv1[1024], h5[1024];
    snprintf(csv, sizeof csv, "%s", th_tmp("sw.csv"));
    snprintf(csv1, sizeof csv1, "%s", th_tmp("sw1.csv"));
    snprintf(h5, sizeof h5, "%s", th_tmp("sw_out.h5"));
    o.csv_path = csv;
    o.h5_path = h5;
    SweepReport rep;
    cr_assert_eq(sweep_run(&rep, &g, &o), OS_OK, "%s", os_last_error());
    cr_assert_eq(rep.n_points, 4);
    cr_assert_eq(rep.n_ok, 4);
    cr_assert_eq(rep.n_failed, 0);
    sweep_report_free(&rep);

    /* the table: run-level schema, one row per point in grid order, speedups filled in */
    RunRow *rows = NULL;
    size_t n = 0;
    cr_assert_eq(runtable_read(&rows, &n, csv), OS_OK, "%s", os_last_error());
    cr_assert_eq(n, 4);
    const char *pol_order[] = {"none", "post", "none", "post"};
    const uint64_t gpu_order[] = {4, 4, 8, 8};
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(rows[i].policy, pol_order[i]);
        cr_assert_eq(rows[i].gpus, gpu_order[i]);
        cr_assert_eq(rows[i].dp, gpu_order[i]);
        cr_assert_eq(rows[i].steps, 3);
        cr_assert_str_eq(rows[i].setup, "fsdp");
        cr_assert_gt(rows[i].tokens_per_s, 0.0);
        cr_assert(rows[i].step_ci95_s >= 0.0);
        cr_assert(rows[i].step_p50_s <= rows[i].step_p99_s * (1 + 1e-12));
        cr_assert(rows[i].mfu > 0.0 && rows[i].mfu < 1.0, "mfu %g", rows[i].mfu);
        cr_assert(isfinite(rows[i].imbalance[0]) && isfinite(rows[i].imbalance[3]));
        cr_assert(rows[i].imbalance[0] >= 1.0 - 1e-12 && rows[i].imbalance[3] >= 1.0 - 1e-12);
        cr_assert(isnan(rows[i].imbalance[1]) && isnan(rows[i].imbalance[2]), "no audio/video phase");
        cr_assert(isfinite(rows[i].speedup_vs_none));
    }
    cr_assert_eq(rows[0].speedup_vs_none, 1.0);
    cr_assert(fabs(rows[1].speedup_vs_none - rows[1].tokens_per_s / rows[0].tokens_per_s) < 1e-6);

    /* a worker's row equals the same point replayed in this process */
    SweepPoint p;
    sweep_grid_point(&p, &g, 3);
    RunRow mine;
    RunSeries ser;
    cr_assert_eq(sweep_run_point(&mine, &ser, &p, &g, &o), OS_OK, "%s", os_last_error());
    cr_assert_eq(ser.n, 3);
    cr_assert(fabs(mine.step_mean_s - rows[3].step_mean_s) <= 1e-8 * mine.step_mean_s);
    cr_assert(fabs(mine.tokens_per_s - rows[3].tokens_per_s) <= 1e-8 * mine.tokens_per_s);
    double mean = 0;
    for (uint64_t k = 0; k < ser.n; k++) mean += ser.step_s[k] / (double)ser.n;
    cr_assert(fabs(mean - mine.step_mean_s) <= 1e-9 * mean, "series mean %g vs row %g", mean, mine.step_mean_s);

    /* one worker gives the same bytes as two */
    o.jobs = 1;
    o.csv_path = csv1;
    o.h5_path = NULL;
    cr_assert_eq(sweep_run(&rep, &g, &o), OS_OK, "%s", os_last_error());
    sweep_report_free(&rep);
    char *a = slurp(csv), *b = slurp(csv1);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);

    /* the HDF5 copy: version, /runs of 4, per-run series of 3 steps equal to the in-process run */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t at = H5Aopen(f, "orchsim_sweep_version", H5P_DEFAULT);
    unsigned ver = 0;
    H5Aread(at, H5T_NATIVE_UINT, &ver);
    H5Aclose(at);
    cr_assert_eq(ver, 1);
    hid_t ds = H5Dopen2(f, "/runs", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    hsize_t dim = 0;
    H5Sget_simple_extent_dims(sp, &dim, NULL);
    cr_assert_eq(dim, 4);
    H5Sclose(sp);
    H5Dclose(ds);
    ds = H5Dopen2(f, "/series/run_00003/step_s", H5P_DEFAULT);
    cr_assert_geq(ds, 0);
    double steps[3];
    cr_assert_geq(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps), 0);
    H5Dclose(ds);
    for (int k = 0; k < 3; k++) cr_assert(fabs(steps[k] - ser.step_s[k]) <= 1e-12 * ser.step_s[k]);
    cr_assert_geq(H5Lexists(f, "/series/run_00000/imbalance_image", H5P_DEFAULT), 1);
    cr_assert_eq(H5Lexists(f, "/series/run_00000/imbalance_audio", H5P_DEFAULT), 0);
    H5Fclose(f);
    run_series_free(&ser);
    free(rows);
}

Test(sweep, failing_point_keeps_the_other_rows) {
    const char *trace = th_tmp("swf.h5");
    write_trace(trace);
    char pol[] = "none", gpus[] = "8";
    SweepGrid g;
    grid_small(&g, pol, gpus);
    g.n_tp = 0;
    g.tp[g.n_tp++] = 1;
    g.tp[g.n_tp++] = 3; /* 3 does not divide 8 GPUs */
    SweepOptions o;
    sweep_options_init(&o);
    o.trace_path = trace;
    o.jobs = 2;
    char csv[1024];
    snprintf(csv, sizeof csv, "%s", th_tmp("swf.csv"));
    o.csv_path = csv;
    SweepReport rep;
    os_clear_error();
    cr_assert_neq(sweep_run(&rep, &g, &o), OS_OK);
    cr_assert(strstr(os_last_error(), "1 of 2"), "%s", os_last_error());
    os_clear_error();
    cr_assert_eq(rep.n_ok, 1);
    cr_assert_eq(rep.n_failed, 1);
    cr_assert(strstr(rep.failures[0].params, "tp=3") && strstr(rep.failures[0].params, "gpus=8"), "%s",
              rep.failures[0].params);
    cr_assert(rep.failures[0].error[0], "the failure carries the worker's error");
    cr_assert(rep.written);
    sweep_report_free(&rep);
    RunRow *rows = NULL;
    size_t n = 0;
    cr_assert_eq(runtable_read(&rows, &n, csv), OS_OK, "%s", os_last_error());
    cr_assert_eq(n, 1);
    cr_assert_eq(rows[0].tp, 1);
    free(rows);
    /* a missing trace is one clear error before any worker starts */
    o.trace_path = th_tmp("nope.h5");
    cr_assert_neq(sweep_run(&rep, &g, &o), OS_OK);
    cr_assert(strstr(os_last_error(), "nope.h5"), "%s", os_last_error());
    cr_assert_eq(rep.n_failed, 0);
    os_clear_error();
    sweep_report_free(&rep);
}

Test(sweep, cli) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    const char *trace = th_tmp("swc.h5");
    write_trace(trace);
    char args[4096], *out = NULL, csv[1024];
    snprintf(csv, sizeof csv, "%s", th_tmp("swc.csv"));
    snprintf(args, sizeof args, "sweep %s --policies none,post --models llava-7b --gpus 4 --setups fsdp -j 2 -q -o %s",
             trace, csv);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "orchsim %s -> %d: %s", args, rc, out);
    cr_assert(strstr(out, "wrote"), "%s", out);
    free(out);
    CsvTable *t = NULL;
    cr_assert_eq(csv_read(&t, csv), OS_OK);
    cr_assert_eq(schema_check(t, schema_find("run")), OS_OK);
    cr_assert_eq(csv_n_rows(t), 2);
    csv_destroy(t);
    snprintf(args, sizeof args, "sweep %s --policies nonne --models llava-7b --gpus 4 -q -o %s", trace, csv);
    rc = th_run(&out, args);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "policy=nonne") && strstr(out, "did you mean 'none'"), "%s", out);
    free(out);
}
