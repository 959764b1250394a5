#!/usr/bin/env bash
# Create the checkout's virtualenv and install mcp-pa (editable) with the given extras, saying
# what it does while it does it: one line per phase and one per package pip collects, so a slow
# install never looks stuck. pip's full output goes to $VENV/pip.log; its tail is shown on failure.
#
#   scripts/install.sh .venv server,local          # make run
#   scripts/install.sh .venv server,local,test     # make test / make lint
set -euo pipefail

venv=${1:?usage: install.sh VENV EXTRAS}
extras=${2:?usage: install.sh VENV EXTRAS}
python=${PYTHON:-python3}
log="$venv/pip.log"
started=$(date +%s)

phase() { echo "[install] $*"; }

# Collecting/Downloading/Building/Installing lines are the progress; the rest (resolver notes,
# this machine's pip index warnings) stays in the log.
pip_with_progress() {
  set +o pipefail  # the filter's status does not matter (grep may match nothing); pip's does
  "$venv/bin/pip" install --progress-bar off "$@" 2>&1 | tee -a "$log" \
    | grep --line-buffered -E '^(Collecting|Downloading|Building|Installing|Successfully|ERROR)' \
    | sed -u 's/^/[install]   /'
  status=("${PIPESTATUS[@]}")
  set -o pipefail
  if [ "${status[0]}" -ne 0 ]; then
    echo "[install] pip failed (exit ${status[0]}); the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit "${status[0]}"
  fi
}

if [ ! -x "$venv/bin/python" ]; then
  phase "creating the virtualenv $venv"
  "$python" -m venv "$venv"
fi
: >"$log"
phase "upgrading pip"
pip_with_progress --upgrade pip
phase "installing mcp-pa[$extras] (editable) and its dependencies"
pip_with_progress -e ".[$extras]"
phase "done in $(( $(date +%s) - started ))s"
