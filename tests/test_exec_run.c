/* test_exec_run.c — validate's run loop without a GPU: the parent's handling of worker reports
 * with fake bodies (ordered by rank in both shapes, one process per rank and --emulate's one
 * process for all; reports out of turn, a failing, a hanging worker, a failing on_step), the
 * step row from hand-made reports (measured: max over ranks; emulated: composed, never in a
 * measured column), the CSV against the validate schema, the labelled table header, the
 * modelled collectives of a real step plan against net.h's slow twin, the device probe, and
 * `orchsim validate --emulate` without a device (one line, no CSV). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/csv.h"
#include "analysis/schema.h"
#include "exec/emucomm.h"
#include "exec/run.h"
#include "exec/stepsrc.h"
#include "exec/valreport.h"
#include "helpers.h"
#include "base/util.h"
#include "traces/trace.h"

/* ---- the parent with fake bodies --------------------------------------------------------- */

typedef enum { FK_OK, FK_WRONG_STEP, FK_FAIL, FK_HANG } FakeBad;

typedef struct {
    ExecRunConfig c; /* first: exec_run hands &c to the body */
    FakeBad bad;
    uint32_t victim;
} FakeRun;

/* v[EXEC_V_FWD] = 10 * rank + step, v[EXEC_V_STEP] = rank + step / 10 */
static OsStatus fake_body(ExecWorker *w, void *user) {
    OsStatus st = OS_OK;
    const FakeRun *f = user;
    const uint32_t me = exec_worker_index(w), nl = f->c.emulate ? f->c.D : 1;
    ExecReport r;
    memset(&r, 0, sizeof r);
    r.rank = me, r.step = EXEC_RUN_READY;
    if (f->bad == FK_FAIL && me == f->victim)
        OS_FAIL(OS_ERR_CUDA, "cuda", "cudaMalloc", NULL, "out of memory on purpose (rank %u)", me);
    OS_CHECK(exec_worker_report(w, &r));
    for (uint64_t k = 0; k < f->c.steps; k++) {
        if (f->bad == FK_HANG && me == f->victim && k == 1) for (;;) pause();
        for (uint32_t i = 0; i < nl; i++) {
            uint32_t rank = f->c.emulate ? nl - 1 - i : me; /* emulate: sent in reverse order */
            memset(&r, 0, sizeof r);
            r.rank = rank, r.step = k, r.n = EXEC_V_COUNT;
            if (f->bad == FK_WRONG_STEP && rank == f->victim && k == 1) r.step = 7;
            r.v[EXEC_V_FWD] = 10.0 * rank + (double)k;
            r.v[EXEC_V_STEP] = rank + (double)k / 10;
            OS_CHECK(exec_worker_report(w, &r));
        }
    }
fail:
    return st;
}

typedef struct {
    uint64_t calls;
    int fail_at; /* step at which on_step fails, -1 never */
    int bad_order;
} Seen;

static OsStatus record(uint64_t k, const ExecReport *rep, uint32_t D, void *user) {
    Seen *s = user;
    if (s->fail_at >= 0 && (uint64_t)s->fail_at == k)
        return os_fail(OS_ERR_IO, "test.csv", NULL, NULL, "disk full on purpose at step %llu", (unsigned long long)k);
    if (k != s->calls) s->bad_order = 1;
    for (uint32_t r = 0; r < D; r++)
        if (rep[r].rank != r || rep[r].step != k || rep[r].v[EXEC_V_FWD] != 10.0 * r + (double)k) s->bad_order = 1;
    s->calls++;
    return OS_OK;
}

static FakeRun fake(uint32_t D, int emulate, uint64_t steps, FakeBad bad, uint32_t victim) {
    FakeRun f;
    memset(&f, 0, sizeof f);
    f.c.D = D, f.c.emulate = emulate, f.c.steps = steps, f.c.timeout_s = 10, f.c.warmup = 1;
    f.bad = bad, f.victim = victim;
    return f;
}

Test(exec_run, one_process_per_rank_reports_reach_on_step_by_rank) {
    FakeRun f = fake(4, 0, 3, FK_OK, 0);
    Seen s = {0, -1, 0};
    cr_assert_eq(exec_run(&f.c, fake_body, record, &s), OS_OK, "%s", os_last_error());
    cr_assert_eq(s.calls, 3);
    cr_assert_eq(s.bad_order, 0);
}

Test(exec_run, emulate_one_process_sends_every_rank_and_they_are_ordered) {
    FakeRun f = fake(5, 1, 2, FK_OK, 0);
    Seen s = {0, -1, 0};
    cr_assert_eq(exec_run(&f.c, fake_body, record, &s), OS_OK, "%s", os_last_error());
    cr_assert_eq(s.calls, 2);
    cr_assert_eq(s.bad_order, 0);
}

Test(exec_run, a_report_out_of_turn_is_an_internal_error) {
    FakeRun f = fake(3, 1, 3, FK_WRONG_STEP, 2);
    Seen s = {0, -1, 0};
    os_clear_error();
    cr_assert_eq(exec_run(&f.c, fake_body, record, &s), OS_ERR_INTERNAL);
    cr_assert_eq(s.calls, 1, "step 0 is handed on, step 1 is not");
    cr_assert(strstr(os_last_error(), "rank 2"), "%s", os_last_error());
    os_clear_error();
}

Test(exec_run, a_failing_worker_is_named_with_its_own_error) {
    FakeRun f = fake(3, 0, 2, FK_FAIL, 1);
    Seen s = {0, -1, 0};
    os_clear_error();
    cr_assert_eq(exec_run(&f.c, fake_body, record, &s), OS_ERR_CUDA);
    cr_assert_eq(s.calls, 0);
    cr_assert(strstr(os_last_error(), "rank 1"), "%s", os_last_error());
    cr_assert(strstr(os_last_error(), "out of memory on purpose"), "%s", os_last_error());
    os_clear_error();
}

Test(exec_run, a_hanging_worker_times_out_within_the_limit) {
    FakeRun f = fake(3, 0, 3, FK_HANG, 2);
    Seen s = {0, -1, 0};
    f.c.timeout_s = 0.5;
    double t0 = os_now();
    os_clear_error();
    cr_assert_eq(exec_run(&f.c, fake_body, record, &s), OS_ERR_TIMEOUT);
    cr_assert(os_now() - t0 < 5.0, "took %g s", os_now() - t0);
    cr_assert_eq(s.calls, 1);
    cr_assert(strstr(os_last_error(), "2"), "%s", os_last_error());
    os_clear_error();
}

Test(exec_run, a_failing_on_step_stops_the_run) {
    FakeRun f = fake(2, 0, 4, FK_OK, 0);
    Seen s = {0, 1, 0};
    os_clear_error();
    cr_assert_eq(exec_run(&f.c, fake_body, record, &s), OS_ERR_IO);
    cr_assert_eq(s.calls, 1);
    os_clear_error();
}

/* ---- rows, table and CSV from hand-made reports ------------------------------------------ */

/* D = 2, P = 2 (image, llm); rank-major [r*P + p]: the case of test_exec_validate.c */
static const double FWD[4] = {1, 2, 3, 1}, BWD[4] = {2, 4, 1, 2};

static void hand_reports(ExecReport rep[2], uint64_t step) {
    memset(rep, 0, 2 * sizeof *rep);
    for (uint32_t r = 0; r < 2; r++) {
        rep[r].rank = r, rep[r].step = step, rep[r].n = EXEC_V_COUNT;
        for (uint32_t p = 0; p < 2; p++) {
            rep[r].v[EXEC_V_FWD + p] = FWD[r * 2 + p];
            rep[r].v[EXEC_V_BWD + p] = BWD[r * 2 + p];
            rep[r].v[EXEC_V_A2A + p] = 0.125;
        }
        rep[r].v[EXEC_V_SYNC] = 1.0;
    }
    rep[0].v[EXEC_V_STEP] = 10.0, rep[1].v[EXEC_V_STEP] = 12.5;
}

static ExecValTable table(int emulate) {
    ExecValTable t;
    memset(&t, 0, sizeof t);
    t.D = 2, t.P = 2, t.emulate = emulate, t.policy = "post", t.peak_flops = 1e15;
    snprintf(t.phase[0], sizeof t.phase[0], "image");
    snprintf(t.phase[1], sizeof t.phase[1], "llm");
    return t;
}

static ExecEmuComm hand_comm(void) {
    ExecEmuComm c;
    memset(&c, 0, sizeof c);
    c.P = 2;
    c.moves[0] = c.moves[1] = 1;
    c.bwd_moves[0] = 1;
    c.comm_s[0] = 0.5, c.comm_s[1] = 0.25, c.comm_s[2] = 0.125, c.comm_s[3] = 1;
    return c;
}

Test(exec_run, measured_row_is_the_slowest_rank) {
    ExecValTable t = table(0);
    ExecReport rep[2];
    ExecValStep s;
    double scratch[8];
    hand_reports(rep, 3);
    cr_assert_eq(exec_val_step(&s, &t, 3, rep, 10.0, 5e15, NULL, scratch), OS_OK, "%s", os_last_error());
    cr_assert_float_eq(s.row.measured_s, 12.5, 1e-12);
    cr_assert(isnan(s.row.emulated_s));
    cr_assert_float_eq(s.row.error_frac, (10.0 - 12.5) / 12.5, 1e-12);
    cr_assert_float_eq(s.row.mfu, 5e15 / (12.5 * 2 * 1e15), 1e-12);
    cr_assert_float_eq(s.compute_s, 9.0, 1e-12); /* rank 0: 1 + 2 + 2 + 4 */
    /* out of turn: slot 1 holds another step */
    rep[1].step = 4;
    os_clear_error();
    cr_assert_eq(exec_val_step(&s, &t, 3, rep, 10.0, 5e15, NULL, scratch), OS_ERR_INTERNAL);
    os_clear_error();
}

Test(exec_run, emulated_row_is_composed_and_leaves_measured_empty) {
    ExecValTable t = table(1);
    ExecEmuComm c = hand_comm();
    ExecReport rep[2];
    ExecValStep s;
    double scratch[8];
    hand_reports(rep, 0);
    cr_assert_eq(exec_val_step(&s, &t, 0, rep, 16.09375, 5e15, &c, scratch), OS_OK, "%s", os_last_error());
    /* by hand in test_exec_validate.c: 12.875 = 9 compute on the critical path + 1.875 modelled */
    cr_assert_float_eq(s.row.emulated_s, 12.875, 1e-12);
    cr_assert(isnan(s.row.measured_s), "a modelled number in the measured column");
    cr_assert_float_eq(s.comm_s, 1.875, 1e-12);
    cr_assert_float_eq(s.row.error_frac, 0.25, 1e-12);
    /* the CSV: schema columns measured_s, error_frac, mfu_measured empty */
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    exec_val_csv_header(fp, &t);
    exec_val_csv_row(fp, &t, &s);
    fclose(fp);
    char want[512];
    snprintf(want, sizeof want,
             "step,policy,measured_s,predicted_s,error_frac,mfu_measured,emulated_s,compute_measured_s,"
             "comm_modelled_s,error_frac_emulated,mfu_emulated\n0,post,,16.09375,,,12.875,9,1.875,0.25,%.9g\n",
             5e15 / (12.875 * 2 * 1e15));
    cr_assert_str_eq(buf, want);
    free(buf);
}

Test(exec_run, csv_header_is_the_validate_schema_and_a_file_reads_back) {
    const CsvSchema *sc = schema_find("validate");
    cr_assert_not_null(sc);
    cr_assert_eq(sc->n_cols, EXEC_VAL_CSV_BASE);
    for (size_t i = 0; i < sc->n_cols; i++) cr_assert_str_eq(EXEC_VAL_CSV_COLS[i], sc->cols[i].name);
    /* a measured run's file, written as validate writes it, passes schema_check */
    ExecValTable t = table(0);
    ExecReport rep[2];
    ExecValStep s;
    double scratch[8];
    OsOutFile out;
    const char *path = th_tmp("run_measured.csv");
    cr_assert_eq(os_outfile_open(&out, path, 1), OS_OK, "%s", os_last_error());
    exec_val_csv_header(out.fp, &t);
    for (uint64_t k = 0; k < 2; k++) {
        hand_reports(rep, k);
        cr_assert_eq(exec_val_step(&s, &t, k, rep, 10.0, 5e15, NULL, scratch), OS_OK);
        exec_val_csv_row(out.fp, &t, &s);
    }
    cr_assert_eq(os_outfile_commit(&out), OS_OK, "%s", os_last_error());
    CsvTable *tab = NULL;
    cr_assert_eq(csv_read(&tab, path), OS_OK, "%s", os_last_error());
    cr_assert_eq(schema_check(tab, sc), OS_OK, "%s", os_last_error());
    cr_assert_eq(csv_n_rows(tab), 2);
    csv_destroy(tab);
}

static char *capture_header(int emulate) {
    ExecValTable t = table(emulate);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    exec_val_print_header(fp, &t);
    fclose(fp);
    return buf;
}

/* The line after the column names holds one label per column. */
static void labels_of(const char *hdr, const char *first_col, char *names, char *labels, size_t n) {
    const char *a = strstr(hdr, first_col);
    cr_assert_not_null(a, "%s", hdr);
    while (a > hdr && a[-1] != '\n') a--;
    const char *b = strchr(a, '\n');
    snprintf(names, n, "%.*s", (int)(b - a), a);
    const char *c = strchr(b + 1, '\n');
    snprintf(labels, n, "%.*s", (int)(c - b - 1), b + 1);
}

Test(exec_run, emulate_columns_are_labelled_and_none_is_measured_time) {
    char *h = capture_header(1), names[512], labels[512];
    labels_of(h, "emulated_s", names, labels, sizeof names);
    cr_assert(!strstr(names, "measured_s"), "emulated table has a measured_s column: %s", names);
    /* every column after step has a label; the step time is meas+model, comm modelled */
    char *tok[16];
    int n = 0;
    for (char *p = strtok(labels, " "); p && n < 16; p = strtok(NULL, " ")) tok[n++] = p;
    cr_assert_eq(n, 7, "%s", h);
    cr_assert_str_eq(tok[1], "meas+model");
    cr_assert_str_eq(tok[2], "measured");
    cr_assert_str_eq(tok[3], "modelled");
    cr_assert_str_eq(tok[4], "modelled");
    cr_assert(strstr(h, "collectives (modelled"), "%s", h);
    cr_assert(!strstr(h, "_a2a sync step"), "per-rank lines list local copies: %s", h);
    free(h);
    h = capture_header(0);
    labels_of(h, "measured_s", names, labels, sizeof names);
    cr_assert(strstr(labels, "measured") && strstr(labels, "modelled"), "%s", labels);
    free(h);
}

Test(exec_run, emulated_step_prints_no_local_copy_times) {
    ExecValTable t = table(1);
    ExecEmuComm c = hand_comm();
    ExecReport rep[2];
    ExecValStep s;
    double scratch[8];
    hand_reports(rep, 0);
    cr_assert_eq(exec_val_step(&s, &t, 0, rep, 13.0, 5e15, &c, scratch), OS_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    exec_val_print_step(fp, &t, &s, rep, &c);
    fclose(fp);
    /* rank lines: fwd/bwd per phase only (the 0.125 local copies never appear) */
    cr_assert(strstr(buf, "    rank 0    1 2 2 4\n"), "%s", buf);
    cr_assert(!strstr(buf, "0.125 0.125"), "%s", buf);
    cr_assert(strstr(buf, "modelled    0.5 0.25 0.125 1\n"), "%s", buf);
    free(buf);
}

Test(exec_run, mape_line_says_which_comparison) {
    ExecValTable t = table(1);
    ExecValRow rows[2] = {{.error_frac = 0.1}, {.error_frac = -0.3}};
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    exec_val_print_summary(fp, &t, rows, 2);
    fclose(fp);
    cr_assert(strstr(buf, "MAPE (predicted vs emulated) over 2 steps: 20.00%"), "%s", buf);
    free(buf);
}

/* ---- modelled collectives of a real plan --------------------------------------------------- */

static const TraceModality MODS[2] = {{"text", "token", 1}, {"image", "patch", 4}};

static const char *write_trace(const char *name, const uint32_t *text, const uint32_t *img, uint32_t n) {
    const char *path = th_tmp(name);
    TraceWriter *w = NULL;
    TraceProvenance prov = {"test", "test_exec_run"};
    cr_assert_eq(trace_writer_create(&w, path, MODS, 2, &prov, 0), OS_OK, "%s", os_last_error());
    TraceStep s;
    trace_step_init(&s);
    s.dp = 2;
    for (uint32_t i = 0; i < n; i++) {
        TraceItem it = {img[i], 1};
        cr_assert_eq(trace_step_push(&s, text[i], 100 + i, &it, img[i] ? 1 : 0), OS_OK);
    }
    cr_assert_eq(trace_writer_add_step(w, &s), OS_OK, "%s", os_last_error());
    trace_step_free(&s);
    cr_assert_eq(trace_writer_close(w), OS_OK, "%s", os_last_error());
    return path;
}

static ModelSpec tiny(void) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "tiny");
    m.llm = (StackSpec){.layers = 1, .hidden = 8, .ffn = 16, .heads = 2, .kv_heads = 1, .vocab = 32,
                        .gated_mlp = 1, .causal = 1};
    m.max_seq = 256;
    m.n_enc = 1;
    snprintf(m.enc[0].modality, sizeof m.enc[0].modality, "image");
    m.enc[0].stack = (StackSpec){.layers = 1, .hidden = 4, .ffn = 16, .heads = 2, .kv_heads = 2};
    m.enc[0].ratio = 4, m.enc[0].max_len = 200, m.enc[0].in_bytes_per_unit = 8;
    m.param_bytes = m.act_bytes = 2;
    return m;
}

Test(exec_run, grad_bytes_by_hand) {
    ModelSpec m = {0};
    m.llm = (StackSpec){.layers = 1, .hidden = 4, .ffn = 8, .heads = 2, .kv_heads = 1, .vocab = 10,
                        .gated_mlp = 0, .causal = 1};
    /* 204 parameters (test_exec_validate.c), aligned to 256, padded to 3 ranks: 258 fp32 */
    cr_assert_float_eq(exec_emu_grad_bytes(&m, 3), 258.0 * 4, 0);
    cr_assert_float_eq(exec_emu_grad_bytes(&m, 1), 256.0 * 4, 0);
}

/* Every crossing of route st[0] as NetMoves (test's own copy of the rule). */
static size_t crossings(NetMove *mv, const ExecRoute *r, size_t rb, int reverse) {
    size_t n = 0;
    const ExecMove *m = &r->st[0];
    for (uint32_t a = 0; a < m->D; a++)
        for (uint32_t b = 0; b < m->D; b++)
            if (a != b && m->vol[a * m->D + b])
                mv[n++] = (NetMove){reverse ? b : a, reverse ? a : b, m->vol[a * m->D + b] * rb};
    return n;
}

static void check_plan_comm(const char *policy, int expect_llm_moves) {
    ModelSpec m = tiny();
    Calib cal;
    calib_default_h100(&cal);
    /* rank 0 drew all the images and long texts: post moves work to rank 1 */
    const uint32_t text[4] = {120, 100, 4, 4}, img[4] = {160, 120, 0, 0};
    const char *path = write_trace(policy, text, img, 4);
    PolicyOptions popt = {.objective = OBJ_COST, .seed = 1};
    const Policy *pol = policy_find(policy);
    cr_assert_not_null(pol);
    Cluster cl;
    cr_assert_eq(cluster_init(&cl, 2, 2, 1), OS_OK);
    ExecStepSource *src = NULL;
    NetScratch *ns = NULL;
    ExecStep s;
    ExecEmuComm c;
    cr_assert_eq(exec_src_create(&src, path, &m, pol, &popt, &cal, 2, 2), OS_OK, "%s", os_last_error());
    cr_assert_eq(net_scratch_create(&ns, &cl), OS_OK);
    cr_assert_eq(exec_src_step(src, 0, &s), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_emu_comm(&c, s.xp, &m, &cl, ns), OS_OK, "%s", os_last_error());
    cr_assert_eq(c.P, 2);
    /* the sync: one ring all-reduce of the fp32 gradients */
    cr_assert_float_eq(c.comm_s[3], net_allreduce_ring(&cl, exec_emu_grad_bytes(&m, 2)), 1e-15);
    cr_assert(c.comm_s[3] > 0);
    cr_assert_eq(c.moves[1] != 0, expect_llm_moves, "%s: llm barrier moves %d", policy, c.moves[1]);
    /* each barrier against net.h's dense twin on the test's own byte lists */
    NetMove mv[64];
    size_t n = crossings(mv, &s.xp->in[0], 4 * 2, 0);
    double want = n ? net_alltoallv_ref(&cl, mv, n, NULL) : 0;
    cr_assert_float_eq(c.comm_s[0], want, 1e-15, "%s: image inputs", policy);
    cr_assert_eq(c.moves[0], n > 0);
    n = crossings(mv, &s.xp->emb[0], 8 * 2, 0);
    double llm = n ? net_alltoallv_ref(&cl, mv, n, NULL) : 0;
    n = crossings(mv, &s.xp->text, 4, 0);
    llm += n ? net_alltoallv_ref(&cl, mv, n, NULL) : 0;
    cr_assert_float_eq(c.comm_s[1], llm, 1e-15, "%s: llm barrier", policy);
    n = crossings(mv, &s.xp->emb[0], 8 * 2, 1);
    cr_assert_float_eq(c.comm_s[2], n ? net_alltoallv_ref(&cl, mv, n, NULL) : 0, 1e-15, "%s: backward", policy);
    cr_assert_eq(c.bwd_moves[0], n > 0);
    net_scratch_destroy(ns);
    exec_src_destroy(src);
}

Test(exec_run, modelled_collectives_of_none_move_nothing) { check_plan_comm("none", 0); }
Test(exec_run, modelled_collectives_of_post_match_the_dense_twin) { check_plan_comm("post", 1); }

/* ---- the device probe and the CLI without a device ------------------------------------------ */

Test(exec_run, probe_in_a_child_agrees_with_asking_here) {
    ExecRunProbe a, b;
    cr_assert_eq(exec_run_probe(&a, 0, 30), OS_OK, "%s", os_last_error());
    cr_assert_eq(exec_run_probe(&b, 1, 30), OS_OK, "%s", os_last_error());
    cr_assert_eq(a.n_dev, b.n_dev);
    if (a.n_dev == 0) cr_assert(a.why[0] && !strcmp(a.why, b.why), "'%s' vs '%s'", a.why, b.why);
    else cr_assert_str_eq(a.info.name, b.info.name);
}

Test(exec_run, validate_emulate_without_device_is_one_line_and_no_csv, .timeout = 120) {
    ExecRunProbe pr;
    cr_assert_eq(exec_run_probe(&pr, 0, 30), OS_OK);
    if (pr.n_dev > 0) cr_skip_test("a CUDA device is present: the no-device path is not reachable");
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built: %s", ORCHSIM_BIN);
    char args[2048], *out = NULL;
    const char *trace = th_tmp("emu.h5"), *csv = th_tmp("emu.csv");
    snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 7 --steps 2 --global-batch 16 --dp 8 -o %s", trace);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "validate %s --gpus 8 --emulate --policy post --steps 2 --csv %s", trace, csv);
    int rc = th_run(&out, args);
    cr_assert(rc > 0, "exit %d: %s", rc, out);
    size_t lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    cr_assert_eq(lines, 1, "%s", out);
    cr_assert(strstr(out, "orchsim: error: validate") == out, "%s", out);
    /* no device, or (a build without CUDA) no GPU module: each its own one line */
    cr_assert(strstr(out, "no CUDA device") || strstr(out, "GPU module"), "%s", out);
    cr_assert(!th_exists(csv), "the CSV was created");
    free(out);
}

/* ---- on a GPU (skipped here visibly) ------------------------------------------------------ */

static OsStatus record_gpu(uint64_t k, const ExecReport *rep, uint32_t D, void *user) {
    Seen *s = user;
    if (k != s->calls) s->bad_order = 1;
    for (uint32_t r = 0; r < D; r++)
        if (rep[r].rank != r || rep[r].n != EXEC_V_COUNT || !(rep[r].v[EXEC_V_FWD + 1] > 0) ||
            !(rep[r].v[EXEC_V_BWD + 1] > 0) || !isfinite(rep[r].v[EXEC_V_LOSS]))
            s->bad_order = 1;
    s->calls++;
    return OS_OK;
}

Test(exec_run, gpu_emulated_run_of_two_ranks, .timeout = 300) {
    ExecRunProbe pr;
    cr_assert_eq(exec_run_probe(&pr, 0, 30), OS_OK);
    if (pr.n_dev <= 0) cr_skip_test("no CUDA device: %s", pr.why);
    ModelSpec m = tiny();
    Calib cal;
    calib_default_h100(&cal);
    const uint32_t text[4] = {120, 100, 4, 4}, img[4] = {160, 120, 0, 0};
    const char *path = write_trace("gpu_emu", text, img, 4);
    FakeRun f = fake(2, 1, 1, FK_OK, 0);
    f.c.trace = path, f.c.model = &m, f.c.policy = policy_find("post"), f.c.calib = &cal;
    f.c.popt = (PolicyOptions){.objective = OBJ_COST, .seed = 1};
    f.c.dp_per_node = 2, f.c.n_dev = pr.n_dev, f.c.seed = 1, f.c.timeout_s = 120;
    Seen s = {0, -1, 0};
    /* the real body: reports by rank, positive compute for both ranks */
    cr_assert_eq(exec_run(&f.c, exec_run_body, record_gpu, &s), OS_OK, "%s", os_last_error());
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.bad_order, 0);
}
