#!/bin/bash
# iris-tanh end to end, two installs alternated: the per-pair times and the median of the ratios.
# Usage: benchmarks/iris_end_to_end.sh PAIRS OLD_VENV NEW_VENV [OLD_EXTRA_ARGS]
#   e.g. benchmarks/iris_end_to_end.sh 14 ../venv-base ../venv-new "--data-dir DATA"
# Each install runs `gdchaos run --headless --quiet --preset iris-tanh` into a scratch folder, timed
# by /usr/bin/time; the new one runs once first to load or compile its kernels. The background
# calibration probe is off, so nothing else runs meanwhile.
set -euo pipefail
pairs=$1 old=$2 new=$3 old_args=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GDCHAOS_BACKGROUND_TIMING=0
run() {  # VENV OUTPUT EXTRA... -> seconds
  local venv=$1 out=$2; shift 2
  rm -f "$out"
  /usr/bin/time -f "%e" -o "$work/time" "$venv/bin/gdchaos" run --headless --quiet --preset iris-tanh -o "$out" "$@" \
    >/dev/null 2>&1
  tail -1 "$work/time"
}
run "$new" "$work/new.h5" >/dev/null
for _ in $(seq "$pairs"); do
  # shellcheck disable=SC2086
  echo "$(run "$old" "$work/old.h5" $old_args) $(run "$new" "$work/new.h5")"
done | tee "$work/pairs"
python3 - "$work/pairs" <<'PY'
import statistics, sys
pairs = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
ratios = [old / new for old, new in pairs]
print(f"old median {statistics.median(p[0] for p in pairs):.2f} s, new median {statistics.median(p[1] for p in pairs):.2f} s, "
      f"ratios {[round(r, 2) for r in ratios]}, median ratio {statistics.median(ratios):.3f}")
PY
