#!/bin/sh
# Starts one Redis server or sentinel of docker/compose.yaml from the files in infra/redis/.
#
#   redis-entry.sh server NAME [MASTER]   a Redis server reachable as NAME; a replica of
#                                         MASTER on its first start, if MASTER is given
#   redis-entry.sh sentinel               a sentinel
#
# The config is copied into the container's volume (/data) on the first start only: Redis
# and Sentinel write what they learn into their own config file (after a failover: who is
# master now), and that must survive a restart of the container. So a change to the files
# in infra/redis/, or to REDIS_PASSWORD, takes effect after `docker compose down -v`.
set -eu

: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set}"
role=${1:?usage: redis-entry.sh server NAME [MASTER] | sentinel}
conf=/data/$role.conf

case $role in
server)
  name=${2:?usage: redis-entry.sh server NAME [MASTER]}
  if [ ! -f "$conf" ]; then
    cp /usr/local/etc/afp-gateway/redis.conf "$conf"
    if [ -n "${3:-}" ]; then echo "replicaof $3 6379" >>"$conf"; fi
  fi
  # The password on the command line, so that it is never stale; the host name so that
  # Sentinel hands the gateways a name that resolves in the compose network.
  exec redis-server "$conf" --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" \
    --replica-announce-ip "$name"
  ;;
sentinel)
  if [ ! -f "$conf" ]; then
    cp /usr/local/etc/afp-gateway/sentinel.conf "$conf"
    echo "sentinel auth-pass afpgw $REDIS_PASSWORD" >>"$conf"
  fi
  exec redis-sentinel "$conf"
  ;;
*)
  echo "redis-entry.sh: unknown role $role" >&2
  exit 2
  ;;
esac
