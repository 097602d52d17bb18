/* h5util.h — the one HDF5 error path of orchsim and the scalar-attribute writers every HDF5
 * writer uses (traces/ and analysis/sweep_h5.c).
 * Implements: H5_CHECK (STYLE.md habit 3 for HDF5: a negative herr_t/hid_t/htri_t becomes one
 *   recorded os_fail(OS_ERR_HDF5, file, object, hint, ...); HDF5's own error stack is printed
 *   only under --verbose) and string / numeric scalar attributes on any object.
 * Does not: open files or know any table layout (h5check.h, private to traces/, does). */
#ifndef OS_TRACES_H5UTIL_H
#define OS_TRACES_H5UTIL_H

#include <hdf5.h>
#include <stdio.h>

#include "base/status.h"

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

/* Call before any other HDF5 function (every orchsim entry to HDF5 does): HDF5's own error
 * printing off, and no library teardown at exit. HDF5 1.10 crashes in that teardown after a
 * file failed to close (a full disk), so orchsim closes every file itself instead. Cheap to call
 * again. */
void h5_init(void);

/* A scalar fixed-length string attribute (null-padded, no terminator stored; "" stores one
 * pad byte) named `name` on obj. where: the file, for errors. */
OsStatus h5_write_str_attr(hid_t obj, const char *name, const char *value, const char *where);
/* A scalar numeric attribute: stored as file_ty, *value read as mem_ty. */
OsStatus h5_write_num_attr(hid_t obj, const char *name, hid_t file_ty, hid_t mem_ty, const void *value,
                           const char *where);

#endif
