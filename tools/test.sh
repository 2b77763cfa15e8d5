#!/usr/bin/env bash
# `make test` after lint and type checks: the whole suite on localkube and, at the same time,
# the e2e suite on a real control plane (kube-apiserver & co. from `make realkube`). The two
# run side by side because e2e tests mostly wait (training, load tests, rollouts): together
# they take little longer than the longer of the two. Ends with one closing line for both.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
LOGS=.kubellm/test-logs
mkdir -p "$LOGS"
# Each run gets a temp root of its own: pytest's default root keeps only the 3 newest runs
# and may delete a directory another pytest (the concurrent run) still uses.
TMP_ROOT=$(mktemp -d /tmp/kubellm-test.XXXXXX)
trap 'rm -rf "$TMP_ROOT"' EXIT
real_bin=$(tools/realkube/build.sh --print-bin)
real_pid=""
if [[ -x $real_bin/kube-apiserver && -x $real_bin/etcd ]]; then
  echo "e2e suite on a real control plane (KUBELLM_E2E_CLUSTER=real) runs alongside: $LOGS/e2e-real.log"
  KUBELLM_E2E_CLUSTER=real KUBELLM_REQUIRE_REAL_E2E=1 \
    $PY -m pytest -q -p no:cacheprovider --basetemp "$TMP_ROOT/real" tests/e2e \
    >"$LOGS/e2e-real.log" 2>&1 &
  real_pid=$!
else
  echo "SKIPPED: the e2e suite on a real control plane (no binaries in $real_bin; make realkube needs Go)"
  if [[ -n ${KUBELLM_REQUIRE_REAL_E2E:-} ]]; then
    echo "KUBELLM_REQUIRE_REAL_E2E is set: the real-cluster e2e suite must run; failing"
    exit 1
  fi
fi
$PY -m pytest -q -p no:cacheprovider --basetemp "$TMP_ROOT/suite" tests 2>&1 | tee "$LOGS/suite.log"
suite_rc=${PIPESTATUS[0]}
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
passed=$(( $(count passed "$LOGS/suite.log") + $( [[ -n $real_pid ]] && count passed "$LOGS/e2e-real.log" || echo 0) ))
failed=$(( $(count failed "$LOGS/suite.log") + $( [[ -n $real_pid ]] && count failed "$LOGS/e2e-real.log" || echo 0) ))
errors=$(( $(count error "$LOGS/suite.log") + $( [[ -n $real_pid ]] && count error "$LOGS/e2e-real.log" || echo 0) ))
failed=$(( failed + errors ))
echo "total: $passed passed, $failed failed"
[[ $suite_rc -eq 0 && $real_rc -eq 0 ]]
