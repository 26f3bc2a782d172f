#!/bin/bash
# First boot of the aircraft service instance (EC2 user data; it runs once per instance).
# 1. cfn-init config set "tools": the aircraft-* scripts, /etc/aircraft/deploy.env and cfn-hup.
# 2. aircraft-apply: install and start the release, gate it, signal the stack's wait condition.
# Later stack updates never change this script: cfn-hup notices the new metadata and runs aircraft-apply.
# When a step before aircraft-apply fails, the release's wait condition is failed at once with the reason (its
# signal URL is read from the instance's metadata), instead of timing out.
set -euo pipefail
exec > >(tee -a /var/log/aircraft-user-data.log) 2>&1

fail() {
	local status=$? line=$1 handle reason
	trap - ERR
	reason="user data failed at line $line (exit $status): $(tail -n 3 /var/log/aircraft-user-data.log | tr -c '[:alnum:] ._:/=-' ' ' | cut -c1-800)"
	handle=$(aws cloudformation describe-stack-resource --region '@REGION@' --stack-name '@STACK@' \
		--logical-resource-id '@RESOURCE@' --query StackResourceDetail.Metadata --output text |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["AWS::CloudFormation::Init"]["tools"]["files"]["/etc/aircraft/wait-handle"]["content"].strip())') || exit "$status"
	curl -fsS -X PUT -H 'Content-Type:' --data-binary \
		"{\"Status\":\"FAILURE\",\"Reason\":\"$reason\",\"UniqueId\":\"user-data\",\"Data\":\"-\"}" "$handle" || true
	exit "$status"
}
trap 'fail $LINENO' ERR

if [ ! -x /opt/aws/bin/cfn-init ]; then
	dnf install -y aws-cfn-bootstrap
fi
/opt/aws/bin/cfn-init -v --region '@REGION@' --stack '@STACK@' --resource '@RESOURCE@' --configsets tools
trap - ERR
exec /usr/local/sbin/aircraft-apply
