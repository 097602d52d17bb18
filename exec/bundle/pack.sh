#!/usr/bin/env bash
# pack.sh — assemble the gpu-bundle folder (`make gpu-bundle`) from a static build: the orchsim
# binary (HDF5, GSL, szip/libaec and zlib linked in, no MPI), the GPU module (static cudart;
# cuBLAS and NCCL come from the GPU machine's pip wheels), a small trace, run.sh and a README.
# Fails, naming each file and its size, when the folder would exceed BUNDLE_MAX_MIB (48) MiB,
# and when the binary or the module still needs a library a bare GPU machine lacks.
# usage: exec/bundle/pack.sh BUILD_DIR OUT_DIR
set -euo pipefail
BUILD=${1:?usage: pack.sh BUILD_DIR OUT_DIR}
OUTB=${2:?usage: pack.sh BUILD_DIR OUT_DIR}
MAX_MIB=${BUNDLE_MAX_MIB:-48}
MAX_KIB=${BUNDLE_MAX_KIB:-$(( MAX_MIB * 1024 ))}   # tests set a KiB limit
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "gpu-bundle: error: $*" >&2; exit 1; }

[ -x "$BUILD/orchsim" ] || die "$BUILD/orchsim: not built (hint: make gpu-bundle builds it)"
stage=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$BUILD/orchsim" "$stage/orchsim"
if [ -f "$BUILD/liborchsim_gpu.so" ]; then
    cp "$BUILD/liborchsim_gpu.so" "$stage/liborchsim_gpu.so"
else
    echo "gpu-bundle: warning: $BUILD/liborchsim_gpu.so not built (no CUDA toolkit?): the bundle can only say 'no device'" >&2
fi
# symbols are not needed to run; a stripped copy keeps the folder small
strip --strip-unneeded "$stage/orchsim" 2>/dev/null || true
[ -f "$stage/liborchsim_gpu.so" ] && { strip --strip-unneeded "$stage/liborchsim_gpu.so" 2>/dev/null || true; }
cp "$HERE/run.sh" "$stage/run.sh"
chmod +x "$stage/run.sh" "$stage/orchsim"
# the trace validate runs: 4 steps of 16 examples (8 ranks x 2), tri-modal mix
"$BUILD/orchsim" gen --profile tri-modal-mix --seed 7 --steps 4 --global-batch 16 --dp 8 -o "$stage/trace.h5" >/dev/null
cat > "$stage/README.txt" <<EOF
orchsim gpu-bundle (built $(date -u +%Y-%m-%dT%H:%MZ) from $(git -C "$HERE/../.." rev-parse --short HEAD 2>/dev/null || echo '?'))
One call on a bare GPU machine:   ./run.sh [OUTDIR]     (OUTDIR defaults to \$OUT, else ./gpu-out)
run.sh finds cuBLAS and NCCL in the pip wheels (site-packages/nvidia/...), logs nvidia-smi and
the library paths, then runs selftest, calibrate, validate --gpus 1 (none, post) and
validate --gpus 8 --emulate (none, post), each with its own time limit, no new step after
6 minutes, and writes 6 files: env.log selftest.log calibrate.log calib.txt validate.log summary.txt.
Files: orchsim (static HDF5/GSL/szip/zlib, no CUDA/MPI needed at load), liborchsim_gpu.so
(static cudart; needs libcublas.so.13 + libcublasLt.so.13, opens libnccl.so.2 on demand),
trace.h5 (tri-modal-mix, seed 7, 4 steps x 16 examples), run.sh.
EOF

# size: fail with every file's size when over the limit
total=$(du -sb "$stage" | cut -f1)
limit=$(( MAX_KIB * 1024 ))
if [ "$total" -gt "$limit" ]; then
    echo "gpu-bundle: error: the bundle is $(( (total + 1023) / 1024 )) KiB, over the $(( MAX_KIB / 1024 )) MiB ($MAX_KIB KiB) limit:" >&2
    (cd "$stage" && find . -type f -printf '%s %p\n' | sort -rn | awk '{ printf "  %10.2f MiB  %s\n", $1 / 1048576, substr($2, 3) }') >&2
    exit 1
fi

# what a bare GPU machine lacks: no HDF5, GSL, szip/libaec, zlib, MPI or CUDA library at load
bad=$(readelf -d "$stage/orchsim" | awk '/NEEDED/ { gsub(/[\[\]]/, "", $NF); print $NF }' |
      grep -E 'hdf5|gsl|libsz|libaec|libz\.|libmpi|libopen-|libcuda|libcudart|libcublas|libnccl|libcurl|libcrypto|libcriterion' || true)
[ -z "$bad" ] || die "orchsim still needs $(echo $bad | tr ' ' ',') at load time (hint: configure with -DORCHSIM_STATIC=ON -DORCHSIM_MPI=OFF, as make gpu-bundle does)"
if [ -f "$stage/liborchsim_gpu.so" ]; then
    bad=$(readelf -d "$stage/liborchsim_gpu.so" | awk '/NEEDED/ { gsub(/[\[\]]/, "", $NF); print $NF }' |
          grep -E 'libcudart|libnccl|libmpi|hdf5|gsl|libasan|libubsan' || true)
    [ -z "$bad" ] || die "liborchsim_gpu.so needs $(echo $bad | tr ' ' ',') (hint: a Release build with the static cudart, as make gpu-bundle does)"
fi

rm -rf "$OUTB"
mkdir -p "$(dirname "$OUTB")"
cp -r "$stage" "$OUTB"
chmod 755 "$OUTB"
echo "gpu-bundle: $OUTB, $(( (total + 1048575) / 1048576 )) MiB of ${MAX_MIB}:"
(cd "$OUTB" && find . -type f -printf '%s %p\n' | sort -rn | awk '{ printf "  %10.2f MiB  %s\n", $1 / 1048576, substr($2, 3) }')
