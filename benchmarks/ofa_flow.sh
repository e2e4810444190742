#!/usr/bin/env bash
# The README's Once-for-All commands end to end (run from the repository root with the venv
# active), timing each step; storage and the latency cache under $D (default /tmp/ofaflow,
# emptied first) so nothing of an earlier run is reused. The export budget is 1000 ms so that
# some subnet qualifies on any machine. Output: benchmarks/results/ofa_flow.txt.
set -uo pipefail
D=${D:-/tmp/ofaflow}; rm -rf "$D"; mkdir -p "$D"
export RAYNAS_LATENCY_CACHE=$D/cache
R="raynas"
step() { local t0=$(date +%s); echo "== $*"; "$@"; local rc=$?; echo "-- rc=$rc in $(( $(date +%s) - t0 )) s"; }
step $R run examples/ofa_supernet.yaml -q --storage-path $D
step $R latency-table cpu-b1 --resolution 16 --width-mult 0.35
step $R latency-table cpu-b64 --resolution 16 --width-mult 0.35
step $R run examples/ofa_search.yaml -q --storage-path $D --set trainable.options.supernet=$D/ofa-supernet
step $R report $D/ofa-search --plot $D/plots
ls $D/plots
step $R export $D/ofa-search --target cpu-b1 --max-latency-ms 1000 --weights $D/subnet.pt --out $D/subnet.json
ARCH=$D/subnet.json
echo "arch: $ARCH"
step $R run examples/ofa_finetune.yaml -q --storage-path $D --set trainable.options.init_from=$D/ofa-supernet --set "searcher.options.archs=[\"$ARCH\"]"
step $R report $D/ofa-finetune
