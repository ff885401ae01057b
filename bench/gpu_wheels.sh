#!/usr/bin/env bash
# Run HERE (a machine with PyPI), before a GPU session's one `run` call: fetch into .whl/ the wheels of the
# packages facegan imports that the device machine lacks (its package list: the device tool's KINDS.md), copy the
# benchmark photos into .benchdata/, check what travels fits the 64 MiB limit, and print the `run` call to make.
# Both folders are git-ignored; the device machine cannot reach PyPI, so the wheels travel with `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Pinned to the versions the CPU suite runs with: fastapi (it imports opentelemetry-api at start-up) and
# fastapi-offline (the Swagger UI files), uvicorn, and their needs the device machine lacks; typing-extensions
# too, since pydantic 2.14 wants >= 4.16 and the device's version is not known (anyio, h11, click and
# annotated-doc are there).
WHEELS=(
    fastapi==0.165.0 fastapi-offline==1.7.7 starlette==1.10.0 pydantic==2.14.4 pydantic-core==2.50.5
    annotated-types==0.8.0 typing-inspection==0.4.5 uvicorn==0.54.0 opentelemetry-api==1.45.2
    typing-extensions==4.16.0
)
rm -rf .whl && mkdir -p .whl
# The device README's flags: Python 3.12 (the device's), CPython, x86-64 manylinux wheels, no dependencies.
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
echo "wheels in .whl/:"
ls -l .whl | awk 'NR > 1 {printf "  %-60s %8.1f KiB\n", $9, $5 / 1024}'
for w in .whl/*.whl; do  # each wheel's own needs, for a reader to check against the device's package list
    needs=$(unzip -p "$w" '*/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' | sed 's/Requires-Dist: //' \
        | tr '\n' ';' || true)
    echo "  $(basename "$w"): ${needs:-(none)}"
done
# The photos bench/train_speed.py makes its CelebA-shaped JPEGs from (../shared beside the checkout here).
rm -rf .benchdata && mkdir -p .benchdata/lfw-subset
shared=${FACEGAN_BENCH_DATA:-../shared/data}
if [ -f "$shared/astronaut.png" ]; then
    cp "$shared/astronaut.png" .benchdata/ && cp -r "$shared/lfw-subset/faces" .benchdata/lfw-subset/
else
    echo "no $shared/astronaut.png: the speed runs will use smooth random images instead"
fi
echo
echo "sizes (the device tool sends tracked + untracked-not-ignored files + carried paths; limit 64 MiB):"
du -sh .whl .benchdata
tracked_kib=$(git ls-files -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
untracked_kib=$(git ls-files -z --others --exclude-standard | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carried_kib=$(du -sk .whl .benchdata | awk '{s += $1} END {print s}')
total=$((tracked_kib + ${untracked_kib:-0} + carried_kib))
echo "tracked files: ${tracked_kib} KiB; untracked, not ignored: ${untracked_kib:-0} KiB; carried: ${carried_kib} KiB;" \
    "total ${total} KiB of 65536"
[ "$total" -lt 65536 ] || { echo "TOO LARGE for one run call" >&2; exit 1; }
cat <<'CALL'

The device `run` call (one call; the check keeps itself under ~8 minutes, the limit leaves a margin):
  command:   bash bench/gpu_check.sh
  carry:     [".whl", ".benchdata"]
  timeout_s: 560
Then read $OUT's gpu_check.json and gpu_check.log (files_at in the reply), and call give_back.
CALL
