#!/bin/bash
# aircraft-ready: the release gate of a fleet instance. First wait up to 120 s for GET /api/v1/ready on this
# instance: every dependency (PostgreSQL, the Mongo-wire store, S3) reachable. aircraftd serves HTTPS with a
# certificate it makes in memory at start (the load balancer does not verify its targets either), so this check
# skips verification and never leaves the instance. Then wait up to GATE_TARGET_SECONDS (300 s) for the load balancer
# to report this instance healthy in its target group (fleet-gate.env): the path users take - security groups,
# target group port and protocol, the listener - works, not only the process.
set -uo pipefail
R="${AIRCRAFT_ROOT:-}"
# shellcheck source=/dev/null
. "$R/etc/aircraft/fleet-gate.env"

fail() {
	echo "aircraft-ready: $1" >&2
	systemctl status --no-pager aircraftd >&2 || true
	tail -n 50 "$R/var/log/aircraft/aircraftd.log" >&2 || true
	exit 1
}

ready=""
for _ in $(seq 1 60); do
	if curl -fsS --max-time 5 --insecure https://127.0.0.1/api/v1/ready; then
		echo
		ready=1
		break
	fi
	sleep 2
done
[ -n "$ready" ] || fail "aircraftd did not become ready"

imds() {
	local token
	token=$(curl -fsS --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" http://169.254.169.254/latest/api/token) &&
		curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}
instance=$(imds instance-id) || fail "no instance id from IMDS"
state=""
deadline=$((SECONDS + ${GATE_TARGET_SECONDS:-300}))
while [ "$SECONDS" -lt "$deadline" ]; do
	state=$(aws elbv2 describe-target-health --region "$AWS_REGION" --target-group-arn "$TARGET_GROUP_ARN" \
		--targets "Id=$instance,Port=443" --query 'TargetHealthDescriptions[0].TargetHealth.[State,Reason,Description]' \
		--output text 2>&1) || true
	if [ "${state%%[[:space:]]*}" = healthy ]; then
		echo "aircraft-ready: the load balancer reports $instance healthy"
		exit 0
	fi
	sleep 5
done
fail "the load balancer does not report $instance healthy: ${state:-no answer}"
