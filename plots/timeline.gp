# timeline.gp — per-rank timeline of one step: ranks as rows, spans coloured by phase, waiting
# (idle) in light grey, communication in purple; one or two panels on the same time axis. The
# slowest and the fastest rank are always among the rows, labelled in the ytics and marked at
# the right end of their row.
# Reads: npanel, data1, data2 (rows "row start_s end_s rgb_int"), marks1, marks2 (rows
#   "row \"label\""), title1, title2 (policy, step, model, GPUs), sub1, sub2 (which ranks), yt1, yt2 ("('0 (n0)' 0, ...)":
#   rank labels per row), ylab (the axis: DP ranks, or pipeline workers "s<stage> r<DP rank>"), nrows1, nrows2, title, xmax (s), nkey, keynames, keycolors (legend).
load scriptdir.'/common.gp'
set multiplot layout npanel,1 title title
set xrange [0:xmax]
set grid xtics noytics
# one legend column, and the same plot area in every panel (gnuplot would otherwise wrap the
# legend of a shorter panel into two columns and narrow its time axis)
set key at screen 0.995, graph 1.0 right top vertical maxrows 20
set lmargin at screen 0.25
set rmargin at screen 0.76
set ylabel ylab
set style textbox opaque noborder
do for [p=1:npanel] {
    f = (p == 1 ? data1 : data2)
    m = (p == 1 ? marks1 : marks2)
    nr = (p == 1 ? nrows1 : nrows2)
    set yrange [nr-0.5:-0.5]
    eval 'set ytics '.(p == 1 ? yt1 : yt2)
    set ytics scale 0 font ',9'
    set title (p == 1 ? title1."\n".sub1 : title2."\n".sub2)
    if (p == npanel) { set xlabel 'time from the start of the step (s)' } else { unset xlabel }
    if (p > 1) { unset key } # one legend, beside the first panel: the colours are the same in all
    plot f using (($2+$3)/2):1:(($3-$2)/2):(0.42):4 with boxxyerror fs solid 1.0 noborder lc rgb variable notitle, \
         m using (xmax*0.995):1:2 with labels right boxed font ',9' tc rgb '#B00000' notitle, \
         for [k=1:nkey] keyentry with boxes fs solid 1.0 lc rgb word(keycolors,k) title word(keynames,k)
}
unset multiplot
