#!/usr/bin/env bash
# `make test` after lint and type checks, as three pytest runs side by side: the e2e suite on
# localkube, the e2e suite on a real control plane (kube-apiserver & co. from
# `make realkube`), and the unit and integration tests. E2e tests mostly wait (pods starting,
# load tests, canary pauses, watch windows) and each e2e run is one process after another, so
# alone they leave the 2 cores idle much of the time; the unit and integration tests fill
# those waits. One closing line counts all three.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
LOGS=.kubellm/test-logs
mkdir -p "$LOGS"
# Each run gets a temp root of its own: pytest's default root keeps only the 3 newest runs
# and may delete a directory another pytest (a concurrent run) still uses.
TMP_ROOT=$(mktemp -d /tmp/kubellm-test.XXXXXX)
trap 'rm -rf "$TMP_ROOT"' EXIT
PYTEST=($PY -m pytest -q -p no:cacheprovider)

real_bin=$(tools/realkube/build.sh --print-bin)
real_pid=""
if [[ -x $real_bin/kube-apiserver && -x $real_bin/etcd ]]; then
  echo "e2e suite on a real control plane (KUBELLM_E2E_CLUSTER=real) runs alongside: $LOGS/e2e-real.log"
  KUBELLM_E2E_CLUSTER=real KUBELLM_REQUIRE_REAL_E2E=1 \
    "${PYTEST[@]}" --basetemp "$TMP_ROOT/real" tests/e2e >"$LOGS/e2e-real.log" 2>&1 &
  real_pid=$!
else
  echo "SKIPPED: the e2e suite on a real control plane (no binaries in $real_bin; make realkube needs Go)"
  if [[ -n ${KUBELLM_REQUIRE_REAL_E2E:-} ]]; then
    echo "KUBELLM_REQUIRE_REAL_E2E is set: the real-cluster e2e suite must run; failing"
    exit 1
  fi
fi
echo "e2e suite on localkube runs alongside: $LOGS/e2e-localkube.log"
KUBELLM_E2E_CLUSTER=localkube \
  "${PYTEST[@]}" --basetemp "$TMP_ROOT/local" tests/e2e >"$LOGS/e2e-localkube.log" 2>&1 &
local_pid=$!

"${PYTEST[@]}" --basetemp "$TMP_ROOT/suite" tests --ignore=tests/e2e 2>&1 | tee "$LOGS/suite.log"
suite_rc=${PIPESTATUS[0]}

wait "$local_pid"
local_rc=$?
echo "==================== e2e suite on localkube ===================="
cat "$LOGS/e2e-localkube.log"
real_rc=0
if [[ -n $real_pid ]]; then
  wait "$real_pid"
  real_rc=$?
  echo "==================== e2e suite on the real control plane ===================="
  cat "$LOGS/e2e-real.log"
fi

count() {  # count WORD FILE: the number before WORD in pytest's closing line
  tail -n 1 "$2" | grep -oE "[0-9]+ $1" | grep -oE "^[0-9]+" || echo 0
}
logs=("$LOGS/suite.log" "$LOGS/e2e-localkube.log")
[[ -n $real_pid ]] && logs+=("$LOGS/e2e-real.log")
passed=0 failed=0
for log in "${logs[@]}"; do
  passed=$(( passed + $(count passed "$log") ))
  failed=$(( failed + $(count failed "$log") + $(count error "$log") ))
done
echo "total: $passed passed, $failed failed"
[[ $suite_rc -eq 0 && $local_rc -eq 0 && $real_rc -eq 0 ]]
