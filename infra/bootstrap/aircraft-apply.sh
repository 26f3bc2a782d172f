#!/bin/bash
# aircraft-apply: bring this instance to the stack's current cfn-init metadata (config set "deploy": binary,
# environment, systemd unit, certificate), check that aircraftd is healthy and report the result to the wait
# condition of this release, which `cdk deploy` waits for (a failure rolls the stack back).
# Runs from the user data at first boot and from cfn-hup after every stack update; one run at a time.
set -uo pipefail

exec 9>/run/aircraft-apply.lock
flock 9

# shellcheck source=/dev/null
. /etc/aircraft/deploy.env

status=0
/opt/aws/bin/cfn-init -v --region "$CFN_REGION" --stack "$CFN_STACK" --resource "$CFN_RESOURCE" \
	--configsets deploy || status=$?
if [ "$status" -eq 0 ]; then
	/usr/local/sbin/aircraft-healthcheck || status=$?
fi
# shellcheck source=/dev/null
. /etc/aircraft/deploy.env # rewritten by cfn-init: now names the release just applied
echo "aircraft-apply: release $RELEASE: status $status"
/usr/local/sbin/aircraft-signal "$status"
exit "$status"
