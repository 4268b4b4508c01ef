#!/usr/bin/env bash
# Coverage-guided fuzzing (atheris / libFuzzer) of the two readers of untrusted bytes.
#
#   fuzz/run.sh SECONDS            # each fuzzer runs SECONDS (CI: 60); exit 1 on a crash
#   FUZZ_SEED=0 fuzz/run.sh 600    # a random seed (libFuzzer's 0) for a longer exploring run
#
# CI uses the fixed seed 1, so a CI run explores the same inputs first every time: a crash found
# there is reproducible, and a new one shows up in a longer run with another seed first.
#
# The seeds in fuzz/corpus_model and fuzz/corpus_idx (made by fuzz/make_corpus.py) are copied to a
# scratch folder, so a run never changes the checked-in corpus. A crash stops its fuzzer, prints
# the input (hex), and keeps it under fuzz/crashes/ (git-ignored): reproduce it with
#   .venv/bin/python fuzz/fuzz_idx.py fuzz/crashes/crash-...
# and turn it into a regression test in tests/hardening/.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:?usage: fuzz/run.sh SECONDS}"
PY="${PYTHON:-.venv/bin/python}"
SEED="${FUZZ_SEED:-1}"
if ! "$PY" -c "import atheris" 2>/dev/null; then
    echo "fuzz/run.sh: atheris is not installed; run: $PY -m pip install -e '.[fuzz]'" >&2
    exit 2
fi
mkdir -p fuzz/crashes
status=0
for target in model_file:corpus_model idx:corpus_idx; do
    name="${target%%:*}"
    seeds="fuzz/${target##*:}"
    work="$(mktemp -d)"
    log="$work/fuzz.log"
    mkdir "$work/corpus"
    echo "== fuzz_${name}: ${SECONDS_EACH} s from ${seeds} ($(ls "$seeds" | wc -l) seeds)"
    "$PY" "fuzz/fuzz_${name}.py" -max_total_time="$SECONDS_EACH" -max_len=16384 -timeout=20 \
        -rss_limit_mb=2048 -seed="$SEED" -artifact_prefix="fuzz/crashes/${name}-" "$work/corpus" "$seeds" >"$log" 2>&1
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$log" || true
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "fuzz_${name}: FAILED (exit $rc); last lines of the log:" >&2
        grep -v '^INFO: Instrumenting' "$log" | tail -40 >&2
        for crash in $(grep -o "fuzz/crashes/${name}-[a-z]*-[0-9a-f]*" "$log" | sort -u); do
            echo "input $crash:" >&2
            od -A d -t x1 "$crash" | head -20 >&2
        done
    fi
    rm -rf "$work"
done
exit "$status"
