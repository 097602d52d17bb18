/* fuzz_common.h — shared by the libFuzzer targets: inputs as memory files where the reader
 * allows (HDF5 needs a real path: realpath() of /proc/self/fd/N fails), and a private scratch
 * directory for every file a target writes, whose leftovers from dead processes (a crash or a
 * fork-mode kill) are removed when the next fuzz process starts; run.sh removes it at the end. */
#ifndef OS_FUZZ_COMMON_H
#define OS_FUZZ_COMMON_H

#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes as an anonymous memory file; *path = "/proc/self/fd/N". Returns the fd or -1. */
static int fuzz_memfile(const unsigned char *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("orchsim-fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* "$TMPDIR/orchsim-fuzz" (created), after removing entries "<pid>-..." of dead processes.
 * Files a target writes there must be named "<its pid>-...". */
static const char *fuzz_scratch(void) {
    static char dir[512];
    if (dir[0]) return dir;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/orchsim-fuzz", t && *t ? t : "/tmp");
    mkdir(dir, 0700);
    DIR *d = opendir(dir);
    if (!d) return dir;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = strtol(e->d_name, NULL, 10);
        if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM)) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    return dir;
}

/* Bytes written to "<scratch>/<pid>-<name>"; returns 0 on success. */
static int fuzz_scratch_file(const unsigned char *data, size_t size, const char *name, char *path, size_t cap) {
    snprintf(path, cap, "%s/%ld-%s", fuzz_scratch(), (long)getpid(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, size, f) == size;
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : -1;
}

#endif
