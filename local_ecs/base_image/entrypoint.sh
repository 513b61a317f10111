#!/usr/bin/env bash
# Entrypoint of the test-only stand-in for the official Airflow image. It follows the behaviour the
# official image documents for its entrypoint (docs/rehearsal.md lists it), written for this project:
#   1. the container must run with group 0 (any UID); an unknown UID gets HOME=/home/airflow;
#   2. unless CONNECTION_CHECK_MAX_COUNT is 0, `airflow db check` is retried up to
#      CONNECTION_CHECK_MAX_COUNT times (default 20), CONNECTION_CHECK_SLEEP_TIME seconds apart
#      (default 3), and the container exits 1 with the last output when every try failed;
#   3. _AIRFLOW_DB_MIGRATE (or the older _AIRFLOW_DB_UPGRADE) runs `airflow db migrate` first;
#   4. `bash ...` and `python ...` run as given; `airflow X ...` and `X ...` both run `airflow X ...`.
set -euo pipefail
umask 0002

if [[ "$(id -g)" != "0" ]]; then
    echo "ERROR: run this image with group 0 (e.g. --user 50000:0); it runs as $(id -u):$(id -g)." >&2
    exit 1
fi
if ! whoami >/dev/null 2>&1; then
    export HOME="${AIRFLOW_USER_HOME_DIR:-/home/airflow}"
fi

max_tries="${CONNECTION_CHECK_MAX_COUNT:-20}"
pause="${CONNECTION_CHECK_SLEEP_TIME:-3}"
if ! [[ "${max_tries}" =~ ^[0-9]+$ && "${pause}" =~ ^[0-9]+$ ]]; then
    echo "ERROR: CONNECTION_CHECK_MAX_COUNT (${max_tries}) and CONNECTION_CHECK_SLEEP_TIME (${pause}) must be whole numbers." >&2
    exit 1
fi

try=0
while (( max_tries > 0 )); do
    try=$((try + 1))
    if output="$(airflow db check 2>&1)"; then
        break
    fi
    echo "airflow db check failed (try ${try} of ${max_tries})" >&2
    if (( try >= max_tries )); then
        echo "ERROR: the metadata database is unreachable after ${max_tries} tries. Last output of 'airflow db check':" >&2
        echo "${output}" >&2
        exit 1
    fi
    sleep "${pause}"
done

if [[ -n "${_AIRFLOW_DB_MIGRATE:-}" || -n "${_AIRFLOW_DB_UPGRADE:-}" ]]; then
    airflow db migrate
fi

case "${1:-}" in
    bash) shift; exec /bin/bash "$@" ;;
    python) shift; exec python "$@" ;;
    airflow) shift ;;
esac
exec airflow "$@"
