/* h5util.c — see h5util.h. */
#include "traces/h5util.h"

#include <string.h>

void h5_init(void) {
    static int done;
    if (done) return;
    done = 1;
    H5dont_atexit(); /* effective only as the first HDF5 call of the process */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

OsStatus h5_write_str_attr(hid_t obj, const char *name, const char *value, const char *where) {
    OsStatus st = OS_OK;
    hid_t ty = -1, sp = -1, at = -1;
    size_t len = strlen(value);
    H5_CHECK(ty = H5Tcopy(H5T_C_S1), where, name, NULL);
    H5_CHECK(H5Tset_size(ty, len ? len : 1), where, name, NULL);
    H5_CHECK(H5Tset_strpad(ty, H5T_STR_NULLPAD), where, name, NULL);
    H5_CHECK(sp = H5Screate(H5S_SCALAR), where, name, NULL);
    H5_CHECK(at = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT), where, name, NULL);
    H5_CHECK(H5Awrite(at, ty, len ? value : ""), where, name, NULL);
fail:
    if (at >= 0) H5Aclose(at);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    return st;
}

OsStatus h5_write_num_attr(hid_t obj, const char *name, hid_t file_ty, hid_t mem_ty, const void *value,
                           const char *where) {
    OsStatus st = OS_OK;
    hid_t sp = -1, at = -1;
    H5_CHECK(sp = H5Screate(H5S_SCALAR), where, name, NULL);
    H5_CHECK(at = H5Acreate2(obj, name, file_ty, sp, H5P_DEFAULT, H5P_DEFAULT), where, name, NULL);
    H5_CHECK(H5Awrite(at, mem_ty, value), where, name, NULL);
fail:
    if (at >= 0) H5Aclose(at);
    if (sp >= 0) H5Sclose(sp);
    return st;
}
