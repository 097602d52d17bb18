/* helpers.c — see helpers.h. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
