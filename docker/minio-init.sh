#!/bin/sh
# One-shot setup of the MinIO in docker/compose.yaml (service minio-init), run on every
# `docker compose up` and harmless when everything exists already:
# - the bucket the gateways use (objects.bucket in docker/gateway.yaml);
# - a user for the gateways, limited by infra/s3/iam-policy.json to that bucket and prefix.
# Versioning stays off (MinIO's default) and MinIO aborts stale multipart uploads itself;
# see infra/s3/README.md for both.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${GW_S3_ACCESS_KEY:?}" "${GW_S3_SECRET_KEY:?}"
bucket=timemachine
policy=afp-gateway

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$bucket"
mc admin policy create local "$policy" /usr/local/etc/afp-gateway/iam-policy.json
mc admin user add local "$GW_S3_ACCESS_KEY" "$GW_S3_SECRET_KEY"
# Attaching a policy that is attached already is an error; only that one is forgiven.
if ! out=$(mc admin policy attach local "$policy" --user "$GW_S3_ACCESS_KEY" 2>&1); then
  case $out in
  *"already in effect"*) ;;
  *)
    echo "$out" >&2
    exit 1
    ;;
  esac
fi
echo "minio-init: bucket $bucket and user $GW_S3_ACCESS_KEY ready"
