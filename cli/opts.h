/* opts.h — one table drives both option parsing and --help (STYLE.md habit 5, anti-pattern A).
 * Implements: getopt_long built from an OptSpec table; range-checked numbers with k/M/G
 *   suffixes; positional-argument counts; leftovers rejected; usage text from the same table.
 * Does not: exit or print errors itself (returns a status with a recorded message). */
#ifndef OS_CLI_OPTS_H
#define OS_CLI_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

/* Numbers (one rule for every numeric option, DESIGN.md §8): a finite decimal within the row's
 * [lo, hi]; a negative value is an error, never "default"; integers take k/M/G suffixes.
 * OPT_F64_AUTO also takes the word `auto` (the default, stored as OPTS_AUTO, which --help shows
 * as "auto"): a row whose default is "whatever the model/cluster/calibration says" uses it
 * instead of a magic -1. */
typedef enum { OPT_FLAG, OPT_STR, OPT_U64, OPT_U32, OPT_F64, OPT_F64_AUTO } OptType;
#define OPTS_AUTO (-1.0)

typedef struct {
    const char *lname;   /* long name without "--" */
    char sname;          /* short letter or 0 */
    OptType type;
    void *dest;          /* int* (FLAG), const char** (STR), uint64_t*, uint32_t*, double* (F64, F64_AUTO) */
    const char *metavar; /* "N", "FILE", ... (NULL for flags) */
    const char *help;    /* one line; the current *dest is shown as the default */
    double lo, hi;       /* numeric range (inclusive); lo == hi == 0: any non-negative; lo < 0 is
                            refused for OPT_F64_AUTO (negative values are never accepted there) */
} OptSpec;

typedef struct {
    const char *name;    /* "replay" */
    const char *usage;   /* "orchsim replay TRACE [options]" */
    const char *summary; /* one line */
    const char *details; /* paragraphs after the options, may be NULL */
} CmdHelp;

/* Parse argv[1..]; argv[0] is the command name. Positionals go to pos[0..max_pos).
 * Returns OS_OK, OS_DONE when --help was printed (to stdout), or an error. */
OsStatus opts_parse(const OptSpec *specs, size_t n_specs, const CmdHelp *help, int argc,
                    char **argv, const char **pos, int min_pos, int max_pos, int *n_pos);
void opts_usage(FILE *fp, const OptSpec *specs, size_t n_specs, const CmdHelp *help);

/* ---- the shared vocabulary (DESIGN.md §8: one option vocabulary across commands) ----------
 * Rows every command spells the same way: the same long name, short letter, metavar and
 * default. tests/test_options.c walks every command's --help and checks they agree.
 *   -n/--steps K          steps (0: all, where a command replays a trace)
 *   -p/--policies LIST    several policies, or 'all' (the default); -p/--policy NAME for one
 *   -m/--model, --setup, -g/--gpus, -c/--calibration, -s/--seed: cli/simopts.c's rows
 *   --no-progress         the one progress switch; -q/--quiet = summary lines only
 *   --csv FILE, --json FILE, -o/--output FILE: '-' is standard output (opts_stdout_claim)
 * Plural aliases: a row named model, setup or policy whose metavar takes a list (it contains
 * ',' or is "LIST") also answers to the plural (--models, --setups, --policies), and a row
 * named policies to --policy; --help says so. */
#define OPTS_STDOUT_NOTE " ('-' = stdout)"
#define OPTS_ROW_STEPS(dest, help, lo, hi) {"steps", 'n', OPT_U64, (dest), "K", help, lo, hi}
#define OPTS_ROW_POLICIES(dest) \
    {"policies", 'p', OPT_STR, (dest), "LIST", "comma-separated policies, or 'all' (default: all)", 0, 0}
#define OPTS_ROW_TIMELINE_RANKS(dest, help_what)                                                           \
    {"timeline-ranks", 0, OPT_U32, (dest), "N",                                                               \
     "DP ranks per stage in " help_what ": the most and the least loaded and N evenly spaced (0: every rank)", \
     0, 1u << 24}
#define OPTS_ROW_NO_PROGRESS(dest) {"no-progress", 0, OPT_FLAG, (dest), NULL, "no progress bar on stderr", 0, 0}
#define OPTS_ROW_QUIET(dest) {"quiet", 'q', OPT_FLAG, (dest), NULL, "summary lines only (no tables, no progress bar)", 0, 0}
#define OPTS_ROW_CSV(dest, help) {"csv", 0, OPT_STR, (dest), "FILE", help OPTS_STDOUT_NOTE, 0, 0}
#define OPTS_ROW_JSON(dest, help) {"json", 0, OPT_STR, (dest), "FILE", help OPTS_STDOUT_NOTE, 0, 0}
#define OPTS_ROW_OUTPUT(dest, meta, help) {"output", 'o', OPT_STR, (dest), meta, help, 0, 0}

/* The plural (or singular) a row also answers to, or NULL (see above). */
const char *opts_alias(const OptSpec *o);

/* Outputs of one command (opt[i] names the option, path[i] its value or NULL): at most one may
 * be "-" (standard output); an error names the second. *human (may be NULL) gets the stream
 * for the command's human-readable text: stderr when an output owns stdout, else stdout. */
OsStatus opts_stdout_claim(FILE **human, const char *const *opt, const char *const *path, size_t n);

/* An output whose writer needs a regular file (HDF5: traces, the sweep's copy) given as "-":
 * the writer writes a private temporary file (tracked for signal cleanup), and
 * opts_binout_end copies it to standard output. Refused when stdout is a terminal. For any
 * other path the writer writes the path itself and end does nothing. */
typedef struct {
    char tmp[4200];
    const char *path; /* what the writer writes: the caller's path or tmp */
    void *track;      /* OsTmp of tmp */
    int to_stdout;
} OptsBinOut;
OsStatus opts_binout_begin(OptsBinOut *b, const char *path, const char *opt);
/* st == OS_OK: copy to stdout (checking every write); always removes the temporary file.
 * Returns st, or the copy's error. */
OsStatus opts_binout_end(OptsBinOut *b, OsStatus st);

/* Split a comma-separated list in place into at most max parts; returns the count. */
int opts_split(char *s, char **parts, int max);

/* Parse "NAME=V,NAME=V" for option `opt` into out[index of NAME in names[0..n)]: every entry
 * NAME=V with V in [lo, hi], NAME one of names[first..n), no empty entry, no NAME twice.
 * Entries not named keep their value in out. */
OsStatus opts_named_u32(uint32_t *out, const char *const *names, uint32_t n, uint32_t first, const char *spec,
                        const char *opt, uint64_t lo, uint64_t hi);

#endif
