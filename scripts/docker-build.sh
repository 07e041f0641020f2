#!/usr/bin/env bash
# Build the container image where a Docker engine runs (not on the CI machines, which have
# only the client), start it, and wait for its health check: `scripts/docker-build.sh [TAG]`.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-portcullis:dev}"
docker info >/dev/null 2>&1 || { echo "error: no Docker engine answers (docker info)" >&2; exit 1; }
docker build -t "$TAG" .
ID=$(docker run -d -p 127.0.0.1::8700 "$TAG")
trap 'docker rm -f "$ID" >/dev/null' EXIT
for _ in $(seq 60); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$ID")" = healthy ] && { echo "$TAG is healthy"; exit 0; }
  sleep 2
done
docker logs "$ID" >&2
echo "error: $TAG never became healthy" >&2
exit 1
