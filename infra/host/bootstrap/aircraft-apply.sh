#!/bin/bash
# aircraft-apply: bring this instance to the stack's current cfn-init metadata (config set "deploy": binary,
# environment, systemd unit, certificate), gate the release (aircraft-healthcheck: /api/v1/ready over HTTPS) and
# report the result to the release's wait condition, which `cdk deploy` waits for.
# A release that fails its gate is taken back before the failure is reported: the files of the last release that
# passed its gate are restored and aircraftd is restarted on them. The stack then rolls back, and cfn-hup's re-apply
# of the old metadata finds that release installed, healthy and already confirmed: it signals nothing.
# Runs from the user data at first boot and from cfn-hup after every stack update; one run at a time.
# AIRCRAFT_ROOT and AIRCRAFT_CFN_BIN (a root folder, the cfn-* tools) are for the offline test only (test/release).
set -uo pipefail
R="${AIRCRAFT_ROOT:-}"
CFN="${AIRCRAFT_CFN_BIN:-/opt/aws/bin}"
SBIN="$R/usr/local/sbin"
GOOD="$R/var/lib/aircraft-release/good" # the files of the last release that passed its gate
# The files of a release, kept and restored together.
FILES=(/opt/aircraft/bin/aircraftd /etc/aircraft/aircraftd.env /etc/systemd/system/aircraftd.service
	/etc/aircraft/rds-ca.pem /etc/aircraft/deploy.env /etc/aircraft/wait-handle)

exec 9>"$R/run/aircraft-apply.lock"
flock 9

# shellcheck source=/dev/null
. "$R/etc/aircraft/deploy.env"

# An instance that CloudFormation is replacing leaves the release to its successor, which gates and signals it.
self=$("$SBIN/aircraft-signal" --instance-id) || self=""
current=$(aws cloudformation describe-stack-resource --region "$CFN_REGION" --stack-name "$CFN_STACK" \
	--logical-resource-id "$CFN_RESOURCE" --query StackResourceDetail.PhysicalResourceId --output text 2>/dev/null) || current=""
if [ -n "$self" ] && [ -n "$current" ] && [ "$current" != None ] && [ "$current" != "$self" ]; then
	echo "aircraft-apply: this instance ($self) is being replaced by $current: nothing to apply"
	exit 0
fi

# copy SRC DST: replace DST by a copy of SRC in one rename (a running binary cannot be overwritten in place).
copy() {
	mkdir -p "$(dirname "$2")" && cp -p "$1" "$2.new" && mv -f "$2.new" "$2"
}

status=0
reason=""
"$CFN/cfn-init" -v --region "$CFN_REGION" --stack "$CFN_STACK" --resource "$CFN_RESOURCE" \
	--configsets deploy || status=$?
# shellcheck source=/dev/null
. "$R/etc/aircraft/deploy.env" # rewritten by cfn-init: now names the release just applied
release=${RELEASE:?} wait_condition=${WAIT_CONDITION:?}
handle=$(cat "$R/etc/aircraft/wait-handle" 2>/dev/null)
if [ "$status" -ne 0 ]; then
	reason="cfn-init failed (exit $status): $(tail -n 5 "$R/var/log/cfn-init.log" 2>/dev/null)"
else
	gate=$("$SBIN/aircraft-healthcheck" 2>&1) || { status=1; reason="$gate"; }
fi

if [ "$status" -eq 0 ]; then
	for f in "${FILES[@]}"; do
		if [ -e "$R$f" ]; then copy "$R$f" "$GOOD$f"; fi
	done
	echo "aircraft-apply: release $release passed its gate; it is the last good release"
elif [ -e "$GOOD/etc/aircraft/deploy.env" ]; then
	# shellcheck source=/dev/null
	good=$(. "$GOOD/etc/aircraft/deploy.env" && echo "$RELEASE")
	echo "aircraft-apply: release $release failed: $reason" >&2
	echo "aircraft-apply: restoring release $good" >&2
	for f in "${FILES[@]}"; do
		if [ -e "$GOOD$f" ]; then copy "$GOOD$f" "$R$f"; fi
	done
	systemctl daemon-reload
	# A crash-looping release may have hit systemd's start limit (5 starts in 10 s by default): the unit is then
	# failed and refuses the restart below until its failure is cleared.
	systemctl reset-failed aircraftd || true
	systemctl restart aircraftd
	if "$SBIN/aircraft-healthcheck" >/dev/null 2>&1; then
		reason="restored release $good: healthy; $reason"
	else
		reason="restored release $good: NOT healthy; $reason"
	fi
fi
echo "aircraft-apply: release $release: status $status${reason:+: $reason}"
"$SBIN/aircraft-signal" "$status" "$wait_condition" "$handle" "aircraftd release $release: ${reason:-healthy}"
exit "$status"
