#!/bin/sh
# Health check for keepalived (vrrp_script chk_afp_gateway in keepalived.conf): exits 0 when
# the gateway on this node answers an AFP DSIGetStatus within the time limit, non-zero when
# it refuses, fails or says nothing in time. Install it as
#   install -o root -g root -m 0755 check-afp-gateway.sh /usr/local/libexec/afp-gateway/
# (keepalived's script security refuses a script that a non-root user could change).
#
# This asks the AFP port itself because the gateway has no HTTP health endpoint yet. Once
# /healthz exists (issue 7), it replaces this script: it can also say "up but Redis or the
# bucket is unreachable", which DSIGetStatus cannot.
#
# Settings, from the environment, with the production defaults:
#   CHECK_AFP_GATEWAY_COMMAND  the probe command, split on spaces (so no spaces inside
#                              a path): "/usr/bin/node /opt/afp-gateway/bin/afp-gateway.js probe"
#   CHECK_AFP_GATEWAY_ADDRESS  HOST:PORT to probe: "127.0.0.1:548"
#   CHECK_AFP_GATEWAY_TIMEOUT  seconds before the check counts as failed: "3"
# (Not AFPGW_*: the gateway reads every AFPGW_ variable as a setting and refuses unknown ones.)
set -u
set -f # the command is split on spaces below; never expand * or ? in it

command=${CHECK_AFP_GATEWAY_COMMAND:-/usr/bin/node /opt/afp-gateway/bin/afp-gateway.js probe}
address=${CHECK_AFP_GATEWAY_ADDRESS:-127.0.0.1:548}
limit=${CHECK_AFP_GATEWAY_TIMEOUT:-3}

# timeout(1) ends the probe after $limit seconds (exit 124), and kills it a second later if
# it ignores that. A gateway whose event loop is stuck accepts the TCP connection but never
# answers: without the limit, keepalived would wait for its own script timeout instead.
# shellcheck disable=SC2086 # $command is a command with its arguments, split on purpose
timeout --kill-after=1 "$limit" $command "$address" --json >/dev/null 2>&1
status=$?
[ "$status" -eq 0 ] && exit 0
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "check-afp-gateway: no answer from $address within ${limit}s" >&2
else
  echo "check-afp-gateway: probe of $address failed (exit $status)" >&2
fi
exit 1
