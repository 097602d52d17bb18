# common.gp — terminal and house style shared by every orchsim figure (loaded first by each).
# Reads: term ('pngcairo' | 'svg' | 'pdfcairo'), outfile, w, h (pixels; pdf: w/100 x h/100 in).
# Text is noenhanced everywhere: policy and file names contain '_' and '-' that enhanced mode
# would turn into subscripts.
if (!exists('term')) term = 'pngcairo'
if (!exists('w')) w = 1200
if (!exists('h')) h = 800
if (term eq 'pdfcairo') {
    set terminal pdfcairo size (w/100.0),(h/100.0) font 'Sans,7' noenhanced
} else {
    if (term eq 'svg') {
        set terminal svg size w,h font 'Sans,13' noenhanced background rgb 'white'
    } else {
        set terminal pngcairo size w,h font 'Sans,13' noenhanced background rgb 'white'
    }
}
set output outfile
set border 3 lw 1.2
set tics nomirror out
set grid back lc rgb '#e4e4e4' lw 1
set key noenhanced box lc rgb '#bbbbbb' opaque Left reverse samplen 2.5
set datafile missing '?'
# Dash types 11-14 for the policies beyond gnuplot's five (analysis/plot.c POLICY_STYLES).
set dashtype 11 (8,4,2,4)
set dashtype 12 (2,3)
set dashtype 13 (12,3,3,3)
set dashtype 14 (6,2,6,6)
