#!/bin/bash
# aircraft-signal STATUS WAIT_CONDITION HANDLE_URL REASON: report STATUS (0 = healthy) and REASON (shown in the
# stack events) to a release's wait condition: logical id WAIT_CONDITION, signal URL HANDLE_URL. A wait condition
# that no longer waits is not signalled: its release was already reported (cfn-hup's re-apply of the previous
# release after a rollback). At first boot the wait condition is created after the instance: it waits for it.
# aircraft-signal --instance-id prints this instance's id (IMDSv2).
set -uo pipefail
CFN="${AIRCRAFT_CFN_BIN:-/opt/aws/bin}"
IMDS="${AIRCRAFT_IMDS:-http://169.254.169.254}"

if [ "${1:-}" = --instance-id ]; then
	token=$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$IMDS/latest/api/token") &&
		curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/instance-id"
	exit
fi
status="${1:?usage: aircraft-signal STATUS WAIT_CONDITION HANDLE_URL REASON}"
wait_condition="${2:?wait condition}"
handle="${3:?signal URL}"
# One line of at most 1000 characters: the stack event shows it.
reason=$(printf '%s' "${4:-}" | tr '\n\t' '  ' | cut -c1-1000)

# shellcheck source=/dev/null
. "${AIRCRAFT_ROOT:-}/etc/aircraft/deploy.env"
id=$("$0" --instance-id) || id=$(hostname)

for _ in $(seq 1 60); do
	state=$(aws cloudformation describe-stack-resource --region "$CFN_REGION" --stack-name "$CFN_STACK" \
		--logical-resource-id "$wait_condition" --query StackResourceDetail.ResourceStatus --output text 2>/dev/null) || state=""
	case "$state" in
	CREATE_IN_PROGRESS)
		if "$CFN/cfn-signal" --exit-code "$status" --reason "$reason" --id "$id" "$handle"; then
			echo "aircraft-signal: $wait_condition: status $status: $reason"
			exit 0
		fi
		;;
	"" | None) ;; # not created yet
	*)
		echo "aircraft-signal: $wait_condition is $state: its release was already reported, nothing to signal"
		exit 0
		;;
	esac
	sleep "${AIRCRAFT_SIGNAL_RETRY_SECONDS:-5}"
done
echo "aircraft-signal: could not signal $wait_condition" >&2
exit 1
