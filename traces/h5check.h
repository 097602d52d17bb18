/* h5check.h — private to traces/: the HDF5 row types of trace.h (H5_CHECK is in h5util.h).
 * Implements: the memory and file compound types of /modalities, /examples, /items, /steps.
 * Does not: get included outside traces/ (the public contract is trace.h). */
#ifndef OS_TRACES_H5CHECK_H
#define OS_TRACES_H5CHECK_H

#include <hdf5.h>
#include <stdint.h>
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

/* Silence HDF5's automatic error printing and its exit-time teardown (h5_init). */
void th5_quiet(void);

/* ---- structural checks (trace_check.c), each before the HDF5 call it protects ---------- */
/* The path is a readable regular file starting with the HDF5 signature and a superblock of
 * version 2 or 3 (the checksummed format); *file_size = its size on disk. */
OsStatus th5_check_file(const char *path, uint64_t *file_size);
/* name ("/" or "/examples") is a hard link to a dataset (want_dataset) or group with a
 * checksummed (v2) object header and a sane attribute count. */
OsStatus th5_check_object(hid_t file, const char *path, const char *name, int want_dataset);
/* Scalar attributes: exactly one element of the right class. Strings must be shorter than cap. */
OsStatus th5_read_str_attr(hid_t obj, const char *path, const char *objname, const char *name, char *buf, size_t cap);
OsStatus th5_read_uint_attr(hid_t obj, const char *path, const char *objname, const char *name, uint64_t *v);
/* An optional 1-D unsigned array attribute of exactly n values (n <= 16); *present = 0 if absent. */
OsStatus th5_read_uint_array_attr(hid_t obj, const char *path, const char *objname, const char *name, uint64_t *v,
                                  uint64_t n, int *present);
/* Table tb's compound type, rank, layout, filters, chunk size and storage (rows against what
 * the storage and the file size can hold, every chunk written). *chunk_bytes = 0 when not
 * chunked. */
OsStatus th5_check_table(hid_t ds, const char *path, Th5Table tb, uint64_t file_size, uint64_t *rows,
                         size_t *chunk_bytes);

#endif
