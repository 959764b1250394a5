#!/usr/bin/env bash
# The few non-Python tools the tests and benchmarks drive: h2load (Debian nghttp2-client) for
# the benchmark smoke test, kubectl for rendering the kustomize manifests, node/npm for the MCP
# Inspector, chromium for the headless browser that clicks through the fake sign-in consent page, promtool
# (Debian prometheus) to check the alert rules. Installs what is missing from Debian's packages when it can (root + apt-get);
# otherwise says what to install and fails.
set -euo pipefail

missing=()
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system tools: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null; }
else
  echo "missing system tools; install them first: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
