/* h5check.h — private to traces/: the H5_CHECK macro and the HDF5 row types of trace.h.
 * Implements: STYLE.md habit 3 for HDF5 (a negative herr_t/hid_t/htri_t becomes one recorded
 *   os_fail(OS_ERR_HDF5, file, object, hint, ...)), HDF5's own error stack printed only under
 *   --verbose; the memory and file compound types of /modalities, /examples, /items, /steps.
 * Does not: get included outside traces/ (the public contract is trace.h). */
#ifndef OS_TRACES_H5CHECK_H
#define OS_TRACES_H5CHECK_H

#include <hdf5.h>
#include <stdio.h>

#include "sim/base/status.h"

/* Needs `OsStatus st` and a `fail:` label in scope. where: the file; obj: "/examples", ... */
#define H5_CHECK(call, where, obj, hint)                                            \
    do {                                                                            \
        long long h5_r_ = (long long)(call);                                        \
        if (h5_r_ < 0) {                                                            \
            if (os_verbose()) H5Eprint2(H5E_DEFAULT, stderr);                       \
            st = os_fail(OS_ERR_HDF5, (where), (obj), (hint), "HDF5 call failed: %s", #call); \
            os_trace_here(__FILE__, __LINE__, #call, st);                           \
            goto fail;                                                              \
        }                                                                           \
    } while (0)

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
