#!/usr/bin/env bash
# The GPU check of issue 16, one entry point: install facegan (and the wheels bench/gpu_wheels.sh carried in
# .whl/), then run bench/gpu_check.py, which writes $OUT/gpu_check.json and $OUT/gpu_check.log.
#
#   bench/gpu_check.sh                                   # on the GPU machine (the device tool sets $OUT)
#   bench/gpu_check.sh --device cpu --quick --out DIR    # a tiny end-to-end run on a CPU (no installs)
#
# Every argument goes to bench/gpu_check.py (see its --help). PYTHON picks the interpreter (default python3).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
out=${OUT:-/tmp/facegan-gpu-check}
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --out ] && { j=$((i + 1)); out=${!j}; }; done
mkdir -p "$out"
log="$out/gpu_check.log"
export PYTHONUNBUFFERED=1
case " $* " in *" --device cpu "*) install=no ;; *) install=${FACEGAN_GPU_CHECK_INSTALL:-yes} ;; esac
if [ "$install" = yes ]; then
    {
        echo "=== install ($(date -u +%FT%TZ))"
        if ls .whl/*.whl >/dev/null 2>&1; then
            # the device README's recipe: the carried wheels into /tmp/site, no index, no dependencies
            $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
                .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
            echo "carried wheels: $(ls .whl/*.whl | xargs -n1 basename | tr '\n' ' ')"
        fi
        # --no-build-isolation: nothing can be fetched there, so build with the setuptools already installed
        $PY -m pip install -q --no-deps --no-build-isolation -e . \
            || echo "pip install -e . failed: facegan runs from src/ through PYTHONPATH instead"
    } >>"$log" 2>&1
fi
# src/ first either way, so `python -m facegan` is this checkout even where the editable install failed
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
[ -d .benchdata ] && export FACEGAN_BENCH_DATA=$PWD/.benchdata
exec $PY bench/gpu_check.py --out "$out" "$@"
