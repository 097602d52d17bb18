/* h5check.h — private to traces/: the HDF5 row types of trace.h (H5_CHECK is in h5util.h).
 * Implements: the memory and file compound types of /modalities, /examples, /items, /steps.
 * Does not: get included outside traces/ (the public contract is trace.h). */
#ifndef OS_TRACES_H5CHECK_H
#define OS_TRACES_H5CHECK_H

#include <hdf5.h>
#include <stdio.h>

#include "base/status.h"
#include "traces/h5util.h" /* H5_CHECK */

/* The four tables. Memory types map trace.h's structs by field name; file types are packed
 * little-endian so the same rows give the same bytes on every machine. */
typedef enum { TH5_MODALITIES = 0, TH5_EXAMPLES, TH5_ITEMS, TH5_STEPS, TH5_N_TABLES } Th5Table;

typedef struct {
    const char *name;  /* member name */
    H5T_class_t cls;   /* H5T_INTEGER or H5T_STRING */
    size_t size;       /* integer width in bytes; max string size for strings */
} Th5Field;

typedef struct {
    const char *dataset;    /* "/examples" */
    const Th5Field *fields; /* [n_fields] */
    int n_fields;
} Th5TableSpec;

extern const Th5TableSpec TH5_TABLES[TH5_N_TABLES];

/* Create the memory (native struct) or file (packed LE) compound type of a table; the caller
 * closes it with H5Tclose. Negative on failure. */
hid_t th5_mem_type(Th5Table t);
hid_t th5_file_type(Th5Table t);

/* Silence HDF5's automatic error printing (once per process; cheap to call again). */
void th5_quiet(void);

#endif
