#!/usr/bin/env bash
# The pipeline's layers, as the project's own #include lines must respect them: each stage sees
# its own headers, the decoded model and the record ABI, never the command line. Only the plan
# reads options (and the configuration headers of the stages it configures); only the session
# (src/app) and main see every stage.
# Usage: tests/layers/check.sh [SOURCE_DIR]
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$root/src"

# layer: allowed include prefixes (project headers only; system headers are not checked)
declare -A allowed=(
  [model]="model/ tcpconnect/"
  [cli]="cli/ model/attach.h tcpconnect/version.h"
  [probe]="probe/ model/ tcpconnect/ tc_bpf.skel.h"
  [enrich]="enrich/ model/ tcpconnect/"
  [sink]="sink/ model/ tcpconnect/"
  [plan]="plan/ cli/ model/ tcpconnect/ probe/config.h sink/config.h enrich/config.h"
)

status=0
for layer in "${!allowed[@]}"; do
  while IFS= read -r hit; do
    file=${hit%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${hit#*:}")
    ok=0
    for prefix in ${allowed[$layer]}; do
      [[ $inc == "$prefix"* ]] && ok=1
    done
    if ((!ok)); then
      echo "layers: src/$file includes \"$inc\": src/$layer/ may include only: ${allowed[$layer]}"
      status=1
    fi
  done < <(grep -H '^#include "' "$layer"/*.h "$layer"/*.cpp 2>/dev/null || true)
done
((status == 0)) && echo "layers: every include respects the pipeline's layers"
exit $status
