/* module.c — see module.h. */
#include "exec/module.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void exec_module_self_dir(char *out, size_t cap) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (!cap) return;
    out[0] = '\0';
    if (n <= 0) return;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(out, cap, "%s", buf);
}

const char *exec_module_hint(const ExecModuleSpec *spec, const char *dlerr) {
    if (!dlerr) return spec->lib_hint;
    if (strstr(dlerr, "GLIBC_") || strstr(dlerr, "GLIBCXX_"))
        return "the module was built against a newer C library than this machine has: build it on an older "
               "system (or on this one)";
    if (strstr(dlerr, "cannot open shared object file")) {
        /* "<missing>: cannot open ...": the module itself or one of its libraries */
        const char *colon = strstr(dlerr, ": cannot open");
        size_t n = colon ? (size_t)(colon - dlerr) : 0;
        if (n >= strlen(spec->file) && !strncmp(colon - strlen(spec->file), spec->file, strlen(spec->file)))
            return "the module file could not be read: rebuild it";
        return spec->lib_hint;
    }
    if (strstr(dlerr, "undefined symbol"))
        return "a library is older than the one the module was built against, or the module and this binary "
               "come from different builds: rebuild both, or point the loader at newer libraries";
    if (strstr(dlerr, "ELF") || strstr(dlerr, "file too short"))
        return "not a module for this machine: rebuild it";
    return spec->lib_hint;
}

static int readable(const char *p) { return p[0] && access(p, R_OK) == 0; }

static OsStatus record(ExecModule *m, OsStatus st, const char *where, const char *field, const char *hint,
                       const char *fmt, const char *arg) {
    m->st = st, m->hint = hint;
    snprintf(m->err, sizeof m->err, fmt, arg);
    return os_fail(st, where, field, hint, "%s", m->err);
}

OsStatus exec_module_load(ExecModule *m, const ExecModuleSpec *spec) {
    char dirs[4][4096], self[3900], looked[2048];
    size_t nd = 0, used = 0;
    if (m->tried) { /* the first attempt's error, word for word */
        if (m->st != OS_OK) return os_fail(m->st, m->path[0] ? m->path : spec->file, spec->what, m->hint, "%s", m->err);
        return OS_OK;
    }
    m->tried = 1;
    const char *env = spec->env ? getenv(spec->env) : NULL;
    if (env && *env) {
        snprintf(m->path, sizeof m->path, "%s", env);
        if (!readable(m->path)) {
            char why[160];
            snprintf(why, sizeof why, "%s names no readable file", spec->env);
            return record(m, OS_ERR_NODEV, m->path, spec->what, "unset it, or give the module's path", "%s", why);
        }
    } else {
        exec_module_self_dir(self, sizeof self);
        if (self[0]) {
            snprintf(dirs[nd++], sizeof dirs[0], "%s", self);
            snprintf(dirs[nd++], sizeof dirs[0], "%.3900s/../lib/orchsim", self);
        }
        if (spec->build_dir && spec->build_dir[0]) snprintf(dirs[nd++], sizeof dirs[0], "%s", spec->build_dir);
        m->path[0] = '\0';
        looked[0] = '\0';
        for (size_t i = 0; i < nd && !m->path[0]; i++) {
            char p[4096 + 256];
            int dup = 0;
            for (size_t j = 0; j < i; j++) dup |= !strcmp(dirs[i], dirs[j]);
            if (dup) continue;
            snprintf(p, sizeof p, "%.4000s/%.200s", dirs[i], spec->file);
            if (readable(p)) snprintf(m->path, sizeof m->path, "%.4000s", p);
            else if (used + strlen(dirs[i]) + 4 < sizeof looked)
                used += (size_t)snprintf(looked + used, sizeof looked - used, "%s%s", i ? ", " : "", dirs[i]);
        }
        if (!m->path[0]) {
            static char hint[256];
            snprintf(hint, sizeof hint, "%s, or set %s to its path", spec->absent ? spec->absent : "build it",
                     spec->env ? spec->env : "the module's variable");
            m->st = OS_ERR_NODEV, m->hint = hint;
            snprintf(m->err, sizeof m->err, "%.64s not found (looked in %.900s)", spec->file, looked[0] ? looked : "nowhere");
            return os_fail(m->st, spec->file, spec->what, hint, "%s", m->err);
        }
    }
    dlerror();
    m->handle = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) {
        const char *e = dlerror();
        snprintf(m->err, sizeof m->err, "dlopen: %s", e ? e : "unknown error");
        m->st = OS_ERR_NODEV, m->hint = exec_module_hint(spec, e);
        return os_fail(m->st, m->path, spec->what, m->hint, "%s", m->err);
    }
    {
        typedef const void *EntryFn(uint32_t abi);
        EntryFn *fn = NULL;
        void *sym = dlsym(m->handle, spec->entry);
        memcpy(&fn, &sym, sizeof fn); /* ISO C: no direct object-to-function pointer cast */
        if (!fn) return record(m, OS_ERR_NODEV, m->path, spec->what, "not an orchsim module: rebuild it",
                               "no entry symbol %s", spec->entry);
        const ExecModuleHead *h = fn(spec->abi);
        if (!h || h->abi != spec->abi || h->size < spec->min_size) {
            char why[160];
            snprintf(why, sizeof why, "speaks module ABI %u (%u bytes), this orchsim needs ABI %u (%u bytes)",
                     h ? h->abi : 0u, h ? h->size : 0u, spec->abi, spec->min_size);
            return record(m, OS_ERR_NODEV, m->path, spec->what, "the module and this binary come from different "
                          "builds: rebuild both", "%s", why);
        }
        m->api = h;
    }
    m->st = OS_OK;
    return OS_OK;
}
