#!/bin/bash
# First boot of an instance of the load-balanced fleet (EC2 user data of the launch template; once per instance).
# Release @RELEASE@: every release changes this line, so a release is a new launch template version, which the Auto
# Scaling group's rolling update rolls out one instance at a time.
# 1. cfn-init config set "deploy": binary, environment, units, the shared download folder (EFS), aircraftd
#    started, then the release gate aircraft-ready (GET /api/v1/ready, the load balancer's health check).
# 2. cfn-signal reports the result to the Auto Scaling group: its creation policy and rolling update wait for one
#    success per new instance. A failure stops the rollout and CloudFormation rolls back; the old instances serve.
set -uo pipefail
exec > >(tee -a /var/log/aircraft-user-data.log) 2>&1

status=0
if [ ! -x /opt/aws/bin/cfn-init ]; then
	dnf install -y aws-cfn-bootstrap || status=$?
fi
if [ "$status" -eq 0 ]; then
	/opt/aws/bin/cfn-init -v --region '@REGION@' --stack '@STACK@' --resource '@RESOURCE@' --configsets deploy || status=$?
fi
echo "aircraft user data: release @RELEASE@: status $status"
/opt/aws/bin/cfn-signal --exit-code "$status" --reason "aircraftd release @RELEASE@" \
	--region '@REGION@' --stack '@STACK@' --resource '@RESOURCE@'
exit "$status"
