#!/usr/bin/env bash
# Installs everything gemma-gguf needs on a fresh Debian 12 from Debian's packages (and npm for the server tests).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config g++ clang libclang-rt-14-dev
      libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libssl-dev
      time curl chromium jq)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Node.js often comes from NodeSource, whose nodejs package bundles npm and conflicts with Debian's npm
# package: ask apt for Debian's pair only when the commands themselves are missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The server tests drive the official openai client, headless Chromium (puppeteer-core, with Debian's
# chromium above; it never downloads a browser), a Prometheus text parser and a JSON Schema validator:
# install the locked versions once.
server_tests="$(dirname "$0")/../tests/server"
for m in openai puppeteer-core parse-prometheus-text-format ajv; do
  if [ ! -f "$server_tests/node_modules/$m/package.json" ]; then
    (cd "$server_tests" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --fetch-retries=3)
    break
  fi
done
