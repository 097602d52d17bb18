/* trace_check.c — the structural checks trace_open makes before trusting anything in a file
 * (h5check.h). Each check runs before the HDF5 call it protects: the file header before
 * H5Fopen (only the checksummed 1.10 format is opened at all), the object header version and
 * link kind before a dataset is opened, an attribute's class, size and element count before it
 * is read, a compound's members, offsets and total size before any row is converted, and a
 * table's layout, filters, chunk size and storage before a row count is believed. Every
 * refusal names the file and the object.
 * Why so much: libhdf5 1.10.8 crashes on corrupt metadata of the 1.8 format (compound
 * conversion with a member outside its type, the filter pipeline, attribute iteration: the
 * fuzz-crash corpus in traces/fuzz/corpus-crashes/), and trusts row counts that unwritten
 * chunks or a deflate bomb make cheap to fake. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "traces/h5check.h"
#include "traces/trace.h"

#define HINT_REGEN "regenerate the trace with `orchsim gen` or `orchsim import`"
#define HINT_FORMAT "orchsim reads the HDF5 1.10 format with checksums (traces/README.md): " HINT_REGEN
/* deflate cannot shrink data by more than 1032:1 (a 258-byte match per ~2 bits); the margin
 * covers zlib's headers and Fletcher-32's 4 bytes per chunk */
#define DEFLATE_MAX_RATIO 1100u

OsStatus th5_check_file(const char *path, uint64_t *file_size) {
    OsStatus st = OS_OK;
    struct stat sb;
    int fd = -1;
    unsigned char hdr[9];
    if (stat(path, &sb) != 0) {
        int e = errno;
        if (e == ENOENT)
            OS_FAIL(OS_ERR_IO, path, NULL, "check the path, or make one with `orchsim gen`", "no such file");
        if (e == ELOOP) OS_FAIL(OS_ERR_IO, path, NULL, "fix the symbolic link", "symbolic link loop");
        if (e == ENAMETOOLONG) OS_FAIL(OS_ERR_IO, path, NULL, "use a shorter path", "path too long");
        if (e == EACCES)
            OS_FAIL(OS_ERR_IO, path, NULL, "check the permissions of its directories", "permission denied");
        OS_FAIL(OS_ERR_IO, path, NULL, "check the path", "cannot read: %s", strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) OS_FAIL(OS_ERR_IO, path, NULL, "give the trace file inside it", "is a directory");
    if (!S_ISREG(sb.st_mode)) OS_FAIL(OS_ERR_IO, path, NULL, "traces are regular HDF5 files", "not a regular file");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == EACCES)
            OS_FAIL(OS_ERR_IO, path, NULL, "check the file's permissions (chmod u+r)", "permission denied");
        OS_FAIL(OS_ERR_IO, path, NULL, NULL, "cannot open: %s", strerror(e));
    }
    ssize_t n = read(fd, hdr, sizeof hdr);
    if (n < 0) {
        int e = errno;
        OS_FAIL(OS_ERR_IO, path, NULL, NULL, "cannot read: %s", strerror(e));
    }
    if (n < 9 || memcmp(hdr, "\211HDF\r\n\032\n", 8) != 0)
        OS_FAIL(OS_ERR_FORMAT, path, NULL, "traces are HDF5 files written by `orchsim gen` or `orchsim import`",
                "not an HDF5 file (no HDF5 signature at byte 0)");
    if (hdr[8] < 2)
        OS_FAIL(OS_ERR_FORMAT, path, NULL, HINT_FORMAT,
                "HDF5 superblock version %u: the 1.8 file format has no metadata checksums (an orchsim "
                "trace of format version 1, or another writer's default)", hdr[8]);
    if (hdr[8] > 3)
        OS_FAIL(OS_ERR_FORMAT, path, NULL, "this orchsim's HDF5 (1.10) cannot read it", "HDF5 superblock version %u",
                hdr[8]);
    *file_size = (uint64_t)sb.st_size;
fail:
    if (fd >= 0) close(fd);
    return st;
}

OsStatus th5_check_object(hid_t file, const char *path, const char *name, int want_dataset) {
    OsStatus st = OS_OK;
    H5O_info_t oi;
    if (strcmp(name, "/") != 0) {
        htri_t ex = H5Lexists(file, name, H5P_DEFAULT);
        H5_CHECK(ex, path, name, NULL);
        if (!ex) OS_FAIL(OS_ERR_FORMAT, path, name, HINT_REGEN, "dataset is missing");
        H5L_info_t li;
        H5_CHECK(H5Lget_info(file, name, &li, H5P_DEFAULT), path, name, NULL);
        if (li.type != H5L_TYPE_HARD)
            OS_FAIL(OS_ERR_FORMAT, path, name, HINT_REGEN, "a %s link: traces hold their tables themselves",
                    li.type == H5L_TYPE_SOFT ? "soft" : "external");
    }
    if (H5Oget_info_by_name2(file, name, &oi, H5O_INFO_BASIC | H5O_INFO_HDR | H5O_INFO_NUM_ATTRS, H5P_DEFAULT) < 0) {
        if (os_verbose()) H5Eprint2(H5E_DEFAULT, stderr);
        OS_FAIL(OS_ERR_FORMAT, path, name, "the file is truncated or corrupt: " HINT_REGEN, "cannot read its object header");
    }
    if (want_dataset && oi.type != H5O_TYPE_DATASET) OS_FAIL(OS_ERR_FORMAT, path, name, HINT_REGEN, "not a dataset");
    if (!want_dataset && oi.type != H5O_TYPE_GROUP) OS_FAIL(OS_ERR_FORMAT, path, name, HINT_REGEN, "not a group");
    if (oi.hdr.version < 2)
        OS_FAIL(OS_ERR_FORMAT, path, name, HINT_FORMAT, "object header version %u has no checksum", oi.hdr.version);
    if (oi.num_attrs > 64) OS_FAIL(OS_ERR_FORMAT, path, name, HINT_REGEN, "%llu attributes", (unsigned long long)oi.num_attrs);
fail:
    return st;
}

/* Open attribute `name` of obj and check it holds exactly one element. */
static OsStatus open_attr(hid_t obj, const char *path, const char *field, const char *name, int required, hid_t *at,
                          hid_t *ty) {
    OsStatus st = OS_OK;
    hid_t sp = -1;
    *at = *ty = -1;
    htri_t ex = H5Aexists(obj, name);
    H5_CHECK(ex, path, field, NULL);
    if (!ex) {
        if (required) OS_FAIL(OS_ERR_FORMAT, path, field, "is this an orchsim trace?", "missing");
        return OS_DONE;
    }
    H5_CHECK(*at = H5Aopen(obj, name, H5P_DEFAULT), path, field, NULL);
    H5_CHECK(sp = H5Aget_space(*at), path, field, NULL);
    H5S_class_t sc = H5Sget_simple_extent_type(sp);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (!(sc == H5S_SCALAR || (sc == H5S_SIMPLE && np == 1)))
        OS_FAIL(OS_ERR_FORMAT, path, field, HINT_REGEN, "holds %lld values, expected exactly one",
                sc == H5S_NULL ? 0LL : (long long)np);
    H5_CHECK(*ty = H5Aget_type(*at), path, field, NULL);
fail:
    if (sp >= 0) H5Sclose(sp);
    if (st != OS_OK) {
        if (*ty >= 0) H5Tclose(*ty);
        if (*at >= 0) H5Aclose(*at);
        *at = *ty = -1;
    }
    return st;
}

OsStatus th5_read_str_attr(hid_t obj, const char *path, const char *objname, const char *name, char *buf, size_t cap) {
    OsStatus st = OS_OK;
    hid_t at = -1, ty = -1, mt = -1;
    char field[96];
    snprintf(field, sizeof field, "%s attribute '%s'", objname, name);
    OS_CHECK(open_attr(obj, path, field, name, 1, &at, &ty));
    size_t sz = H5Tget_size(ty);
    if (H5Tget_class(ty) != H5T_STRING || H5Tis_variable_str(ty) != 0 || sz < 1 || sz >= cap)
        OS_FAIL(OS_ERR_FORMAT, path, field, HINT_REGEN, "expected a fixed string shorter than %zu bytes", cap);
    H5_CHECK(mt = H5Tcopy(H5T_C_S1), path, field, NULL);
    H5_CHECK(H5Tset_size(mt, cap), path, field, NULL);
    H5_CHECK(H5Tset_strpad(mt, H5T_STR_NULLTERM), path, field, NULL);
    memset(buf, 0, cap);
    H5_CHECK(H5Aread(at, mt, buf), path, field, NULL);
    buf[cap - 1] = '\0';
fail:
    if (mt >= 0) H5Tclose(mt);
    if (ty >= 0) H5Tclose(ty);
    if (at >= 0) H5Aclose(at);
    return st;
}

OsStatus th5_read_uint_attr(hid_t obj, const char *path, const char *objname, const char *name, uint64_t *v) {
    OsStatus st = OS_OK;
    hid_t at = -1, ty = -1;
    char field[96];
    snprintf(field, sizeof field, "%s attribute '%s'", objname, name);
    OS_CHECK(open_attr(obj, path, field, name, 1, &at, &ty));
    if (H5Tget_class(ty) != H5T_INTEGER || H5Tget_size(ty) > 8 || H5Tget_sign(ty) != H5T_SGN_NONE)
        OS_FAIL(OS_ERR_FORMAT, path, field, HINT_REGEN, "expected an unsigned integer");
    unsigned long long x = 0;
    H5_CHECK(H5Aread(at, H5T_NATIVE_ULLONG, &x), path, field, NULL);
    *v = x;
fail:
    if (ty >= 0) H5Tclose(ty);
    if (at >= 0) H5Aclose(at);
    return st;
}

OsStatus th5_read_uint_array_attr(hid_t obj, const char *path, const char *objname, const char *name, uint64_t *v,
                                  uint64_t n, int *present) {
    OsStatus st = OS_OK;
    hid_t at = -1, ty = -1, sp = -1;
    char field[96];
    *present = 0;
    snprintf(field, sizeof field, "%s attribute '%s'", objname, name);
    htri_t ex = H5Aexists(obj, name);
    H5_CHECK(ex, path, field, NULL);
    if (!ex) return OS_OK;
    H5_CHECK(at = H5Aopen(obj, name, H5P_DEFAULT), path, field, NULL);
    H5_CHECK(sp = H5Aget_space(at), path, field, NULL);
    hsize_t dims[1] = {0};
    if (H5Sget_simple_extent_type(sp) != H5S_SIMPLE || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, dims, NULL) != 1 || dims[0] != n)
        OS_FAIL(OS_ERR_FORMAT, path, field, HINT_REGEN, "expected a 1-D array of %llu values (one per modality)",
                (unsigned long long)n);
    H5_CHECK(ty = H5Aget_type(at), path, field, NULL);
    if (H5Tget_class(ty) != H5T_INTEGER || H5Tget_size(ty) > 8 || H5Tget_sign(ty) != H5T_SGN_NONE)
        OS_FAIL(OS_ERR_FORMAT, path, field, HINT_REGEN, "expected unsigned integers");
    unsigned long long buf[TRACE_MAX_MODALITIES] = {0};
    if (n > TRACE_MAX_MODALITIES) OS_FAIL(OS_ERR_FORMAT, path, field, HINT_REGEN, "too many values");
    H5_CHECK(H5Aread(at, H5T_NATIVE_ULLONG, buf), path, field, NULL);
    for (uint64_t i = 0; i < n; i++) v[i] = buf[i];
    *present = 1;
fail:
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (at >= 0) H5Aclose(at);
    return st;
}

/* The compound type: exactly the spec's members, integers of the exact width and sign,
 * strings of the exact size, every member inside the type, none overlapping, and the total
 * size equal to the packed size (what the writer makes). */
static OsStatus check_type(hid_t ty, const char *path, const Th5TableSpec *spec) {
    OsStatus st = OS_OK;
    hid_t mty = -1;
    const char *obj = spec->dataset;
    size_t packed = 0, total, off[8], sz[8];
    if (H5Tget_class(ty) != H5T_COMPOUND) OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "expected a compound (table) type");
    for (int i = 0; i < spec->n_fields; i++) packed += spec->fields[i].size;
    int nm = H5Tget_nmembers(ty);
    H5_CHECK(nm, path, obj, NULL);
    total = H5Tget_size(ty);
    for (int i = 0; i < spec->n_fields; i++) {
        const Th5Field *f = &spec->fields[i];
        int idx = H5Tget_member_index(ty, f->name);
        if (idx < 0) OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "field '%s' is missing", f->name);
        H5_CHECK(mty = H5Tget_member_type(ty, (unsigned)idx), path, obj, NULL);
        H5T_class_t c = H5Tget_class(mty);
        size_t s = H5Tget_size(mty);
        if (f->cls == H5T_INTEGER) {
            if (c != H5T_INTEGER || s != f->size || H5Tget_sign(mty) != H5T_SGN_NONE ||
                H5Tget_precision(mty) != 8 * f->size || H5Tget_offset(mty) != 0)
                OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "field '%s' must be an unsigned %zu-bit integer", f->name,
                        8 * f->size);
        } else if (c != H5T_STRING || H5Tis_variable_str(mty) != 0 || s != f->size) {
            OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "field '%s' must be a fixed string of %zu bytes", f->name,
                    f->size);
        }
        H5Tclose(mty);
        mty = -1;
        off[i] = H5Tget_member_offset(ty, (unsigned)idx);
        sz[i] = s;
        if (off[i] > total || s > total - off[i])
            OS_FAIL(OS_ERR_FORMAT, path, obj, "the file is corrupt: " HINT_REGEN,
                    "field '%s' lies at bytes [%zu, %zu) of a %zu-byte row", f->name, off[i], off[i] + s, total);
        for (int j = 0; j < i; j++)
            if (off[i] < off[j] + sz[j] && off[j] < off[i] + sz[i])
                OS_FAIL(OS_ERR_FORMAT, path, obj, "the file is corrupt: " HINT_REGEN, "fields '%s' and '%s' overlap",
                        spec->fields[j].name, f->name);
    }
    if (nm != spec->n_fields)
        OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "%d fields, expected %d", nm, spec->n_fields);
    if (total != packed)
        OS_FAIL(OS_ERR_FORMAT, path, obj, "the file is corrupt: " HINT_REGEN, "rows of %zu bytes, expected %zu (packed)",
                total, packed);
fail:
    if (mty >= 0) H5Tclose(mty);
    return st;
}

/* Layout, filters, chunk size; returns the chunk's rows (0 when not chunked). */
static OsStatus check_layout(hid_t ds, const char *path, const char *obj, size_t row, hsize_t *chunk_rows,
                             H5D_layout_t *layout, int *deflate) {
    OsStatus st = OS_OK;
    hid_t dcpl = -1;
    *chunk_rows = 0;
    *deflate = 0;
    *layout = H5D_LAYOUT_ERROR;
    H5_CHECK(dcpl = H5Dget_create_plist(ds), path, obj, NULL);
    *layout = H5Pget_layout(dcpl);
    if (*layout != H5D_CHUNKED && *layout != H5D_CONTIGUOUS && *layout != H5D_COMPACT)
        OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "a virtual dataset: traces hold their rows themselves");
    int ne = H5Pget_external_count(dcpl);
    H5_CHECK(ne, path, obj, NULL);
    if (ne > 0) OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "rows stored in %d external file(s)", ne);
    int nf = H5Pget_nfilters(dcpl);
    H5_CHECK(nf, path, obj, NULL);
    if (nf > 3) OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "%d filters (orchsim uses shuffle, deflate, fletcher32)", nf);
    for (int i = 0; i < nf; i++) {
        unsigned flags = 0, cd[8] = {0}, fcfg = 0;
        size_t ncd = 8;
        char fname[64];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof fname, fname, &fcfg);
        H5_CHECK(id, path, obj, NULL);
        int ok = (id == H5Z_FILTER_SHUFFLE && (ncd == 0 || (ncd == 1 && cd[0] == row))) ||
                 (id == H5Z_FILTER_DEFLATE && ncd == 1 && cd[0] <= 9) || (id == H5Z_FILTER_FLETCHER32 && ncd == 0);
        if (!ok)
            OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "filter %d with %zu parameters is not one orchsim writes",
                    (int)id, ncd);
        if (H5Zfilter_avail(id) <= 0) OS_FAIL(OS_ERR_FORMAT, path, obj, "this HDF5 lacks it", "filter %d unavailable", (int)id);
        *deflate |= id == H5Z_FILTER_DEFLATE;
    }
    if (*layout == H5D_CHUNKED) {
        hsize_t cdims[2] = {0, 0};
        int rank = H5Pget_chunk(dcpl, 2, cdims);
        if (rank != 1 || cdims[0] < 1) OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "chunks must be 1-D rows");
        if (cdims[0] > TRACE_MAX_CHUNK_BYTES / row)
            OS_FAIL(OS_ERR_FORMAT, path, obj, "rewrite it with --chunk-rows 65536",
                    "chunks of %llu rows (%llu MiB) exceed the reader's %u MiB", (unsigned long long)cdims[0],
                    (unsigned long long)(cdims[0] * row >> 20), TRACE_MAX_CHUNK_BYTES >> 20);
        *chunk_rows = cdims[0];
    }
fail:
    if (dcpl >= 0) H5Pclose(dcpl);
    return st;
}

OsStatus th5_check_table(hid_t ds, const char *path, Th5Table tb, uint64_t file_size, uint64_t *rows,
                         size_t *chunk_bytes) {
    OsStatus st = OS_OK;
    hid_t ty = -1, sp = -1;
    const Th5TableSpec *spec = &TH5_TABLES[tb];
    const char *obj = spec->dataset;
    H5_CHECK(ty = H5Dget_type(ds), path, obj, NULL);
    OS_CHECK(check_type(ty, path, spec));
    size_t row = H5Tget_size(ty);
    H5_CHECK(sp = H5Dget_space(ds), path, obj, NULL);
    if (H5Sget_simple_extent_type(sp) != H5S_SIMPLE || H5Sget_simple_extent_ndims(sp) != 1)
        OS_FAIL(OS_ERR_FORMAT, path, obj, HINT_REGEN, "expected a 1-D table, got rank %d", H5Sget_simple_extent_ndims(sp));
    hsize_t n = 0;
    H5_CHECK(H5Sget_simple_extent_dims(sp, &n, NULL), path, obj, NULL);
    hsize_t crow = 0;
    H5D_layout_t layout = H5D_LAYOUT_ERROR;
    int deflate = 0;
    OS_CHECK(check_layout(ds, path, obj, row, &crow, &layout, &deflate));
    /* rows against storage: what the file can actually hold, before anything trusts n */
    uint64_t raw;
    if (__builtin_mul_overflow((uint64_t)n, (uint64_t)row, &raw))
        OS_FAIL(OS_ERR_FORMAT, path, obj, "the file is corrupt: " HINT_REGEN, "%llu rows", (unsigned long long)n);
    uint64_t stored = H5Dget_storage_size(ds);
    if (stored > file_size)
        OS_FAIL(OS_ERR_FORMAT, path, obj, "the file is truncated or corrupt: " HINT_REGEN,
                "claims %llu bytes of storage in a %llu-byte file", (unsigned long long)stored,
                (unsigned long long)file_size);
    if (layout == H5D_CHUNKED) {
        hsize_t have = 0, want = (n + crow - 1) / crow;
        H5_CHECK(H5Dget_num_chunks(ds, sp, &have), path, obj, NULL); /* 1.10.8 refuses H5S_ALL */
        if (have != want)
            OS_FAIL(OS_ERR_FORMAT, path, obj, "the file was not completely written: " HINT_REGEN,
                    "%llu rows need %llu chunks, %llu are stored (unwritten rows would read as zeros)",
                    (unsigned long long)n, (unsigned long long)want, (unsigned long long)have);
    }
    uint64_t bound = stored;
    if (deflate && __builtin_mul_overflow(stored, (uint64_t)DEFLATE_MAX_RATIO, &bound)) bound = UINT64_MAX;
    if (raw > bound)
        OS_FAIL(OS_ERR_FORMAT, path, obj, "the file is truncated or corrupt: " HINT_REGEN,
                "%llu rows (%llu bytes) cannot come from %llu bytes of storage", (unsigned long long)n,
                (unsigned long long)raw, (unsigned long long)stored);
    *rows = n;
    *chunk_bytes = (size_t)(crow * row);
fail:
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    return st;
}
