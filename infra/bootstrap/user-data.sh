#!/bin/bash
# First boot of the aircraft service instance (EC2 user data; it runs once per instance).
# 1. cfn-init config set "tools": the aircraft-* scripts, /etc/aircraft/deploy.env and cfn-hup.
# 2. aircraft-apply: install and start the release, check its health, signal the stack's wait condition.
# Later stack updates never change this script: cfn-hup notices the new metadata and runs aircraft-apply.
set -euo pipefail
exec > >(tee -a /var/log/aircraft-user-data.log) 2>&1

if [ ! -x /opt/aws/bin/cfn-init ]; then
	dnf install -y aws-cfn-bootstrap
fi
/opt/aws/bin/cfn-init -v --region '@REGION@' --stack '@STACK@' --resource '@RESOURCE@' --configsets tools
exec /usr/local/sbin/aircraft-apply
