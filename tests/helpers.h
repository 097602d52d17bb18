/* helpers.h — shared by the Criterion tests: temp paths and running the orchsim binary. */
#ifndef OS_TEST_HELPERS_H
#define OS_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* "<build>/testtmp/<name>" with the pid mixed in so parallel test processes do not collide. */
const char *th_tmp(const char *name);
/* Run `orchsim <args>` with stdout/stderr captured into *out (malloc'd, caller frees); returns
 * the exit status (or -1 when it could not run / was killed by a signal). */
int th_run(char **out, const char *args);
/* 1 if the file exists. */
int th_exists(const char *path);

/* One example of a hand-made trace: text tokens, n_img images of img_len patches and n_aud
 * audio clips of aud_len frames (modalities text, image patch/4, audio frame/2). */
typedef struct {
    uint32_t text;
    uint32_t n_img, img_len;
    uint32_t n_aud, aud_len;
} ThEx;
/* Write th_tmp(name): `steps` copies of the global batch ex[n] drawn for DP dp. Returns the path,
 * or NULL (with the error in os_last_error()). */
const char *th_write_trace(const char *name, const ThEx *ex, uint32_t n, uint32_t dp, uint32_t steps);

#endif
