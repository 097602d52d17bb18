/* sweep_h5.c — see sweep_h5.h. */
#include "analysis/sweep_h5.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "traces/h5util.h"

#define SWEEP_H5_HINT "check the path and free disk space"

static OsStatus put_series(hid_t grp, const char *name, const double *x, hsize_t n, const char *where) {
    OsStatus st = OS_OK;
    hid_t sp = -1, ds = -1;
    H5_CHECK(sp = H5Screate_simple(1, &n, NULL), where, name, SWEEP_H5_HINT);
    H5_CHECK(ds = H5Dcreate2(grp, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), where, name, SWEEP_H5_HINT);
    if (n) H5_CHECK(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x), where, name, SWEEP_H5_HINT);
fail:
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

/* Compound type of RunRow built from runtable's field table: the same columns as the CSV. */
static hid_t runrow_type(void) {
    hid_t ty = H5Tcreate(H5T_COMPOUND, sizeof(RunRow));
    if (ty < 0) return ty;
    for (size_t i = 0; i < runtable_n_fields(); i++) {
        const RunField *f = runtable_field(i);
        herr_t e;
        if (f->kind == RUNFIELD_STR) {
            hid_t s = H5Tcopy(H5T_C_S1);
            if (s < 0 || H5Tset_size(s, f->size) < 0) {
                if (s >= 0) H5Tclose(s);
                H5Tclose(ty);
                return -1;
            }
            e = H5Tinsert(ty, f->name, f->off, s);
            H5Tclose(s);
        } else {
            e = H5Tinsert(ty, f->name, f->off, f->kind == RUNFIELD_U64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_DOUBLE);
        }
        if (e < 0) {
            H5Tclose(ty);
            return -1;
        }
    }
    return ty;
}

OsStatus sweep_h5_write(const char *path, const char *trace, const RunRow *rows,
                        const RunSeries *series, size_t n) {
    OsStatus st = OS_OK;
    OsOutFile out;
    int opened = 0;
    hid_t f = -1, ty = -1, sp = -1, ds = -1, g = -1, rg = -1;
    h5_init();
    OS_CHECK(os_outfile_open(&out, path, 0));
    opened = 1;
    H5_CHECK(f = H5Fcreate(out.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), path, "/", SWEEP_H5_HINT);
    uint32_t ver = SWEEP_H5_VERSION;
    OS_CHECK(h5_write_num_attr(f, "orchsim_sweep_version", H5T_NATIVE_UINT32, H5T_NATIVE_UINT32, &ver, path));
    OS_CHECK(h5_write_str_attr(f, "trace", trace ? trace : "", path));
    hsize_t dim = n;
    H5_CHECK(ty = runrow_type(), path, "/runs", SWEEP_H5_HINT);
    H5_CHECK(sp = H5Screate_simple(1, &dim, NULL), path, "/runs", SWEEP_H5_HINT);
    H5_CHECK(ds = H5Dcreate2(f, "runs", ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path, "/runs", SWEEP_H5_HINT);
    if (n) H5_CHECK(H5Dwrite(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows), path, "/runs", SWEEP_H5_HINT);
    H5_CHECK(g = H5Gcreate2(f, "series", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path, "/series", SWEEP_H5_HINT);
    for (size_t i = 0; i < n; i++) {
        char name[32], obj[64];
        snprintf(name, sizeof name, "run_%05zu", i);
        snprintf(obj, sizeof obj, "/series/%s", name);
        H5_CHECK(rg = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path, obj, SWEEP_H5_HINT);
        OS_CHECK(h5_write_str_attr(rg, "policy", rows[i].policy, path));
        OS_CHECK(h5_write_str_attr(rg, "model", rows[i].model, path));
        OS_CHECK(h5_write_str_attr(rg, "setup", rows[i].setup, path));
        OS_CHECK(h5_write_num_attr(rg, "gpus", H5T_NATIVE_UINT64, H5T_NATIVE_UINT64, &rows[i].gpus, path));
        const RunSeries *s = &series[i];
        OS_CHECK(put_series(rg, "step_s", s->step_s, s->n, path));
        OS_CHECK(put_series(rg, "mfu", s->mfu, s->n, path));
        for (int k = 0; k < SCHEMA_N_PHASES; k++) {
            if (!s->imbalance[k]) continue;
            char dn[48];
            snprintf(dn, sizeof dn, "imbalance_%s", SCHEMA_PHASES[k]);
            OS_CHECK(put_series(rg, dn, s->imbalance[k], s->n, path));
        }
        herr_t r_ = H5Gclose(rg);
        rg = -1;
        H5_CHECK(r_, path, obj, SWEEP_H5_HINT);
    }
    {
        /* each handle is forgotten before its close is checked: a failed close (a full disk)
         * must not be closed a second time under fail: */
        herr_t rg_ = H5Gclose(g), rd_ = H5Dclose(ds);
        g = ds = -1;
        H5_CHECK(rg_, path, "/series", SWEEP_H5_HINT);
        H5_CHECK(rd_, path, "/runs", SWEEP_H5_HINT);
        herr_t rf_ = H5Fclose(f);
        f = -1;
        H5_CHECK(rf_, path, "/", SWEEP_H5_HINT);
    }
    OS_CHECK(os_outfile_commit(&out));
    opened = 0;
fail:
    if (rg >= 0) H5Gclose(rg);
    if (g >= 0) H5Gclose(g);
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (f >= 0) H5Fclose(f);
    if (opened) os_outfile_abort(&out);
    return st;
}
