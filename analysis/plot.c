/* plot.c — see plot.h: the figure registry, options, and the gnuplot runner. */
#include "analysis/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analysis/plot_internal.h"
#include "base/util.h"
#include "sim/policy.h"

static const PlotKind KINDS[] = {
    {"throughput", "SWEEP.csv", "LLM tokens/s vs GPU count per policy (log-log), with ideal linear scaling",
     1, 1, plot_throughput},
    {"policies", "COMPARE.csv", "mean step time per policy with its 95% interval and the oracle floor (compare/advise --csv)",
     1, 1, plot_policies},
    {"mfu", "SWEEP.csv", "MFU per model (ordered by parameter count) per policy, grouped bars", 1, 1, plot_mfu},
    {"timeline", "A.csv [B.csv]", "per-rank timeline of one step, one or two panels on one time axis", 1, 2,
     plot_timeline},
    {"imbalance-cdf", "STEPS.csv...", "CDF over steps of per-phase imbalance (max/mean) per policy", 1, 64,
     plot_imbalance_cdf},
    {"validate", "VALIDATE.csv", "predicted vs measured step time with y = x and error statistics", 1, 1,
     plot_validate},
    {"composition", "TRACE.h5", "per-example modality composition scatter (items vs text tokens)", 1, 1,
     plot_composition},
    {"fidelity", "FIDELITY.csv", "predicted vs published tokens/s/GPU (orchsim fidelity) with y = x", 1, 1,
     plot_fidelity},
    {"pipeline", "PIPELINE.csv...", "per-stage time by policy of a text-to-image pipeline (orchsim pipeline --csv)", 1, 8,
     plot_pipeline},
};

uint32_t plot_kind_count(void) { return (uint32_t)OS_ARRAY_LEN(KINDS); }
const PlotKind *plot_kind_at(uint32_t i) { return i < OS_ARRAY_LEN(KINDS) ? &KINDS[i] : NULL; }
const PlotKind *plot_kind_find(const char *name) {
    for (size_t i = 0; i < OS_ARRAY_LEN(KINDS); i++)
        if (!strcmp(KINDS[i].name, name)) return &KINDS[i];
    return NULL;
}

void plot_options_init(PlotOptions *o) {
    memset(o, 0, sizeof *o);
    o->formats = PLOT_PNG;
    o->width = 1200;
    o->height = 800;
    o->max_ranks = 16; /* two panels of 16 rows keep the rank labels legible at 800 px */
    o->max_points = 20000;
    o->seed = 1;
    o->gnuplot = ORCHSIM_GNUPLOT;
    const char *env = getenv("ORCHSIM_PLOTS_DIR"); /* an installed copy of plots/ */
    o->scripts = env && *env ? env : ORCHSIM_PLOTS_DIR;
}

typedef struct {
    const char *name, *ext, *term;
    unsigned bit;
} PlotFormat;
static const PlotFormat FORMATS[] = {
    {"png", "png", "pngcairo", PLOT_PNG},
    {"svg", "svg", "svg", PLOT_SVG},
    {"pdf", "pdf", "pdfcairo", PLOT_PDF},
};

OsStatus plot_parse_formats(unsigned *mask, const char *s) {
    OsStatus st = OS_OK;
    *mask = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        const PlotFormat *f = NULL;
        for (size_t i = 0; i < OS_ARRAY_LEN(FORMATS); i++)
            if (strlen(FORMATS[i].name) == len && !strncmp(p, FORMATS[i].name, len)) f = &FORMATS[i];
        if (!f) OS_FAIL(OS_ERR_ARG, "--format", NULL, "use png, svg, pdf (comma-separated)", "unknown format '%.*s'", (int)len, p);
        *mask |= f->bit;
        p += len;
        if (*p == ',') p++;
    }
    if (!*mask) OS_FAIL(OS_ERR_ARG, "--format", NULL, "use png, svg, pdf (comma-separated)", "no format given");
fail:
    return st;
}

void plot_output_path(char *buf, size_t cap, const PlotOptions *o, const char *kind, unsigned format) {
    const char *ext = "png";
    for (size_t i = 0; i < OS_ARRAY_LEN(FORMATS); i++)
        if (FORMATS[i].bit == format) ext = FORMATS[i].ext;
    snprintf(buf, cap, "%s/%s.%s", o->outdir, kind, ext);
}

/* ---------------------------------------------------------------- colours */

typedef struct {
    const char *name, *color;
} NamedColor;
/* One policy, one style in every figure: colour, dash type (plots/common.gp defines 11-14) and
 * point type, all distinct so that coinciding lines stay visible (post under post-node, lpt
 * under kk). The baseline is black and the bound grey so the eye finds them first; the others
 * are the Okabe-Ito colour-blind-safe palette, then Tol's wine and teal. Figures list policies
 * in the registry's order (sim/policy.c), then megatron, then the oracle, then other names in
 * alphabetical order. */
typedef struct {
    const char *name, *color;
    int dt, pt;
} PolicyStyle;
static const PolicyStyle POLICY_STYLES[] = {
    {"none", "#000000", 1, 7},     {"sorted", "#E69F00", 2, 5},   {"lpt", "#56B4E9", 3, 9},
    {"kk", "#009E73", 4, 11},      {"equal-count", "#0072B2", 5, 13}, {"isf", "#B8A000", 11, 15},
    {"post", "#D55E00", 1, 4},     {"post-enc", "#882255", 12, 6}, {"post-node", "#CC79A7", 13, 8},
    {"megatron", "#44AA99", 14, 10}, {"oracle", "#888888", 2, 12},
};
static const NamedColor PHASE_COLORS[] = {
    {"image", "#4477AA"}, {"audio", "#228833"}, {"video", "#AA3377"}, {"llm", "#EE6677"},
    {"sync", "#CCBB44"},  {"balance", "#66CCEE"}, {"comm", "#7F4FC9"}, {"idle", "#DDDDDD"},
    {"bubble", "#FFAABB"}, /* a pipeline stage waiting for its neighbour (the op "bubble") */
    {"optimizer", "#882255"},
};
static const char *const FALLBACK[] = {"#0072B2", "#999933", "#882255", "#44AA99", "#117733", "#332288"};

static unsigned name_hash(const char *name) {
    unsigned h = 5381;
    for (const char *c = name; *c; c++) h = h * 33u + (unsigned char)*c;
    return h;
}

static const char *find_color(const NamedColor *t, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return t[i].color;
    return FALLBACK[name_hash(name) % OS_ARRAY_LEN(FALLBACK)];
}

void plot_policy_style(const char *policy, const char **color, int *dt, int *pt) {
    for (size_t i = 0; i < OS_ARRAY_LEN(POLICY_STYLES); i++)
        if (!strcmp(POLICY_STYLES[i].name, policy)) {
            *color = POLICY_STYLES[i].color;
            *dt = POLICY_STYLES[i].dt;
            *pt = POLICY_STYLES[i].pt;
            return;
        }
    unsigned h = name_hash(policy);
    *color = FALLBACK[h % OS_ARRAY_LEN(FALLBACK)];
    *dt = 2 + (int)(h % 4);
    *pt = 1 + (int)(h % 3);
}

const char *plot_policy_color(const char *policy) {
    const char *c;
    int dt, pt;
    plot_policy_style(policy, &c, &dt, &pt);
    return c;
}

/* Sort key: registry position, then megatron, oracle, then the rest (by name). */
static int policy_key(const char *name) {
    for (uint32_t i = 0; i < policy_count(); i++)
        if (!strcmp(policy_at(i)->name, name)) return (int)i;
    if (!strcmp(name, "megatron")) return (int)policy_count();
    if (!strcmp(name, "oracle")) return (int)policy_count() + 1;
    return (int)policy_count() + 2;
}

static int cmp_policy(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int kx = policy_key(x), ky = policy_key(y);
    return kx != ky ? (kx > ky) - (kx < ky) : strcmp(x, y);
}

void plot_sort_policies(const char **pols, int n) {
    if (n > 1) qsort(pols, (size_t)n, sizeof *pols, cmp_policy);
}

void plot_join_words(char *buf, size_t cap, const char *const *list, int n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? " " : "", list[i]);
}

void pv_policies(PlotVars *v, const char *const *pols, int n) {
    char pw[2048], cw[512], dw[512], tw[512];
    plot_join_words(pw, sizeof pw, pols, n);
    plot_policy_words(cw, dw, tw, sizeof dw, pols, n);
    pv_int(v, "npol", n);
    pv_str(v, "policies", pw);
    pv_str(v, "colors", cw);
    pv_str(v, "dts", dw);
    pv_str(v, "pts", tw);
}

void plot_policy_words(char *colors, char *dts, char *pts, size_t cap, const char *const *pols, int n) {
    size_t a = 0, b = 0, c = 0;
    colors[0] = dts[0] = pts[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *col;
        int dt, pt;
        plot_policy_style(pols[i], &col, &dt, &pt);
        if (a < cap) a += (size_t)snprintf(colors + a, cap - a, "%s%s", i ? " " : "", col);
        if (b < cap) b += (size_t)snprintf(dts + b, cap - b, "%s%d", i ? " " : "", dt);
        if (c < cap) c += (size_t)snprintf(pts + c, cap - c, "%s%d", i ? " " : "", pt);
    }
}

const char *plot_phase_color(const char *phase) {
    return find_color(PHASE_COLORS, OS_ARRAY_LEN(PHASE_COLORS), phase);
}

void plot_log_tics(char *buf, size_t cap, double lo, double hi) {
    size_t q = (size_t)snprintf(buf, cap, "(");
    if (lo > 0 && hi > lo)
        for (double dec = pow(10.0, floor(log10(lo))); dec <= hi && q + 64 < cap; dec *= 10.0)
            for (int m = 0; m < 3; m++) {
                double tv = dec * (m == 0 ? 1.0 : m == 1 ? 2.0 : 5.0);
                if (tv >= lo && tv <= hi) q += (size_t)snprintf(buf + q, cap - q, "%s%.6g", q > 1 ? ", " : "", tv);
            }
    if (q <= 1) snprintf(buf, cap, "autofreq");
    else snprintf(buf + q, cap - q, ")");
}

/* ---------------------------------------------------------------- gnuplot variables */

void pv_init(PlotVars *v) {
    v->n = 0;
    v->buf[0] = '\0';
    v->overflow = 0;
}

static void pv_raw(PlotVars *v, const char *s) {
    size_t k = strlen(s);
    if (v->n + k + 1 > sizeof v->buf) {
        v->overflow = 1;
        return;
    }
    memcpy(v->buf + v->n, s, k + 1);
    v->n += k;
}

void pv_str(PlotVars *v, const char *name, const char *val) {
    pv_raw(v, name);
    pv_raw(v, "='");
    for (const char *c = val; *c; c++) {
        char one[3] = {*c, 0, 0};
        if (*c == '\'') one[1] = '\''; /* gnuplot: '' inside single quotes is one quote */
        if (*c == '\n') one[0] = ' ';
        pv_raw(v, one);
    }
    pv_raw(v, "'; ");
}

void pv_num(PlotVars *v, const char *name, double val) {
    char b[96];
    snprintf(b, sizeof b, "%s=%.12g; ", name, val);
    pv_raw(v, b);
}

void pv_int(PlotVars *v, const char *name, long long val) {
    char b[96];
    snprintf(b, sizeof b, "%s=%lld; ", name, val);
    pv_raw(v, b);
}

/* ---------------------------------------------------------------- files */

static OsStatus make_dir(const char *dir) {
    OsStatus st = OS_OK;
    char tmp[4096];
    if (strlen(dir) >= sizeof tmp) OS_FAIL(OS_ERR_ARG, dir, NULL, NULL, "path too long");
    strcpy(tmp, dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            OS_FAIL(OS_ERR_IO, tmp, NULL, "check permissions", "cannot create directory: %s", strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        OS_FAIL(OS_ERR_IO, dir, NULL, "check permissions", "cannot create directory: %s", strerror(errno));
fail:
    return st;
}

OsStatus plot_dat_open(PlotDat *d, const PlotOptions *o, const char *name) {
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s/%s", o->outdir, name);
    snprintf(d->tmp, sizeof d->tmp, "%s.tmp.%ld", d->path, (long)getpid());
    d->fp = fopen(d->tmp, "w");
    if (!d->fp)
        return os_fail(OS_ERR_IO, d->path, NULL, "check OUTDIR is writable", "cannot create: %s", strerror(errno));
    return OS_OK;
}

OsStatus plot_dat_close(PlotDat *d) {
    int bad = ferror(d->fp);
    bad |= fclose(d->fp) != 0;
    d->fp = NULL;
    if (bad || rename(d->tmp, d->path) != 0) {
        remove(d->tmp);
        return os_fail(OS_ERR_IO, d->path, NULL, "check free disk space", "write failed");
    }
    return OS_OK;
}

void plot_dat_abort(PlotDat *d) {
    if (d->fp) fclose(d->fp);
    d->fp = NULL;
    if (d->tmp[0]) remove(d->tmp);
}

/* Last non-empty line of a log file into buf (gnuplot puts the reason there). */
static void last_line(char *buf, size_t cap, const char *path) {
    buf[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (!fp) return;
    char line[1024];
    while (fgets(line, sizeof line, fp)) {
        size_t k = strlen(line);
        while (k && (line[k - 1] == '\n' || line[k - 1] == '\r' || line[k - 1] == ' ')) line[--k] = '\0';
        if (k) snprintf(buf, cap, "%s", line);
    }
    fclose(fp);
}

static OsStatus run_one(const PlotOptions *o, const char *script, const char *vars, const char *log) {
    OsStatus st = OS_OK;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) OS_FAIL(OS_ERR_IO, "gnuplot", NULL, NULL, "cannot fork: %s", strerror(errno));
    if (pid == 0) {
        /* the child only redirects and execs; on failure it reports through the log */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            close(nul);
        }
        char *argv[] = {(char *)"gnuplot", (char *)"-e", (char *)vars, (char *)script, NULL};
        execv(o->gnuplot, argv);
        dprintf(2, "cannot run %s: %s\n", o->gnuplot, strerror(errno));
        _exit(127);
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) OS_FAIL(OS_ERR_IO, "gnuplot", NULL, NULL, "wait failed: %s", strerror(errno));
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        char why[1024];
        last_line(why, sizeof why, log);
        OS_FAIL(OS_ERR_IO, script, NULL, "the full gnuplot output is in the .log file beside the figure",
                "gnuplot failed (%s%d): %s", WIFEXITED(ws) ? "exit " : "signal ",
                WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), why);
    }
fail:
    return st;
}

OsStatus plot_run_gnuplot(const PlotOptions *o, const char *kind, const char *script, const PlotVars *v) {
    OsStatus st = OS_OK;
    char sp[4096], log[4200];
    PlotVars all;
    OsOutFile out = {0};
    if (!o->gnuplot || !*o->gnuplot || access(o->gnuplot, X_OK) != 0)
        OS_FAIL(OS_ERR_NODEV, "gnuplot", NULL, "install gnuplot (apt-get install gnuplot-nox) and re-run cmake",
                "gnuplot not found ('%s')", o->gnuplot ? o->gnuplot : "");
    snprintf(sp, sizeof sp, "%s/%s.gp", o->scripts, script);
    if (access(sp, R_OK) != 0)
        OS_FAIL(OS_ERR_IO, sp, NULL, "set ORCHSIM_PLOTS_DIR to the plots/ folder", "cannot read the script");
    snprintf(log, sizeof log, "%s/%s.log", o->outdir, kind);
    for (size_t i = 0; i < OS_ARRAY_LEN(FORMATS); i++) {
        if (!(o->formats & FORMATS[i].bit)) continue;
        char path[4096];
        plot_output_path(path, sizeof path, o, kind, FORMATS[i].bit);
        OS_CHECK(os_outfile_open(&out, path, 0));
        pv_init(&all);
        pv_raw(&all, v->buf);
        pv_str(&all, "scriptdir", o->scripts);
        pv_str(&all, "term", FORMATS[i].term);
        pv_str(&all, "outfile", out.tmp);
        pv_int(&all, "w", o->width);
        pv_int(&all, "h", o->height);
        if (all.overflow || v->overflow)
            OS_FAIL(OS_ERR_RANGE, kind, NULL, "use shorter paths", "gnuplot variables too long");
        OS_CHECK(run_one(o, sp, all.buf, log));
        OS_CHECK(os_outfile_commit(&out));
    }
    remove(log); /* kept only when gnuplot failed */
fail:
    if (out.tmp[0]) os_outfile_abort(&out);
    return st;
}

OsStatus plot_make(const PlotKind *k, const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    if (n_inputs < k->min_inputs || n_inputs > k->max_inputs)
        OS_FAIL(OS_ERR_ARG, k->name, NULL, k->inputs, "takes %d to %d input files, got %d", k->min_inputs,
                k->max_inputs, n_inputs);
    if (!o->outdir || !*o->outdir) OS_FAIL(OS_ERR_ARG, "plot", "-o", "give -o OUTDIR", "no output folder");
    if (o->width < 200 || o->height < 150 || o->width > 10000 || o->height > 10000)
        OS_FAIL(OS_ERR_ARG, "plot", "--size", "e.g. 1200x800", "%ux%u is outside 200x150 .. 10000x10000",
                o->width, o->height);
    OS_CHECK(make_dir(o->outdir));
    OS_CHECK(k->fn(o, inputs, n_inputs));
fail:
    return st;
}
