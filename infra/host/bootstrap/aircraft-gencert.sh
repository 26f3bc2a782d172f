#!/bin/bash
# aircraft-gencert: without a domain, make the self-signed certificate of the service once (aircraftd gencert keeps
# an existing pair) for the public address and DNS name that IMDSv2 reports, and publish the certificate - never
# the key - to the stack's SSM parameter so that clients and the e2e tests can trust it.
set -euo pipefail

# shellcheck source=/dev/null
. /etc/aircraft/deploy.env
[ "$TLS_MODE" = selfsigned ] || exit 0

token=$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 900' \
	http://169.254.169.254/latest/api/token)
imds() {
	curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

# The Elastic IP is associated just after the instance starts: wait until IMDSv2 reports it.
hosts=$ELASTIC_IP
for _ in $(seq 1 60); do
	if [ "$(imds public-ipv4 || true)" = "$ELASTIC_IP" ]; then
		dns=$(imds public-hostname || true)
		if [ -n "$dns" ]; then
			hosts="$ELASTIC_IP,$dns"
		fi
		break
	fi
	sleep 5
done

install -d -o aircraftd -g aircraftd -m 0750 "$(dirname "$TLS_CERT_FILE")"
runuser -u aircraftd -- /opt/aircraft/bin/aircraftd gencert -cert "$TLS_CERT_FILE" -key "$TLS_KEY_FILE" -hosts "$hosts"
aws ssm put-parameter --region "$CFN_REGION" --name "$CERT_PARAMETER" --type String --overwrite \
	--value "file://$TLS_CERT_FILE" >/dev/null
echo "aircraft-gencert: certificate for $hosts published to $CERT_PARAMETER"
