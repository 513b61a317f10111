#!/bin/sh
# Install a requirements file into the image's Python, for docker/Dockerfile (README, "Writing DAGs").
#   install_requirements.sh <requirements file> [more pip arguments]
# - A private index: the build secret `pip_index` (a pip configuration file, mounted by
#   `RUN --mount=type=secret,id=pip_index,...` at /run/secrets/pip_index) is pip's configuration
#   for this command only: its token is in no layer, no environment of the image and no file left.
#   Each index it names is asked first, so a refused token fails the build saying so.
# - Every package the base image has keeps its version (docker/pip_build.py constraints); a line
#   that would move one of Airflow's pins fails the build, pip naming the conflict.
set -eu
requirements="$1"
shift
here=$(dirname "$0")
secret=/run/secrets/pip_index
if [ -f "$secret" ]; then
  PIP_CONFIG_FILE="$secret"
  export PIP_CONFIG_FILE
  pip config list | python "$here/pip_build.py" check-indexes
fi
constraints=$(mktemp)
log=$(mktemp)
trap 'rm -f "$constraints" "$log"' EXIT
pip list --format=freeze --disable-pip-version-check | python "$here/pip_build.py" constraints "$requirements" >"$constraints"
status=0
pip install --no-cache-dir --disable-pip-version-check -c "$constraints" "$@" -r "$requirements" >"$log" 2>&1 || status=$?
cat "$log"
if [ "$status" -ne 0 ]; then
  python "$here/pip_build.py" explain "$requirements" <"$log"
fi
exit "$status"
