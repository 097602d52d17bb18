/* report_html.h — `orchsim advise --html`: one self-contained HTML file that opens offline.
 * Implements: the page (the advice as text, the diagnosis and warnings as lists, the compare
 *   table from run-level rows, the figures inlined as SVG elements, the provenance), HTML
 *   escaping, and reading a gnuplot SVG file's <svg> element for inlining. A small inline script
 *   counts the figures that laid out with a non-empty box and the table's rows into
 *   data-figures-rendered / data-table-rows on <html>, so a headless browser's DOM dump shows
 *   that they rendered. Nothing is fetched: no external script, style, font or image.
 * Does not: run replays or gnuplot (cli/cmd_advise.c does), or decide anything.
 * Source: DESIGN.md §7-§8; analysis/FORMATS.md (the run-level columns shown). */
#ifndef OS_ANALYSIS_REPORT_HTML_H
#define OS_ANALYSIS_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

#include "analysis/advise.h"
#include "analysis/runtable.h"

typedef struct {
    const char *title;                  /* page title and heading */
    const char *advice_text;            /* the advice block as printed on stdout (preformatted) */
    const AdviseLine *diag;             /* [n_diag] diagnosis lines */
    size_t n_diag;
    const AdviseLine *warn;             /* [n_warn] feasibility warnings */
    size_t n_warn;
    const RunRow *rows;                 /* [n_rows] the compare table, oracle row included */
    size_t n_rows;
    const char *recommended;            /* the row to highlight (policy name), or NULL */
    const char *const *svg_paths;       /* [n_fig] gnuplot SVG files to inline */
    const char *const *captions;        /* [n_fig] */
    size_t n_fig;
    const char *no_figures;             /* why there are no figures (gnuplot missing), or NULL */
} HtmlReport;

/* Write the page to path (atomic: temporary name, then rename; "-" = stdout). Errors name the
 * file (an SVG that cannot be read included). */
OsStatus report_html_write(const char *path, const HtmlReport *r);
/* The page itself onto fp (report_html_write's body; tests call it on a memory stream). */
OsStatus report_html_emit(FILE *fp, const HtmlReport *r);
/* *out (malloc'd) = the file's <svg ...> ... </svg> element: the XML prolog, doctype and
 * comments before it dropped. OS_ERR_FORMAT naming the file when there is no <svg element. */
OsStatus report_html_svg(char **out, const char *path);
/* s with & < > " ' escaped onto fp. */
void report_html_escape(FILE *fp, const char *s);

#endif
