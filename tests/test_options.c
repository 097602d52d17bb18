/* test_options.c — one option vocabulary (DESIGN.md §8, cli/opts.h): walks every command's
 * --help (the command list from `orchsim --help`) and checks that the shared options agree —
 * one meaning per short letter, one letter per long name, the simulator commands' shared rows
 * identical in letter and default, --steps / --policies / --setup / --model / --gpus defaults,
 * one progress switch, the plural aliases; then that '-' is standard output for every --csv,
 * --json and -o (the machine output alone on stdout, the human text on stderr, never a file
 * named '-'). Exceptions are listed with their reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

typedef struct {
    char sname;
    char lname[48], meta[96], def[128], help[1024];
    int has_def;
} HelpOpt;

typedef struct {
    char name[24];
    HelpOpt opt[128];
    int n;
} HelpCmd;

static char *run_cmd(int *rc, const char *cmd) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(p);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* "  -x, --name META  help (default: D)" or "      --name  help"; 0 for any other line. */
static int parse_line(HelpOpt *o, const char *line) {
    memset(o, 0, sizeof *o);
    if (strncmp(line, "  ", 2)) return 0;
    const char *p = line + 2;
    if (p[0] == '-' && p[1] && p[1] != '-' && p[1] != ' ' && p[2] == ',' && p[3] == ' ') {
        o->sname = p[1];
        p += 4;
    } else if (!strncmp(p, "    --", 6)) {
        p += 4;
    } else {
        return 0;
    }
    if (strncmp(p, "--", 2)) return 0;
    p += 2;
    const char *end = strstr(p, "  ");
    if (!end) end = p + strlen(p);
    char left[256];
    snprintf(left, sizeof left, "%.*s", (int)(end - p), p);
    char *sp = strchr(left, ' ');
    if (sp) {
        *sp = '\0';
        snprintf(o->meta, sizeof o->meta, "%s", sp + 1);
    }
    snprintf(o->lname, sizeof o->lname, "%.47s", left);
    while (*end == ' ') end++;
    snprintf(o->help, sizeof o->help, "%s", end);
    const char *d = strstr(o->help, "(default: ");
    if (d) {
        d += 10;
        size_t k = strcspn(d, ";)");
        snprintf(o->def, sizeof o->def, "%.*s", (int)k, d);
        o->has_def = 1;
    }
    return 1;
}

static int load(HelpCmd *cmds, int max) {
    int rc, n = 0;
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "%s --help", ORCHSIM_BIN);
    char *top = run_cmd(&rc, cmd);
    cr_assert_eq(rc, 0, "%s", top);
    const char *c = strstr(top, "commands:\n");
    cr_assert_not_null(c, "%s", top);
    c += 10;
    while (*c == ' ' && n < max) {
        char name[24];
        cr_assert_eq(sscanf(c, " %23s", name), 1);
        snprintf(cmds[n].name, sizeof cmds[n].name, "%s", name);
        cmds[n].n = 0;
        n++;
        c = strchr(c, '\n');
        if (!c) break;
        c++;
    }
    free(top);
    cr_assert_geq(n, 14, "the command list: %d", n);
    for (int i = 0; i < n; i++) {
        snprintf(cmd, sizeof cmd, "%s %s --help", ORCHSIM_BIN, cmds[i].name);
        char *h = run_cmd(&rc, cmd);
        cr_assert_eq(rc, 0, "%s --help: %s", cmds[i].name, h);
        for (char *line = strtok(h, "\n"); line; line = strtok(NULL, "\n")) {
            HelpOpt o;
            if (parse_line(&o, line) && cmds[i].n < 128) cmds[i].opt[cmds[i].n++] = o;
        }
        free(h);
        cr_assert_geq(cmds[i].n, 1, "%s --help lists no options", cmds[i].name);
    }
    return n;
}

static const HelpOpt *find(const HelpCmd *c, const char *lname) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->opt[i].lname, lname)) return &c->opt[i];
    return NULL;
}

static const HelpCmd *cmd_named(const HelpCmd *cmds, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(cmds[i].name, name)) return &cmds[i];
    cr_assert_fail("no command %s", name);
    return NULL;
}

/* Options that share a name with another command's but are something else, and why. */
static int exempt(const char *cmd, const char *lname) {
    static const char *const EX[][2] = {
        /* `plot all`'s inputs are named after the figure kinds they feed (--sweep, --steps,
         * --timeline, --trace, --validate): lists of files, not replay's step count/timeline */
        {"plot", "steps"},
        {"plot", "timeline"},
    };
    for (size_t i = 0; i < sizeof EX / sizeof EX[0]; i++)
        if (!strcmp(EX[i][0], cmd) && !strcmp(EX[i][1], lname)) return 1;
    return 0;
}

/* One option family: the singular and the plural (--policy for one, --policies for several). */
static const char *family(const char *lname) {
    if (!strcmp(lname, "policies")) return "policy";
    if (!strcmp(lname, "models")) return "model";
    if (!strcmp(lname, "setups")) return "setup";
    return lname;
}

Test(options, one_letter_one_name_across_commands, .timeout = 120) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    static HelpCmd cmds[32];
    int n = load(cmds, 32);
    /* a short letter means one long option everywhere, and a long option has one letter */
    for (int a = 0; a < n; a++)
        for (int i = 0; i < cmds[a].n; i++) {
            const HelpOpt *x = &cmds[a].opt[i];
            if (exempt(cmds[a].name, x->lname)) continue;
            for (int b = 0; b < n; b++)
                for (int j = 0; j < cmds[b].n; j++) {
                    const HelpOpt *y = &cmds[b].opt[j];
                    if (exempt(cmds[b].name, y->lname)) continue;
                    if (x->sname && x->sname == y->sname)
                        cr_assert_str_eq(family(x->lname), family(y->lname), "-%c is --%s in %s but --%s in %s", x->sname, x->lname,
                                         cmds[a].name, y->lname, cmds[b].name);
                    if (!strcmp(x->lname, y->lname))
                        cr_assert_eq(x->sname, y->sname, "--%s is -%c in %s but -%c in %s", x->lname,
                                     x->sname ? x->sname : ' ', cmds[a].name, y->sname ? y->sname : ' ',
                                     cmds[b].name);
                }
        }
    /* the shared rows by name: letter and (where the row has one) metavar */
    static const struct {
        const char *lname;
        char sname;
        const char *meta;
    } V[] = {
        {"steps", 'n', "K"},       {"policies", 'p', "LIST"}, {"policy", 'p', "NAME"},  {"model", 'm', NULL},
        {"gpus", 'g', NULL},       {"calibration", 'c', "FILE"}, {"seed", 's', "S"},   {"output", 'o', NULL},
        {"csv", 0, "FILE"},        {"json", 0, "FILE"},       {"quiet", 'q', ""},      {"no-progress", 0, ""},
        {"format", 'f', NULL},     {"warmup", 'w', "W"},      {"ratio", 'r', NULL},
    };
    for (int a = 0; a < n; a++)
        for (size_t v = 0; v < sizeof V / sizeof V[0]; v++) {
            const HelpOpt *o = find(&cmds[a], V[v].lname);
            if (!o || exempt(cmds[a].name, o->lname)) continue;
            if (!strcmp(cmds[a].name, "info") && !strcmp(o->lname, "json")) {
                /* info --json is a switch: the statistics as JSON on stdout (= --json -) */
                cr_assert_str_eq(o->meta, "");
                continue;
            }
            cr_assert_eq(o->sname, V[v].sname, "%s --%s", cmds[a].name, o->lname);
            if (V[v].meta) cr_assert_str_eq(o->meta, V[v].meta, "%s --%s", cmds[a].name, o->lname);
        }
    /* nobody spells the step count -k, or the output --out, any more */
    for (int a = 0; a < n; a++) {
        cr_assert_null(find(&cmds[a], "out"), "%s --out", cmds[a].name);
        for (int i = 0; i < cmds[a].n; i++) cr_assert_neq(cmds[a].opt[i].sname, 'k', "%s -k", cmds[a].name);
    }
}

Test(options, the_simulator_commands_share_rows_and_defaults, .timeout = 120) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    static HelpCmd cmds[32];
    int n = load(cmds, 32);
    const HelpCmd *replay = cmd_named(cmds, n, "replay");
    /* compare, advise and sweep take every replay option (cli/simopts.c) with its letter and
     * its default; sweep's axes take lists of the same name with the same default */
    static const char *const SIM[] = {"compare", "advise", "sweep"};
    static const char *const OWN[] = {"policy", "csv", "json", "timeline", "timeline-step", "timeline-ranks", "loads", "assignment",
                                      "no-progress"};
    for (int i = 0; i < replay->n; i++) {
        const HelpOpt *r = &replay->opt[i];
        int own = 0;
        for (size_t k = 0; k < sizeof OWN / sizeof OWN[0]; k++) own |= !strcmp(OWN[k], r->lname);
        if (own) continue;
        for (size_t s = 0; s < sizeof SIM / sizeof SIM[0]; s++) {
            const HelpCmd *c = cmd_named(cmds, n, SIM[s]);
            const HelpOpt *o = find(c, r->lname);
            cr_assert_not_null(o, "%s lacks replay's --%s", SIM[s], r->lname);
            cr_assert_eq(o->sname, r->sname, "%s --%s", SIM[s], r->lname);
            cr_assert_eq(o->has_def, r->has_def, "%s --%s: default shown in one only", SIM[s], r->lname);
            cr_assert_str_eq(o->def, r->def, "%s --%s: default %s, replay's %s", SIM[s], r->lname, o->def, r->def);
        }
    }
    /* the vocabulary's defaults wherever the option exists */
    for (int a = 0; a < n; a++) {
        const HelpCmd *c = &cmds[a];
        const HelpOpt *o;
        int gpu = !strcmp(c->name, "validate") || !strcmp(c->name, "calibrate");
        if ((o = find(c, "policies"))) {
            cr_assert_str_eq(o->def, "all", "%s --policies", c->name);
            cr_assert(strstr(o->help, "(also --policy)"), "%s: --policy is accepted too: %s", c->name, o->help);
        }
        if ((o = find(c, "setup")) && strcmp(c->name, "plot")) cr_assert_str_eq(o->def, "fsdp", "%s --setup", c->name);
        if ((o = find(c, "gpus-per-node"))) cr_assert_str_eq(o->def, "8", "%s --gpus-per-node", c->name);
        if ((o = find(c, "seed"))) cr_assert_str_eq(o->def, "1", "%s --seed", c->name);
        /* GPU runs: the model must fit a GPU (mini-tri), one rank, a few steps */
        /* plot's --model / --setup pick rows of a table (default: its first) */
        int plot = !strcmp(c->name, "plot");
        if ((o = find(c, "model")) && !gpu && !plot && o->has_def)
            cr_assert_str_eq(o->def, "orch-84b", "%s --model", c->name);
        if ((o = find(c, "gpus")) && !gpu) cr_assert_str_eq(o->def, "0", "%s --gpus", c->name);
        if ((o = find(c, "steps")) && !exempt(c->name, "steps")) {
            if (!strcmp(c->name, "gen")) /* a trace of 8 steps unless --examples says otherwise */
                cr_assert(strstr(o->def, "8 when neither"), "gen --steps: %s", o->def);
            else if (!strcmp(c->name, "fidelity")) /* fixed-length traces: every step the same */
                cr_assert_str_eq(o->def, "2");
            else if (!strcmp(c->name, "validate")) /* GPU time */
                cr_assert_str_eq(o->def, "4");
            else
                cr_assert_str_eq(o->def, "0", "%s --steps (0: all)", c->name);
        }
        /* a row that is required or states its own default shows no stored one */
        for (int i = 0; i < c->n; i++) {
            const char *h = c->opt[i].help;
            cr_assert(!strstr(h, "(required)") || !strstr(h, "(default: 0)"), "%s --%s: %s", c->name, c->opt[i].lname, h);
            const char *d = strstr(h, "(default");
            cr_assert(!d || !strstr(d + 1, "(default"), "%s --%s shows two defaults: %s", c->name, c->opt[i].lname, h);
        }
    }
    /* one progress switch: every command that draws a progress bar has --no-progress, and -q
     * means "summary lines only" wherever it exists */
    static const char *const PROGRESS[] = {"replay", "compare", "advise", "sweep", "fidelity", "gen"};
    for (size_t k = 0; k < sizeof PROGRESS / sizeof PROGRESS[0]; k++)
        cr_assert_not_null(find(cmd_named(cmds, n, PROGRESS[k]), "no-progress"), "%s --no-progress", PROGRESS[k]);
    for (int a = 0; a < n; a++) {
        const HelpOpt *q = find(&cmds[a], "quiet");
        if (q) cr_assert(strstr(q->help, "summary lines only"), "%s -q: %s", cmds[a].name, q->help);
    }
    /* --model / --models and --setup / --setups wherever several are taken */
    const HelpCmd *sweep = cmd_named(cmds, n, "sweep");
    cr_assert(strstr(find(sweep, "model")->help, "(also --models)"));
    cr_assert(strstr(find(sweep, "setup")->help, "(also --setups)"));
    cr_assert_null(find(replay, "models"));
    cr_assert(!strstr(find(replay, "model")->help, "(also"), "replay takes one model");
}

/* ---- '-' is standard output ---------------------------------------------------------------- */

static char g_dir[1024];

/* `cd DIR && orchsim args`, stdout captured alone (stderr into *err). */
static int run_split(char **out, char **err, const char *args) {
    char cmd[8192], errf[1200];
    snprintf(errf, sizeof errf, "%s/stderr.txt", g_dir);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>%s", g_dir, ORCHSIM_BIN, args, errf);
    int rc;
    *out = run_cmd(&rc, cmd);
    FILE *fp = fopen(errf, "r");
    cr_assert_not_null(fp);
    size_t cap = 1 << 20;
    *err = calloc(1, cap);
    size_t k = fread(*err, 1, cap - 1, fp);
    (*err)[k] = '\0';
    fclose(fp);
    return rc;
}

static void no_dash_file(void) {
    char p[1200];
    snprintf(p, sizeof p, "%s/-", g_dir);
    cr_assert(!th_exists(p), "a file named '-' was written in %s", g_dir);
}

static const char *setup_dir(const char *name) {
    snprintf(g_dir, sizeof g_dir, "%s", th_tmp(name));
    mkdir(g_dir, 0777);
    char args[2048], *out = NULL;
    snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 5 --steps 2 --global-batch 32 --dp 4 -o %s/t.h5",
             g_dir);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
    return g_dir;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

Test(outputs_dash, replay_compare_advise_sweep, .timeout = 240) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    setup_dir("dash-sim");
    char *out, *err;
    /* replay: each machine output alone on stdout, the summary on stderr */
    static const struct {
        const char *opt, *head;
    } R[] = {{"--csv -", "policy,step,"}, {"--json -", "{\"policy\":\"post\",\"steps\":["},
             {"--loads -", "policy,step,rank,"}, {"--assignment -", "policy,step,unit,"}};
    for (size_t i = 0; i < sizeof R / sizeof R[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, "replay t.h5 -m mini-tri -p post --no-progress %s", R[i].opt);
        int rc = run_split(&out, &err, args);
        cr_assert_eq(rc, 0, "%s: %s", R[i].opt, err);
        cr_assert(!strncmp(out, R[i].head, strlen(R[i].head)), "%s: stdout: %.300s", R[i].opt, out);
        cr_assert(!strstr(out, "2 steps replayed") && !strstr(out, "95% CI"), "%s: the summary on stdout", R[i].opt);
        cr_assert(strstr(err, "2 steps replayed"), "%s: the summary on stderr: %s", R[i].opt, err);
        if (R[i].opt[2] == 'j') cr_assert(strstr(out, "\"summary\":{") && out[strlen(out) - 2] == '}', "%s", out);
        free(out);
        free(err);
        no_dash_file();
    }
    /* two outputs on stdout: one error naming the second, nothing written */
    int rc = run_split(&out, &err, "replay t.h5 -m mini-tri --csv - --json -");
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert(strstr(err, "--json") && strstr(err, "already --csv's"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
    rc = run_split(&out, &err, "replay t.h5 -m mini-tri --timeline -");
    cr_assert_eq(rc, 2, "%s", err);
    cr_assert(strstr(err, "--timeline"), "%s", err);
    free(out);
    free(err);
    no_dash_file();
    /* compare, advise: the run-level CSV / JSON alone on stdout */
    static const struct {
        const char *args, *head;
    } C[] = {{"compare t.h5 -m mini-tri -p none,post --no-progress --csv -", "policy,model,"},
             {"compare t.h5 -m mini-tri -p none,post --no-progress --json -", "{"},
             {"advise t.h5 -m mini-tri -p none,post --no-progress --csv -", "policy,model,"},
             {"sweep t.h5 -m mini-tri -p none,post -q --csv -", "policy,model,"}};
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        rc = run_split(&out, &err, C[i].args);
        cr_assert_eq(rc, 0, "%s: %s", C[i].args, err);
        cr_assert(!strncmp(out, C[i].head, strlen(C[i].head)), "%s: stdout: %.300s", C[i].args, out);
        if (C[i].head[0] == 'p') {
            size_t lines = count_lines(out), want = strncmp(C[i].args, "sweep", 5) ? 4 : 3; /* + the oracle row */
            cr_assert_eq(lines, want, "%s: header and rows only: %s", C[i].args, out);
        }
        free(out);
        free(err);
        no_dash_file();
    }
}

Test(outputs_dash, gen_import_calibrate_validate_and_folders, .timeout = 240) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
    setup_dir("dash-files");
    char *out, *err, cmd[8192];
    int rc;
    /* gen -o - : the HDF5 bytes on stdout, the same file as -o FILE */
    snprintf(cmd, sizeof cmd, "cd %s && %s gen --seed 9 -n 2 -b 16 -d 2 -o - > a.h5 2>/dev/null && %s gen --seed 9 -n 2 "
             "-b 16 -d 2 -o b.h5 2>/dev/null && cmp a.h5 b.h5 && %s info a.h5 >/dev/null && echo SAME",
             g_dir, ORCHSIM_BIN, ORCHSIM_BIN, ORCHSIM_BIN);
    out = run_cmd(&rc, cmd);
    cr_assert(rc == 0 && strstr(out, "SAME"), "gen -o - differs from gen -o FILE: %s", out);
    free(out);
    no_dash_file();
    /* import -o - from stdin */
    snprintf(cmd, sizeof cmd, "cd %s && printf '{\"text\": 5, \"image\": 64}\\n{\"text\": 7}\\n' | %s import - -f jsonl "
             "-b 2 -d 1 -o - > i.h5 2>/dev/null && %s info i.h5 | grep -c examples", g_dir, ORCHSIM_BIN, ORCHSIM_BIN);
    out = run_cmd(&rc, cmd);
    cr_assert_eq(rc, 0, "import -o -: %s", out);
    free(out);
    no_dash_file();
    /* calibrate --default -o - : the table alone on stdout, readable by replay */
    rc = run_split(&out, &err, "calibrate --default -o -");
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(!strstr(out, "# wrote") && strstr(err, "# wrote"), "stdout: %.200s / stderr: %s", out, err);
    char path[1200];
    snprintf(path, sizeof path, "%s/c.calib", g_dir);
    FILE *fp = fopen(path, "w");
    fputs(out, fp);
    fclose(fp);
    free(out);
    free(err);
    rc = run_split(&out, &err, "replay t.h5 -m mini-tri --calibration c.calib --no-progress");
    cr_assert_eq(rc, 0, "the table from stdout does not load: %s", err);
    free(out);
    free(err);
    /* validate --csv - through the stand-in GPU module: the CSV alone on stdout */
    char fake[4400];
    snprintf(fake, sizeof fake, "%s", ORCHSIM_BIN);
    snprintf(strrchr(fake, '/'), sizeof fake - (size_t)(strrchr(fake, '/') - fake), "/tests/libfake_gpu.so");
    if (th_exists(fake)) {
        snprintf(cmd, sizeof cmd, "cd %s && ORCHSIM_GPU_MODULE=%s %s validate t.h5 --gpus 1 -p none -m mini-tri -n 1 "
                 "--csv - 2>/dev/null", g_dir, fake, ORCHSIM_BIN);
        out = run_cmd(&rc, cmd);
        cr_assert_eq(rc, 0, "%s", out);
        cr_assert(out[0] != '#' && strchr(out, ',') && !strstr(out, "MAPE"), "validate --csv -: stdout: %.400s", out);
        free(out);
    }
    /* folders cannot be standard output: one error each */
    static const char *const F[] = {"plot mfu x.csv -o -", "fidelity -o - --no-plot"};
    for (size_t i = 0; i < 2; i++) {
        rc = run_split(&out, &err, F[i]);
        cr_assert_eq(rc, 2, "%s: %s", F[i], err);
        cr_assert(strstr(err, "--output") && strstr(err, "standard output"), "%s: %s", F[i], err);
        free(out);
        free(err);
    }
    no_dash_file();
}
