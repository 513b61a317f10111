#!/usr/bin/env bash
# cdk.json's "app": run app.py with the project's own virtualenv, so `npx cdk synth|diff|deploy`
# work in any shell without activating anything, and make's targets run the same command.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
if [ ! -x "$python" ]; then
  echo "cdk app: $python does not exist: run 'make deps-synth' once to create the project's virtualenv." >&2
  exit 1
fi
# Node 20 is past jsii's end of life; its banner says nothing about this app.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-20}"
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION="${JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION:-1}"
exec "$python" "$root/app.py"
