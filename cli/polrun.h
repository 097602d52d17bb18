/* polrun.h — what `compare` and `advise` share: the policy list, and one trace replayed under
 * one policy with the deterministic balancer charge, collected for the table, the advice and
 * the diagnosis.
 * Implements: --policies parsing against the registry (did-you-mean, before any work); the
 *   charge per policy (analysis/advise.h's advise_charge, --balancer-cost, or the host's
 *   measurement with --measured-charge); one replay collected into a RunRow
 *   (with feasibility and provenance), its RunSeries, an AdviseRun, and the policy's runtime
 *   measured beside the charge; the oracle row; optional per-policy step CSV and timeline.
 * Does not: print tables or decide (analysis/advise.h). */
#ifndef OS_CLI_POLRUN_H
#define OS_CLI_POLRUN_H

#include <stdint.h>

#include "analysis/advise.h"
#include "analysis/runtable.h"
#include "base/util.h"
#include "sim/replay.h"

#define POLRUN_MAX 32

/* Split list ("all" or NULL = every registry policy, in registry order) into names[*np]; every
 * name checked before any work: "oracle" and unknown names are errors naming --policies (with
 * "did you mean"). *buf holds the split copy (caller frees). */
OsStatus polrun_parse_list(const char **names, int *np, char **buf, const char *list);

typedef enum { CHARGE_MODELLED = 0, CHARGE_FIXED, CHARGE_MEASURED } ChargeMode;
const char *polrun_charge_name(ChargeMode m); /* "modelled", "fixed", "measured" */
/* The charge a command's options ask for: --measured-charge, else a fixed --balancer-cost
 * (fixed_s >= 0), else the modelled one. */
ChargeMode polrun_charge_pick(int measured, double fixed_s);

typedef struct {
    ChargeMode charge;
    double fixed_s;             /* CHARGE_FIXED: the --balancer-cost value */
    AdviseUnits units;          /* the sizes the modelled charge is computed at (advise_units) */
    const char *steps_dir;      /* write <dir>/steps_<name>.csv, or NULL */
    const char *timeline_dir;   /* write <dir>/timeline_<name>.json/.csv of the first step, or NULL */
    const RunProv *prov;        /* borrowed; NULL = no provenance columns */
    struct PolScratch *scratch; /* when the dirs are a scratch folder: its files get tracked */
    int progress;
} PolRunOpts;

/* The set-up compare and advise share once their configuration is resolved: the run's
 * provenance (*prov, malloc'd; the caller frees it), the options every policy run takes (the
 * charge --measured-charge / --balancer-cost fixed_s pick, progress) and the unit sizes the
 * modelled charge is priced at (advise_units). The directories and scratch are the caller's. */
OsStatus polrun_opts_init(PolRunOpts *po, RunProv **prov, const char *trace_path, const char *command, int measured,
                          double fixed_s, int progress, Trace *t, const ReplayConfig *cfg);


typedef struct {
    char name[64];
    ReplaySummary sum;
    RunRow row;
    RunSeries series;
    AdviseRun run;
    double tokens, model_flops;  /* sums over steps (for the oracle row) */
    uint64_t first_step;         /* trace index of the first replayed step */
    double peak_flops;
    uint32_t gpus;
} PolRun;

/* Replay cfg (its policy field is set from name when the name is in the registry; "megatron"
 * and other labels keep cfg->policy) and collect everything. cfg is modified: balancer_cost_s
 * per the charge, timeline_path. setup_label: the setup column (NULL = cfg's setup). */
OsStatus polrun_one(PolRun *out, ReplayConfig *cfg, Trace *t, const char *name, const char *setup_label,
                    const PolRunOpts *o);
void polrun_free(PolRun *r); /* NULL-safe */

/* The oracle row from a finished run (any: the floor is the same for every policy). */
void polrun_oracle_row(RunRow *row, const PolRun *ref);

/* A private scratch folder ($TMPDIR or /tmp) for files a command writes and reads back before
 * its real outputs (steps, timelines, figures): created and tracked for signal cleanup by
 * polrun_scratch_make, every file in it removed by polrun_scratch_remove (NULL-safe on a zeroed
 * one). polrun_scratch_note tracks one more file in it (removed by a signal too). */
typedef struct PolScratch {
    char dir[4200];
    OsTmp *track;
    OsTmp *files[96];
    size_t n_files;
} PolScratch;
OsStatus polrun_scratch_make(PolScratch *s);
void polrun_scratch_note(PolScratch *s, const char *path);
void polrun_scratch_remove(PolScratch *s);
/* Copy src to dst (an output: os_outfile, committed or held), header first when not NULL. */
OsStatus polrun_copy_file(const char *dst, const char *src, const char *header);

/* JSON object of one row: {"policy":..., ..., "phases":{...}}. */
void polrun_json_row(FILE *fp, const PolRun *r);

#endif
