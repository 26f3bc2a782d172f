#!/bin/bash
# aircraft-signal STATUS: report STATUS (0 = healthy) of the release in /etc/aircraft/deploy.env to its wait
# condition. Retries for five minutes: at first boot the wait condition is created after the instance.
set -uo pipefail
status="${1:?usage: aircraft-signal STATUS}"

# shellcheck source=/dev/null
. /etc/aircraft/deploy.env

for _ in $(seq 1 60); do
	if /opt/aws/bin/cfn-signal --exit-code "$status" --reason "aircraftd release $RELEASE" \
		--region "$CFN_REGION" --stack "$CFN_STACK" --resource "$WAIT_CONDITION"; then
		exit 0
	fi
	sleep 5
done
echo "aircraft-signal: could not signal $WAIT_CONDITION" >&2
exit 1
