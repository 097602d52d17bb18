/* sweep_h5.h — the HDF5 copy of a sweep: the run table plus each run's per-step series.
 * Implements: FORMATS.md "Sweep HDF5 copy" (/runs compound table in run-level column order,
 *   /series/run_<i>/{step_s, mfu, imbalance_<phase>}), written to a temporary name and renamed.
 * Does not: read it back (h5py / h5dump do; tests check it with the HDF5 API).
 * Source: analysis/FORMATS.md. */
#ifndef OS_ANALYSIS_SWEEP_H5_H
#define OS_ANALYSIS_SWEEP_H5_H

#include <stddef.h>

#include "analysis/runtable.h"
#include "base/status.h"

#define SWEEP_H5_VERSION 1u

/* rows[n] and series[n] are borrowed; trace is recorded as a root attribute. */
OsStatus sweep_h5_write(const char *path, const char *trace, const RunRow *rows,
                        const RunSeries *series, size_t n);

#endif
