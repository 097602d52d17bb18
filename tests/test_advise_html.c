/* test_advise_html.c — the `advise --html` report: its structure checked in C (one self-contained
 * page: escaped text, the table's rows, figures inlined without their XML prolog, nothing
 * fetched), and, where Debian's chromium is installed, loaded in headless Chromium: no console
 * error, every figure laid out with a non-empty box, every table row there. Without chromium
 * that part is skipped, visibly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/report_html.h"
#include "helpers.h"
#include "sim/policy.h"

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp, "cannot write %s", path);
    fputs(text, fp);
    fclose(fp);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Every "http" in the page is an XML namespace name (never fetched), and nothing is loaded
 * from elsewhere: no src= attribute, no <link>, no url() but to a fragment of the page, no
 * @import; the figures' ids are prefixed per figure. */
static void assert_self_contained(const char *html) {
    for (const char *p = strstr(html, "http"); p; p = strstr(p + 1, "http"))
        cr_assert(!strncmp(p, "http://www.w3.org/", 18), "an external reference: %.60s", p);
    cr_assert_null(strstr(html, " src="), "an element loads a resource");
    cr_assert_null(strstr(html, "<link"), "a <link> element");
    for (const char *p = strstr(html, "url("); p; p = strstr(p + 1, "url("))
        cr_assert(p[4] == '#', "a url() to another resource: %.40s", p);
    /* figures never share an id: each figure's ids carry its own prefix (gnuplot repeats
     * names inside one multiplot figure, which stays local to that figure) */
    for (const char *f = strstr(html, "<svg"); f; f = strstr(f + 1, "<svg")) {
        const char *end = strstr(f, "</svg>");
        cr_assert_not_null(end);
        for (const char *p = strstr(f, " id="); p && p < end; p = strstr(p + 1, " id="))
            cr_assert(p[5] == 'f' && p[6] >= '1' && p[6] <= '9', "an unprefixed id in a figure: %.40s", p);
    }
    cr_assert_null(strstr(html, "@import"), "a CSS @import");
}

Test(report_html, structure_by_hand) {
    const char *svgp = th_tmp("fig.svg");
    write_file(svgp, "<?xml version=\"1.0\" encoding=\"utf-8\"  standalone=\"no\"?>\n"
                     "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n"
                     "<svg width=\"100\" height=\"50\" xmlns=\"http://www.w3.org/2000/svg\"><path d=\"M0 0 L10 10\"/>"
                     "<text x=\"1\" y=\"9\">a &amp; b</text><g id=\"gp\"><use href=\"#gp\"/></g></svg>\n<!-- trailing -->\n");
    RunRow rows[3];
    const char *pol[] = {"none", "post<x>", "oracle"};
    for (int i = 0; i < 3; i++) {
        runrow_init(&rows[i]);
        snprintf(rows[i].policy, sizeof rows[i].policy, "%s", pol[i]);
        snprintf(rows[i].model, sizeof rows[i].model, "tiny");
        rows[i].step_mean_s = 2.0 - 0.5 * i;
        rows[i].imbalance[3] = 1.0 + i;
    }
    rows[1].needs_recompute = 7;
    snprintf(rows[0].command, sizeof rows[0].command, "orchsim advise 'a b.h5' --html x.html");
    AdviseLine diag[1] = {{"floor", "example 5 of step 0 (100 tokens) < share & more"}};
    AdviseLine warn[1] = {{"warning", "post<x>: 7 examples need more activation memory"}};
    const char *paths[] = {svgp}, *caps[] = {"Step <time> per policy"};
    HtmlReport r = {.title = "orchsim advise: a&b", .advice_text = "recommended  post<x>  1.5 s\n",
                    .diag = diag, .n_diag = 1, .warn = warn, .n_warn = 1, .rows = rows, .n_rows = 3,
                    .recommended = "post<x>", .svg_paths = paths, .captions = caps, .n_fig = 1};
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    cr_assert_eq(report_html_emit(fp, &r), OS_OK, "%s", os_last_error());
    fclose(fp);
    cr_assert(!strncmp(buf, "<!DOCTYPE html>\n<html lang=\"en\"", 31), "%.80s", buf);
    cr_assert(strstr(buf, "<meta charset=\"utf-8\">"));
    cr_assert(strstr(buf, "<title>orchsim advise: a&amp;b</title>"));
    /* text is escaped everywhere */
    cr_assert(strstr(buf, "recommended  post&lt;x&gt;  1.5 s"), "advice not escaped");
    cr_assert(strstr(buf, "(100 tokens) &lt; share &amp; more"), "diagnosis not escaped");
    cr_assert(strstr(buf, "<figcaption>Step &lt;time&gt; per policy</figcaption>"));
    cr_assert(strstr(buf, "orchsim advise &#39;a b.h5&#39; --html x.html"), "provenance command not escaped");
    /* the figure inlined as its <svg> element: prolog, doctype and trailing comment dropped */
    cr_assert_eq(count(buf, "<svg"), 1);
    cr_assert_eq(count(buf, "</svg>"), 1);
    cr_assert_null(strstr(buf, "<?xml"), "the XML prolog was inlined");
    cr_assert_null(strstr(buf, "<!DOCTYPE svg"), "the SVG doctype was inlined");
    cr_assert_null(strstr(buf, "trailing"), "text after </svg> was inlined");
    cr_assert(strstr(buf, "<text x=\"1\" y=\"9\">a &amp; b</text>"), "the SVG body changed");
    cr_assert(strstr(buf, "<g id=\"f1-gp\"><use href=\"#f1-gp\"/></g>"), "ids and references prefixed per figure");
    /* the table: one body row per run, the recommended one marked, feasibility shown */
    cr_assert_eq(count(buf, "<tr class=\"recommended\">"), 1);
    cr_assert_eq(count(buf, "<tr class=\"oracle\">"), 1);
    cr_assert_eq(count(buf, "</tr>"), 4, "header + 3 rows");
    cr_assert(strstr(buf, "<th>imb:llm</th>"), "the phase the rows have");
    cr_assert_null(strstr(buf, "<th>imb:image</th>"), "no column for a phase no row has");
    cr_assert(strstr(buf, "7 need --recompute"));
    cr_assert(strstr(buf, "data-figures-rendered=\"0\""), "the counters start at 0");
    assert_self_contained(buf);
    free(buf);
    /* an SVG file without an <svg> element is an error naming it */
    write_file(svgp, "<html>not a figure</html>");
    char *s = NULL;
    os_clear_error();
    cr_assert_eq(report_html_svg(&s, svgp), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), svgp), "%s", os_last_error());
    os_clear_error();
    cr_assert_eq(report_html_svg(&s, "/nonexistent/fig.svg"), OS_ERR_IO);
    os_clear_error();
}

static int have(const char *prog) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

Test(report_html, advise_html_opens_in_headless_chromium, .timeout = 300) {
    char args[4096], *out = NULL;
    const char *tr = th_tmp("html.h5"), *html = th_tmp("report.html");
    snprintf(args, sizeof args, "gen --profile tri-modal-mix --seed 7 --steps 3 --global-batch 64 --dp 16 -o %s", tr);
    cr_assert_eq(th_run(&out, args), 0, "gen failed: %s", out);
    free(out);
    snprintf(args, sizeof args, "advise %s --model tiny --no-progress --html %s", tr, html);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    char *page = slurp(html);
    cr_assert_not_null(page, "no report written");
    int figs = ORCHSIM_GNUPLOT[0] && access(ORCHSIM_GNUPLOT, X_OK) == 0;
    cr_assert_eq(count(page, "<figure"), figs ? 3u : 0u, "policies, imbalance CDF, timeline");
    cr_assert_eq(count(page, "<svg"), count(page, "</svg>"));
    cr_assert(strstr(page, "<table id=\"compare\">"));
    cr_assert(strstr(page, "<section id=\"advice\">") && strstr(page, "<section id=\"diagnosis\">"));
    cr_assert(strstr(page, "<section id=\"provenance\">"));
    assert_self_contained(page);
    free(page);
    if (!have("chromium"))
        cr_skip_test("chromium not installed (apt-get install chromium): the report's structure was checked in C only");
    char prof[1200], dom[1200], log[1200], cmd[8192];
    snprintf(prof, sizeof prof, "%s", th_tmp("chromium-profile"));
    snprintf(dom, sizeof dom, "%s", th_tmp("report.dom"));
    snprintf(log, sizeof log, "%s", th_tmp("report.log"));
    /* --no-sandbox: the tests run as root in CI; a private profile; the page's own script
     * records what laid out in attributes of <html>, which --dump-dom shows */
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=%s "
             "--enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom 'file://%s' > %s 2> %s",
             prof, html, dom, log);
    rc = system(cmd);
    char *d = slurp(dom), *lg = slurp(log);
    cr_assert_eq(rc, 0, "chromium failed (%d):\n%s", rc, lg ? lg : "");
    cr_assert_not_null(d);
    char want[128];
    snprintf(want, sizeof want, "data-figures-rendered=\"%d\"", figs ? 3 : 0);
    cr_assert(strstr(d, want), "not every figure rendered: %.300s\n%s", d, lg ? lg : "");
    snprintf(want, sizeof want, "data-table-rows=\"%u\"", policy_count() + 1);
    cr_assert(strstr(d, want), "the table did not render every row: %.300s", d);
    /* no console error (Chromium logs them as CONSOLE lines) */
    for (const char *p = lg ? strstr(lg, "CONSOLE") : NULL; p; p = strstr(p + 1, "CONSOLE"))
        cr_assert(!strstr(p, "Uncaught") || strchr(p, '\n') < strstr(p, "Uncaught"), "console error: %.200s", p);
    cr_assert(!lg || !strstr(lg, "Uncaught"), "a script error:\n%s", lg);
    free(d);
    free(lg);
}
