# validate.gp — predicted vs measured step time per policy, with y = x.
# Reads: datafile (index i-1 = policy i, rows "predicted_s measured_s"), npol, policies,
#   colors, pts (the figures' policy order), title, subtitle, subtitle2, lim (axis upper limit, s).
load scriptdir.'/common.gp'
set xrange [0:lim]
set yrange [0:lim]
set size ratio -1
set xlabel 'predicted step time (s, simulator)'
set ylabel 'measured step time (s, GPUs)'
set title title."\n".subtitle."\n".subtitle2
set key top left
plot x with lines dt 2 lw 1.5 lc rgb '#777777' title 'y = x (perfect prediction)', \
     for [i=1:npol] datafile index (i-1) using 1:2 with points pt int(word(pts,i)) ps 1.2 lc rgb word(colors,i) \
         title word(policies,i)
