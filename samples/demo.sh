#!/usr/bin/env bash
# make demo: start `gantry up` in a temporary directory, run the sample
# extract → transform → load as three containers sharing a host directory,
# print what was loaded and where, and shut everything down.
set -euo pipefail
G=${G:-$(pwd)/bin/gantry}
IMAGE=${IMAGE:-gantry/samples:latest}
tmp=$(mktemp -d /tmp/gantry-demo.XXXXXX)
work=$tmp/work
mkdir -p "$work"
chmod 777 "$work"
up_pid=
cleanup() {
  if [ -n "$up_pid" ]; then kill "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting gantry up (data in $tmp/data)"
"$G" up --data "$tmp/data" --nats-port 0 --allow-host-path "$work" --log-level warn >"$tmp/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/data/nats.url" ] && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$tmp/up.log"; exit 1; }
  sleep 0.1
done
export GANTRY_NATS_URL=$(cat "$tmp/data/nats.url")
for _ in $(seq 100); do "$G" ps >/dev/null 2>&1 && break; sleep 0.1; done
echo "NATS at $GANTRY_NATS_URL"

# The sample task definition and pipeline, pointed at this demo's directory.
sed -e "s#/tmp/gantry-demo/work#$work#" -e "s#gantry/samples:latest#$IMAGE#" samples/taskdefs/etl-sales.json >"$tmp/etl.json"
sed -e "s#/tmp/gantry-demo/warehouse#$work/warehouse#" -e "s#gantry/samples:latest#$IMAGE#" samples/pipelines/daily-sales.yaml >"$tmp/daily-sales.yaml"

step "register the ECS task definition etl-sales"
"$G" taskdef register "$tmp/etl.json"

step "extract: 5000 sales rows for 2026-11-24"
"$G" run etl-sales -- gantry-etl extract --out /work --rows 5000
step "transform: drop malformed rows, aggregate revenue by region and product"
"$G" run etl-sales -- gantry-etl transform --in /work
step "load: append the aggregates to the warehouse"
"$G" run etl-sales -- gantry-etl load --in /work --db /work/warehouse.jsonl

step "the same as a pipeline: extract in 3 parallel shards -> transform -> load, files passed through JetStream"
"$G" pipeline apply "$tmp/daily-sales.yaml"
"$G" pipeline run daily-sales --param day=2026-11-25

step "recorded history"
"$G" ps --all
"$G" pipeline runs daily-sales

step "loaded by the runs into $work/warehouse.jsonl (first rows)"
head -n 3 "$work/warehouse.jsonl"
echo "... $(wc -l <"$work/warehouse.jsonl") rows in all"
step "loaded by the pipeline into $work/warehouse/sales.jsonl (first rows)"
head -n 3 "$work/warehouse/sales.jsonl"
echo "... $(wc -l <"$work/warehouse/sales.jsonl") rows in all"
