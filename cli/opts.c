/* opts.c — see opts.h. */
#include "cli/opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

#define OPTS_MAX 96

/* singular <-> plural: the second name a list-taking row answers to (opts.h) */
static const char *const PLURALS[][2] = {{"model", "models"}, {"setup", "setups"}, {"policy", "policies"}};

static int takes_list(const OptSpec *o) {
    return o->type == OPT_STR && o->metavar && (strchr(o->metavar, ',') || !strcmp(o->metavar, "LIST"));
}

const char *opts_alias(const OptSpec *o) {
    for (size_t i = 0; i < OS_ARRAY_LEN(PLURALS); i++) {
        if (!strcmp(o->lname, PLURALS[i][1]) && o->type == OPT_STR) return PLURALS[i][0];
        if (!strcmp(o->lname, PLURALS[i][0]) && takes_list(o)) return PLURALS[i][1];
    }
    return NULL;
}

/* o's alias, unless another row of the table already has that name */
static const char *alias_in(const OptSpec *specs, size_t n, const OptSpec *o) {
    const char *a = opts_alias(o);
    for (size_t i = 0; a && i < n; i++)
        if (!strcmp(specs[i].lname, a)) return NULL;
    return a;
}

static void fmt_default(char *buf, size_t n, const OptSpec *o) {
    buf[0] = '\0';
    /* a row that states its own default, or is required, shows no stored value: a 0 that means
     * "not given" is not a default (import's "(required) (default: 0)") */
    if (o->help && (strstr(o->help, "(default") || strstr(o->help, "(required)"))) return;
    switch (o->type) {
    case OPT_FLAG: break;
    case OPT_STR:
        if (*(const char **)o->dest) snprintf(buf, n, " (default: %s)", *(const char **)o->dest);
        break;
    case OPT_U64: snprintf(buf, n, " (default: %llu)", (unsigned long long)*(uint64_t *)o->dest); break;
    case OPT_U32: snprintf(buf, n, " (default: %u)", *(uint32_t *)o->dest); break;
    case OPT_F64: snprintf(buf, n, " (default: %g)", *(double *)o->dest); break;
    case OPT_F64_AUTO:
        if (*(double *)o->dest < 0) snprintf(buf, n, " (default: auto; range %g..%g)", o->lo, o->hi);
        else snprintf(buf, n, " (default: %g; range %g..%g, or auto)", *(double *)o->dest, o->lo, o->hi);
        break;
    }
}

void opts_usage(FILE *fp, const OptSpec *specs, size_t n_specs, const CmdHelp *help) {
    fprintf(fp, "usage: %s\n\n%s\n\noptions:\n", help->usage, help->summary);
    for (size_t i = 0; i < n_specs; i++) {
        const OptSpec *o = &specs[i];
        char left[96], def[160];
        if (o->sname)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->sname, o->lname, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->lname, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        fmt_default(def, sizeof def, o);
        const char *al = alias_in(specs, n_specs, o);
        char also[64] = "";
        if (al) snprintf(also, sizeof also, " (also --%s)", al);
        /* two spaces at least between the option and its text: --help parses (tests/test_options.c) */
        fprintf(fp, "  %-29s  %s%s%s\n", left, o->help, def, also);
    }
    fprintf(fp, "  %-29s  %s\n", "-h, --help", "show this help and exit");
    if (help->details) fprintf(fp, "\n%s\n", help->details);
}

static OsStatus set_value(const OptSpec *o, const char *arg) {
    char what[80];
    snprintf(what, sizeof what, "--%s", o->lname);
    double lo = o->lo, hi = o->hi;
    int any = lo == 0 && hi == 0;
    switch (o->type) {
    case OPT_FLAG: *(int *)o->dest = 1; return OS_OK;
    case OPT_STR: *(const char **)o->dest = arg; return OS_OK;
    case OPT_U64:
        return os_parse_u64((uint64_t *)o->dest, arg, (uint64_t)lo, any ? UINT64_MAX : (uint64_t)hi, what);
    case OPT_U32: {
        uint64_t v;
        OsStatus st = os_parse_u64(&v, arg, (uint64_t)lo, any ? UINT32_MAX : (uint64_t)hi, what);
        if (st == OS_OK) *(uint32_t *)o->dest = (uint32_t)v;
        return st;
    }
    case OPT_F64:
    case OPT_F64_AUTO: {
        if (o->type == OPT_F64_AUTO && !strcmp(arg, "auto")) {
            *(double *)o->dest = OPTS_AUTO;
            return OS_OK;
        }
        double v;
        OsStatus st = os_parse_f64(&v, arg, -1e300, 1e300, what);
        if (st != OS_OK) return st;
        if (v < 0 && (any || lo >= 0 || o->type == OPT_F64_AUTO)) {
            char hint[96];
            snprintf(hint, sizeof hint, "%s", o->type == OPT_F64_AUTO ? "write auto for the default" : "give a value >= 0");
            return os_fail(OS_ERR_ARG, what, NULL, hint, "%s is negative", arg);
        }
        if (!any && (v < lo || v > hi))
            return os_fail(OS_ERR_ARG, what, NULL, NULL, "%s is outside the range [%g, %g]", arg, lo, hi);
        if (any && v > 1e300) return os_fail(OS_ERR_ARG, what, NULL, NULL, "%s is too large", arg);
        *(double *)o->dest = v;
        return OS_OK;
    }
    }
    return OS_ERR_INTERNAL;
}

OsStatus opts_parse(const OptSpec *specs, size_t n_specs, const CmdHelp *help, int argc,
                    char **argv, const char **pos, int min_pos, int max_pos, int *n_pos) {
    struct option lo[2 * OPTS_MAX + 2];
    char shortopts[3 * OPTS_MAX + 4];
    size_t ns = 0, nl = n_specs;
    if (n_specs > OPTS_MAX) return os_fail(OS_ERR_INTERNAL, help->name, NULL, NULL, "too many options");
    shortopts[ns++] = ':';
    for (size_t i = 0; i < n_specs; i++) {
        lo[i].name = specs[i].lname;
        lo[i].has_arg = specs[i].type == OPT_FLAG ? no_argument : required_argument;
        lo[i].flag = NULL;
        lo[i].val = 256 + (int)i;
        if (specs[i].sname) {
            shortopts[ns++] = specs[i].sname;
            if (specs[i].type != OPT_FLAG) shortopts[ns++] = ':';
        }
    }
    for (size_t i = 0; i < n_specs; i++) /* a table with a name or letter twice is a bug here */
        for (size_t j = 0; j < i; j++)
            if (!strcmp(specs[i].lname, specs[j].lname) || (specs[i].sname && specs[i].sname == specs[j].sname))
                return os_fail(OS_ERR_INTERNAL, help->name, specs[i].lname, NULL, "option table: --%s / -%c given twice",
                               specs[i].lname, specs[i].sname ? specs[i].sname : '?');
    for (size_t i = 0; i < n_specs; i++) { /* plural/singular aliases: the same row */
        const char *al = alias_in(specs, n_specs, &specs[i]);
        if (al) lo[nl++] = (struct option){al, required_argument, NULL, 256 + (int)i};
    }
    lo[nl] = (struct option){"help", no_argument, NULL, 'h'};
    lo[nl + 1] = (struct option){0, 0, 0, 0};
    shortopts[ns++] = 'h';
    shortopts[ns] = '\0';

    optind = 1;
    opterr = 0;
    int np = 0;
    for (;;) {
        int li = -1;
        int c = getopt_long(argc, argv, shortopts, lo, &li);
        if (c == -1) break;
        if (c == 'h') {
            opts_usage(stdout, specs, n_specs, help);
            return OS_DONE;
        }
        if (c == '?' || c == ':') {
            const char *bad = argv[optind - 1];
            char hint[128];
            snprintf(hint, sizeof hint, "see 'orchsim %s --help'", help->name);
            return os_fail(OS_ERR_ARG, help->name, bad, hint,
                           c == ':' ? "option needs a value" : "unknown option");
        }
        const OptSpec *o = NULL;
        if (c >= 256) o = &specs[c - 256];
        else
            for (size_t i = 0; i < n_specs; i++)
                if (specs[i].sname == c) o = &specs[i];
        if (!o) return os_fail(OS_ERR_INTERNAL, help->name, NULL, NULL, "option table mismatch");
        OsStatus st = set_value(o, optarg);
        if (st != OS_OK) return st;
    }
    for (int i = optind; i < argc; i++) {
        if (np >= max_pos) {
            char hint[128];
            snprintf(hint, sizeof hint, "see 'orchsim %s --help'", help->name);
            return os_fail(OS_ERR_ARG, help->name, argv[i], hint, "unexpected argument");
        }
        pos[np++] = argv[i];
    }
    if (np < min_pos) {
        char hint[160];
        snprintf(hint, sizeof hint, "usage: %s", help->usage);
        return os_fail(OS_ERR_ARG, help->name, NULL, hint, "missing argument");
    }
    if (n_pos) *n_pos = np;
    return OS_OK;
}

int opts_split(char *s, char **parts, int max) {
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) parts[n++] = t;
    return n;
}

OsStatus opts_named_u32(uint32_t *out, const char *const *names, uint32_t n, uint32_t first, const char *spec,
                        const char *opt, uint64_t lo, uint64_t hi) {
    OsStatus st = OS_OK;
    char buf[512], hint[256], list[160] = "";
    uint64_t seen = 0;
    for (uint32_t m = first; m < n && m < 64; m++) {
        strncat(list, m > first ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[m], sizeof list - strlen(list) - 1);
    }
    snprintf(hint, sizeof hint, "write NAME=V[,NAME=V], NAME one of: %s", list);
    if (!spec || !*spec) OS_FAIL(OS_ERR_ARG, opt, NULL, hint, "empty value");
    if (strlen(spec) >= sizeof buf) OS_FAIL(OS_ERR_ARG, opt, NULL, NULL, "too long");
    strcpy(buf, spec);
    for (char *p = buf, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = '\0';
        if (!*p) OS_FAIL(OS_ERR_ARG, opt, NULL, hint, "empty entry in '%s'", spec);
        char *eq = strchr(p, '=');
        if (!eq) OS_FAIL(OS_ERR_ARG, opt, p, hint, "expected NAME=V");
        *eq = '\0';
        uint32_t m = first;
        while (m < n && strcmp(names[m], p) != 0) m++;
        if (m >= n) OS_FAIL(OS_ERR_ARG, opt, p, hint, "unknown modality");
        if (seen & (1ull << (m & 63))) OS_FAIL(OS_ERR_ARG, opt, p, "give each modality once", "given twice");
        seen |= 1ull << (m & 63);
        uint64_t v;
        OS_CHECK(os_parse_u64(&v, eq + 1, lo, hi, opt));
        out[m] = (uint32_t)v;
    }
fail:
    return st;
}

/* ---- standard output ---------------------------------------------------------------------- */

OsStatus opts_stdout_claim(FILE **human, const char *const *opt, const char *const *path, size_t n) {
    const char *first = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!path[i] || strcmp(path[i], "-")) continue;
        if (first) {
            char hint[160];
            snprintf(hint, sizeof hint, "give %s or %s a file name", first, opt[i]);
            return os_fail(OS_ERR_ARG, opt[i], "-", hint, "standard output is already %s's", first);
        }
        first = opt[i];
    }
    if (human) *human = first ? stderr : stdout;
    return OS_OK;
}

OsStatus opts_binout_begin(OptsBinOut *b, const char *path, const char *opt) {
    OsStatus st = OS_OK;
    memset(b, 0, sizeof *b);
    b->path = path;
    if (!path || strcmp(path, "-")) return OS_OK;
    if (isatty(STDOUT_FILENO))
        OS_FAIL(OS_ERR_ARG, opt, "-", "redirect it (> file.h5, | ssh ...) or give a file name",
                "standard output is a terminal: this output is a binary HDF5 file");
    const char *dir = getenv("TMPDIR");
    snprintf(b->tmp, sizeof b->tmp, "%s/orchsim-stdout-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(b->tmp);
    if (fd < 0) {
        int e = errno;
        b->tmp[0] = '\0';
        OS_FAIL(OS_ERR_IO, dir && *dir ? dir : "/tmp", NULL, "set TMPDIR to a writable folder",
                "cannot create a temporary file for %s -: %s", opt, strerror(e));
    }
    close(fd);
    b->track = os_tmp_track(b->tmp, 0);
    b->path = b->tmp;
    b->to_stdout = 1;
fail:
    return st;
}

OsStatus opts_binout_end(OptsBinOut *b, OsStatus st) {
    if (!b->to_stdout) return st;
    if (st == OS_OK) {
        FILE *in = fopen(b->tmp, "rb");
        char buf[1 << 15];
        size_t k;
        int bad = !in;
        while (in && (k = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, k, stdout) != k) {
                bad = 1;
                break;
            }
        if (in && ferror(in)) bad = 1;
        if (in) fclose(in);
        if (fflush(stdout) != 0 || ferror(stdout)) bad = 1;
        if (bad) st = os_fail(OS_ERR_IO, "-", NULL, NULL, "writing the file to standard output failed");
    }
    unlink(b->tmp);
    os_tmp_untrack(b->track);
    b->to_stdout = 0;
    return st;
}
