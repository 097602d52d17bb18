/* helpers.c — see helpers.h. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "traces/trace.h"

const char *th_tmp(const char *name) {
    static _Thread_local char buf[8][1024];
    static _Thread_local int k;
    char *b = buf[k++ & 7];
    snprintf(b, 1024, "%s/%ld-%s", ORCHSIM_TEST_TMP, (long)getpid(), name);
    return b;
}

int th_run(char **out, const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", ORCHSIM_BIN, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        pclose(p);
        return -1;
    }
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (cap - n < 1024) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    buf[n] = '\0';
    int rc = pclose(p);
    if (out) *out = buf; else free(buf);
    if (rc == -1 || !WIFEXITED(rc)) return -1;
    return WEXITSTATUS(rc);
}

int th_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static const TraceModality TH_MODS[3] = {{"text", "token", 1}, {"image", "patch", 4}, {"audio", "frame", 2}};

const char *th_write_trace(const char *name, const ThEx *ex, uint32_t n, uint32_t dp, uint32_t steps) {
    const char *path = th_tmp(name);
    TraceWriter *w = NULL;
    TraceProvenance prov = {"test", "tests/helpers.c"};
    if (trace_writer_create(&w, path, TH_MODS, 3, &prov, 0) != OS_OK) return NULL;
    TraceStep s;
    trace_step_init(&s);
    int ok = 1;
    for (uint32_t k = 0; k < steps && ok; k++) {
        s.n_examples = s.n_items = 0;
        s.dp = dp;
        s.index = k;
        for (uint32_t i = 0; i < n && ok; i++) {
            TraceItem it[16];
            uint32_t m = 0;
            for (uint32_t a = 0; a < ex[i].n_img && m < 16; a++) it[m++] = (TraceItem){ex[i].img_len, 1};
            for (uint32_t a = 0; a < ex[i].n_aud && m < 16; a++) it[m++] = (TraceItem){ex[i].aud_len, 2};
            ok = trace_step_push(&s, ex[i].text, i, it, m) == OS_OK;
        }
        ok = ok && trace_writer_add_step(w, &s) == OS_OK;
    }
    trace_step_free(&s);
    if (trace_writer_close(w) != OS_OK) ok = 0;
    return ok ? path : NULL;
}
