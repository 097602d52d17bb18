/* test_cli_replay.c — `orchsim replay` and `orchsim compare` as a user runs them: the table,
 * byte-identical output for the same input, a timeline that is valid Chrome-trace JSON, and
 * one clear error (non-zero exit, file/field named) for each bad input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static char g_trace[1024];

static void make_trace(void) {
    snprintf(g_trace, sizeof g_trace, "%s", th_tmp("cli.h5"));
    char args[2048], *out = NULL;
    snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 7 --steps 3 --global-batch 64 --dp 16 -o %s", g_trace);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "gen failed: %s", out);
    free(out);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

TestSuite(cli_replay, .init = make_trace, .timeout = 120);

Test(cli_replay, prints_the_summary_table) {
    char args[2048], *out;
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress", g_trace);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "step time"), "%s", out);
    cr_assert(strstr(out, "MFU"), "%s", out);
    cr_assert(strstr(out, "calibration: builtin"), "%s", out);
    free(out);
}

Test(cli_replay, same_input_gives_byte_identical_csv) {
    char args[2048], *out;
    const char *a = th_tmp("det_a.csv"), *b = th_tmp("det_b.csv");
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "replay %s --model tiny --policy post-node --balancer-cost 0.0001 --no-progress --csv %s",
                 g_trace, k ? b : a);
        cr_assert_eq(th_run(&out, args), 0, "%s", out);
        free(out);
    }
    char *x = slurp(a), *y = slurp(b);
    cr_assert_not_null(x);
    cr_assert_not_null(y);
    cr_assert_str_eq(x, y);
    cr_assert(strncmp(x, "policy,step,", 12) == 0, "%s", x);
    free(x);
    free(y);
}

Test(cli_replay, timeline_is_chrome_trace_json) {
    char args[2048], *out;
    const char *tl = th_tmp("tl.json");
    snprintf(args, sizeof args, "replay %s --model tiny --policy post --no-progress --timeline %s", g_trace, tl);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    cr_assert(th_exists(tl));
    if (system("python3 -c 'import json' >/dev/null 2>&1") != 0) cr_skip_test("python3 not found: cannot parse the JSON");
    /* the Chrome trace event format: an object with traceEvents; complete events carry name,
     * ph "X", numeric ts/dur >= 0, pid, tid; metadata events ph "M" */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import json,sys; d=json.load(open('%s')); ev=d['traceEvents']; "
             "x=[e for e in ev if e['ph']=='X']; assert x; "
             "assert all(isinstance(e['name'],str) and e['ts']>=0 and e['dur']>0 and isinstance(e['pid'],int) and isinstance(e['tid'],int) for e in x); "
             "assert all(e['ph'] in ('X','M') for e in ev); "
             "assert {e['cat'] for e in x} <= {'compute','comm','idle'}\"",
             tl);
    cr_assert_eq(system(cmd), 0, "timeline JSON does not follow the Chrome trace event format");
}

/* --timeline-ranks: 16 DP ranks, 4 kept: the CSV's head says so, and its ranks are the most
 * and the least loaded (compute time, recomputed here from the CSV of every rank) plus the
 * evenly spaced 0, 5, 10, 15; 0 keeps every rank, and every kept rank's spans are whole (the
 * sampled file holds the same spans for those ranks as the full one). */
static int csv_ranks(const char *path, int *has, double *busy) {
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "%s", path);
    char line[512];
    int n = 0;
    for (int r = 0; r < 16; r++) has[r] = 0, busy[r] = 0;
    while (fgets(line, sizeof line, fp)) {
        int rank;
        double s, e;
        char kind[16];
        if (sscanf(line, "%d,%*d,%*[^,],%*[^,],%15[^,],%lf,%lf", &rank, kind, &s, &e) != 4 || rank < 0 || rank >= 16)
            continue;
        if (!has[rank]) n++;
        has[rank] = 1;
        if (!strcmp(kind, "compute")) busy[rank] += e - s;
    }
    fclose(fp);
    return n;
}

Test(cli_replay, timeline_keeps_a_sample_of_the_ranks) {
    char args[2048], *out;
    const char *all = th_tmp("tl-all.json"), *some = th_tmp("tl-some.json");
    snprintf(args, sizeof args, "replay %s --model tiny --policy none --no-progress --timeline %s --timeline-ranks 0",
             g_trace, all);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "replay %s --model tiny --policy none --no-progress --timeline %s --timeline-ranks 4",
             g_trace, some);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    int has_all[16], has[16];
    double busy_all[16], busy[16];
    cr_assert_eq(csv_ranks(th_tmp("tl-all.csv"), has_all, busy_all), 16);
    int n = csv_ranks(th_tmp("tl-some.csv"), has, busy);
    int slow = 0, fast = 0;
    for (int r = 1; r < 16; r++) {
        if (busy_all[r] > busy_all[slow]) slow = r;
        if (busy_all[r] < busy_all[fast]) fast = r;
    }
    cr_assert(has[0] && has[5] && has[10] && has[15], "the evenly spaced ranks");
    cr_assert(has[slow] && has[fast], "slowest %d, fastest %d", slow, fast);
    cr_assert_leq(n, 6);
    for (int r = 0; r < 16; r++)
        if (has[r]) cr_assert_float_eq(busy[r], busy_all[r], 1e-9, "rank %d", r);
    FILE *fp = fopen(th_tmp("tl-some.csv"), "r");
    char head[4096] = "";
    size_t got = fread(head, 1, sizeof head - 1, fp);
    head[got] = '\0';
    fclose(fp);
    cr_assert(strstr(head, "# ranks: 16 per stage"), "%s", head);
    cr_assert(strstr(head, "# compute: mean"), "%s", head);
}

Test(cli_replay, compare_has_every_policy_and_the_oracle) {
    char args[2048], *out;
    const char *csv = th_tmp("cmp.csv");
    snprintf(args, sizeof args, "compare %s --model tiny --no-progress --csv %s", g_trace, csv);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    const char *names[] = {"none", "sorted", "lpt", "kk", "isf", "post", "post-enc", "post-node", "oracle"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char row[32];
        snprintf(row, sizeof row, "\n%s ", names[i]);
        cr_assert(strstr(out, row), "no row for %s in:\n%s", names[i], out);
    }
    free(out);
    char *c = slurp(csv);
    cr_assert_not_null(c);
    cr_assert(strncmp(c, "policy,model,gpus,", 18) == 0);
    free(c);
}

typedef struct {
    const char *args;   /* after "replay TRACE" */
    const char *expect; /* substring of the one error line */
} Bad;

Test(cli_replay, bad_input_gives_one_clear_error) {
    const char *bad_model = th_tmp("bad.model");
    FILE *f = fopen(bad_model, "w");
    cr_assert_not_null(f);
    fprintf(f, "name = broken\n[llm]\nlayers = 2\nhiden = 64\n");
    fclose(f);
    char badm[1200];
    snprintf(badm, sizeof badm, "--model %s", bad_model);
    const Bad cases[] = {
        {"--model no-such-model", "no-such-model"},
        {badm, "hiden"},
        {"--model tiny --gpus 12", "gpus"},
        {"--model tiny --gpus 16 --tp 3", "tp"},
        {"--model tiny --gpus 32", "--regroup"},
        {"--model tiny --inter-bw 0 --gpus 16", "bw"},
        {"--model tiny --policy lptt", "did you mean"},
        {"--model tiny --setup zero", "ddp"},
        {"--model tiny --steps x", "--steps"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[2048], *out;
        snprintf(args, sizeof args, "replay %s %s --no-progress", g_trace, cases[i].args);
        int rc = th_run(&out, args);
        cr_assert_neq(rc, 0, "case '%s' exited 0:\n%s", cases[i].args, out);
        cr_assert(strstr(out, "orchsim: error: "), "case '%s':\n%s", cases[i].args, out);
        cr_assert(strstr(out, cases[i].expect), "case '%s' does not mention '%s':\n%s", cases[i].args, cases[i].expect, out);
        cr_assert_null(strstr(out, "policy none:"), "case '%s' printed a table", cases[i].args);
        free(out);
    }
}

Test(cli_replay, missing_trace_names_the_file) {
    char *out;
    int rc = th_run(&out, "replay /nonexistent/x.h5 --model tiny");
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "/nonexistent/x.h5"), "%s", out);
    free(out);
}

/* --loads and --assignment: every unit placed exactly once per step, loads add up to it, and
 * the placements obey the policy kind (pre: computed at home; post: home = drawn). */
#include "analysis/csv.h"

static void check_outputs(const char *policy, int post) {
    char args[2048], *out;
    const char *lp = th_tmp("loads.csv"), *ap = th_tmp("assign.csv");
    snprintf(args, sizeof args, "replay %s --model tiny --policy %s --no-progress --loads %s --assignment %s", g_trace,
             policy, lp, ap);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    CsvTable *L = NULL, *A = NULL;
    cr_assert_eq(csv_read(&L, lp), OS_OK, "%s", os_last_error());
    cr_assert_eq(csv_read(&A, ap), OS_OK, "%s", os_last_error());
    /* 3 steps x 16 ranks x 3 phases (image, audio, llm) */
    cr_assert_eq(csv_n_rows(L), 3u * 16u * 3u);
    int lu = csv_col(L, "units"), lph = csv_col(L, "phase"), ls = csv_col(L, "step");
    int au = csv_col(A, "unit"), aph = csv_col(A, "phase"), as = csv_col(A, "step"), ad = csv_col(A, "drawn_rank"),
        ah = csv_col(A, "home_rank"), ar = csv_col(A, "rank");
    cr_assert(lu >= 0 && lph >= 0 && ls >= 0 && au >= 0 && aph >= 0 && as >= 0 && ad >= 0 && ah >= 0 && ar >= 0);
    for (int step = 0; step < 3; step++) {
        const char *phases[3] = {"image", "audio", "llm"};
        for (int p = 0; p < 3; p++) {
            double units = 0, placed = 0, v;
            for (size_t r = 0; r < csv_n_rows(L); r++) {
                cr_assert_eq(csv_num(&v, L, r, (size_t)ls), OS_OK);
                if ((int)v != step || strcmp(csv_str(L, r, (size_t)lph), phases[p])) continue;
                cr_assert_eq(csv_num(&v, L, r, (size_t)lu), OS_OK);
                units += v;
            }
            for (size_t r = 0; r < csv_n_rows(A); r++) {
                cr_assert_eq(csv_num(&v, A, r, (size_t)as), OS_OK);
                if ((int)v == step && !strcmp(csv_str(A, r, (size_t)aph), phases[p])) placed += 1;
            }
            cr_assert_eq(units, placed, "%s step %d %s: loads count %g units, assignment %g", policy, step, phases[p],
                         units, placed);
        }
    }
    size_t examples = 0;
    for (size_t r = 0; r < csv_n_rows(A); r++) {
        double d, h, k;
        cr_assert_eq(csv_num(&d, A, r, (size_t)ad), OS_OK);
        cr_assert_eq(csv_num(&h, A, r, (size_t)ah), OS_OK);
        cr_assert_eq(csv_num(&k, A, r, (size_t)ar), OS_OK);
        cr_assert(k >= 0 && k < 16 && h >= 0 && h < 16);
        if (post) cr_assert_eq(h, d, "%s moved an example's home", policy);
        else cr_assert_eq(k, h, "%s computes a unit away from its loader", policy);
        examples += !strcmp(csv_str(A, r, (size_t)au), "example");
    }
    cr_assert_eq(examples, 3u * 64u, "every example appears once per step");
    csv_destroy(L);
    csv_destroy(A);
}

Test(cli_replay, loads_and_assignment_account_for_every_unit) {
    check_outputs("lpt", 0);
    check_outputs("post-node", 1);
}

/* The shared vocabulary from replay's side (cli/opts.h): the short letters every simulator
 * command spells the same way give the same replay as the long names; replay takes one policy
 * (no plural alias); an option it lacks is one error naming it. */
Test(cli_replay, short_letters_are_the_long_names) {
    char args[2048], *out;
    const char *a = th_tmp("voc_a.csv"), *b = th_tmp("voc_b.csv");
    snprintf(args, sizeof args, "replay %s --model tiny --gpus 16 --steps 2 --seed 3 --policy isf --calibration %s/bench/fidelity/calib/h100-fa2.calib --balancer-cost 0 --no-progress --csv %s",
             g_trace, ORCHSIM_SRC, a);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "replay %s -m tiny -g 16 -n 2 -s 3 -p isf -c %s/bench/fidelity/calib/h100-fa2.calib --balancer-cost 0 --no-progress --csv %s",
             g_trace, ORCHSIM_SRC, b);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    char *x = slurp(a), *y = slurp(b);
    cr_assert(x && y);
    cr_assert_str_eq(x, y, "-m -g -n -s -p -c differ from their long names");
    free(x);
    free(y);
    snprintf(args, sizeof args, "replay %s --model tiny --policies post,none", g_trace);
    cr_assert_eq(th_run(&out, args), 2, "%s", out);
    cr_assert(strstr(out, "--policies") && strstr(out, "unknown option"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "replay %s --model tiny -k 2", g_trace);
    cr_assert_eq(th_run(&out, args), 2, "%s", out);
    cr_assert(strstr(out, "-k") && strstr(out, "orchsim replay --help"), "%s", out);
    free(out);
}

/* A calibration table's free-text name (quotes, a comma, a backslash) is escaped in the replay
 * JSON summary: the file stays valid JSON. */
Test(cli_replay, json_escapes_the_calibration_name) {
    char src[1024], cal[1024], args[4096], *out = NULL;
    snprintf(src, sizeof src, "%s/bench/fidelity/calib/h100-fa2.calib", ORCHSIM_SRC);
    snprintf(cal, sizeof cal, "%s", th_tmp("odd.calib"));
    char *text = slurp(src);
    cr_assert_not_null(text, "%s", src);
    FILE *f = fopen(cal, "w");
    cr_assert_not_null(f);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(f, "%s\n", strncmp(line, "name =", 6) ? line : "name = my \"odd\", table\\x");
    fclose(f);
    free(text);
    const char *json = th_tmp("odd.json");
    snprintf(args, sizeof args, "replay %s --model tiny --steps 1 --no-progress -c %s --json %s", g_trace, cal, json);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    char *j = slurp(json);
    cr_assert_not_null(j);
    cr_assert(strstr(j, "\"calibration\":\"my \\\"odd\\\", table\\\\x\"}}"), "%s", strstr(j, "\"calibration\"") ? strstr(j, "\"calibration\"") : j);
    free(j);
}
