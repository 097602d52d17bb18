/* helpers.h — shared by the Criterion tests: temp paths and running the orchsim binary. */
#ifndef OS_TEST_HELPERS_H
#define OS_TEST_HELPERS_H

#include <stddef.h>

/* "<build>/testtmp/<name>" with the pid mixed in so parallel test processes do not collide. */
const char *th_tmp(const char *name);
/* Run `orchsim <args>` with stdout/stderr captured into *out (malloc'd, caller frees); returns
 * the exit status (or -1 when it could not run / was killed by a signal). */
int th_run(char **out, const char *args);
/* 1 if the file exists. */
int th_exists(const char *path);

#endif
