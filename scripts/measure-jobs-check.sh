#!/bin/bash
# Measures the CPU and wall time of `airflow jobs check` as the ECS health check runs it: the
# _CMD helpers, a TLS-only PostgreSQL, one CPU core (taskset). Needs root (PostgreSQL runs as the
# postgres user) and `make deps-test`. Numbers and how they set the health check: docs/architecture.md.
set -e
WT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
ROOT=$(mktemp -d /tmp/jobs-check-XXXX); chmod 755 $ROOT; D=$ROOT/data; mkdir -m 700 $D; chown postgres:postgres $D
runuser -u postgres -- $BIN/initdb -D $D -A trust -U postgres >/dev/null
openssl req -new -x509 -days 1 -nodes -subj /CN=localhost -keyout $D/server.key -out $D/server.crt 2>/dev/null
chmod 600 $D/server.key; chown postgres:postgres $D/server.*
PORT=${PORT:-55432}
runuser -u postgres -- $BIN/pg_ctl -D $D -o "-p $PORT -c listen_addresses=127.0.0.1 -k $D -c ssl=on" -l $D/log -w start >/dev/null
trap 'runuser -u postgres -- $BIN/pg_ctl -D $D -m immediate stop >/dev/null 2>&1; rm -rf $ROOT' EXIT
runuser -u postgres -- psql -h $D -p $PORT -U postgres -c "CREATE ROLE airflow LOGIN PASSWORD 'p@ss:w/rd%20#?&=+ x'" -c "CREATE DATABASE airflow OWNER airflow" >/dev/null
export PATH=$WT/.venv/bin:/usr/sbin:/usr/bin:/bin AIRFLOW_HOME=$ROOT/home DB_HOST=127.0.0.1 DB_PORT=$PORT DB_NAME=airflow DB_USERNAME=airflow DB_PASSWORD='p@ss:w/rd%20#?&=+ x'
mkdir -p $AIRFLOW_HOME; touch $AIRFLOW_HOME/airflow.cfg
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD="python -m airflow_ecs_fargate.config_commands sql_alchemy_conn"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC_CMD="python -m airflow_ecs_fargate.config_commands sql_alchemy_conn_async"
export AIRFLOW__CORE__FERNET_KEY_CMD="python -m airflow_ecs_fargate.config_commands fernet_key"
export AIRFLOW_FERNET_KEY_BODY=$(printf 'x%.0s' $(seq 43))
export AIRFLOW__CORE__AUTH_MANAGER=airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__LOGGING__REMOTE_LOGGING=True AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER=s3://bucket/task-logs AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID=aws_default AIRFLOW_CONN_AWS_DEFAULT=aws:// AWS_DEFAULT_REGION=eu-west-1
export AIRFLOW__CORE__EXECUTOR=airflow_ecs_fargate.executor.EcsFargateExecutor
airflow db migrate >/dev/null 2>&1 && echo migrated
set +e
for i in 1 2 3 4 5 6; do
  /usr/bin/time -f "cpu user=%U sys=%S wall=%e" -o "$ROOT/time.txt" taskset -c 1 airflow jobs check --job-type SchedulerJob --local >/dev/null 2>&1; rc=$?; cat "$ROOT/time.txt"
  echo "run $i rc=$rc"
done
