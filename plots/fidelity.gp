# fidelity.gp — predicted against published tokens/s/GPU (orchsim fidelity), log-log, y = x
# and the +-10% / +-20% bands, one colour and point type per model.
# Reads: datafile (index k-1 = model k, rows "published predicted"), nmod, models, colors,
#   lo, hi (axis range), title, subtitle.
load scriptdir.'/common.gp'
set logscale xy
set xrange [lo:hi]
set yrange [lo:hi]
set size ratio -1
set format x '%.0s%c'
set format y '%.0s%c'
set xlabel 'published tokens/s/GPU (llm-foundry, H100)'
set ylabel 'predicted tokens/s/GPU (orchsim)'
set title title."\n".subtitle
set key top left
plot x with lines lw 1.5 lc rgb '#333333' title 'y = x', \
     1.1*x with lines dt 2 lc rgb '#999999' title '+-10%', 0.9*x with lines dt 2 lc rgb '#999999' notitle, \
     1.2*x with lines dt 3 lc rgb '#bbbbbb' title '+-20%', 0.8*x with lines dt 3 lc rgb '#bbbbbb' notitle, \
     for [k=1:nmod] datafile index (k-1) using 1:2 with points pt (4+k) ps 1.3 lc rgb word(colors,k) \
         title word(models,k)
