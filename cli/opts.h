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

/* Split a comma-separated list in place into at most max parts; returns the count. */
int opts_split(char *s, char **parts, int max);

/* Parse "NAME=V,NAME=V" for option `opt` into out[index of NAME in names[0..n)]: every entry
 * NAME=V with V in [lo, hi], NAME one of names[first..n), no empty entry, no NAME twice.
 * Entries not named keep their value in out. */
OsStatus opts_named_u32(uint32_t *out, const char *const *names, uint32_t n, uint32_t first, const char *spec,
                        const char *opt, uint64_t lo, uint64_t hi);

#endif
