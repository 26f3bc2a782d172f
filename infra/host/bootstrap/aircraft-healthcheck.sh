#!/bin/bash
# aircraft-healthcheck: the release gate. Waits up to GATE_SECONDS (deploy.env; 180 s) for GET /api/v1/ready over
# HTTPS on this instance to answer 200 - aircraftd is up and reaches PostgreSQL, the Mongo-wire store and S3 - with
# the certificate that clients see:
#   selfsigned: https://<Elastic IP>/api/v1/ready through 127.0.0.1, verified with the instance's certificate;
#   acme:       https://<domain>/api/v1/ready through 127.0.0.1, verified with the system CAs (the first request
#               gets the certificate by http-01, so the domain must already point at the Elastic IP).
# A service that systemd restarts 3 times meanwhile (a build that crashes) fails the gate at once.
# On failure it prints why on one line: the last answer, and the last lines of the service log.
set -uo pipefail
R="${AIRCRAFT_ROOT:-}"

# shellcheck source=/dev/null
. "$R/etc/aircraft/deploy.env"
# shellcheck source=/dev/null
port=$(. "$R/etc/aircraft/aircraftd.env" && echo "${HTTP_ADDR##*:}")

if [ "$TLS_MODE" = selfsigned ]; then
	host=$ELASTIC_IP
	trust=(--cacert "$R$TLS_CERT_FILE")
else
	host=$DOMAIN
	trust=()
fi
url="https://$host:$port/api/v1/ready"

restarts() { systemctl show -p NRestarts --value aircraftd 2>/dev/null || echo 0; }
deadline=$((SECONDS + ${GATE_SECONDS:-180}))
started=$(restarts)
answer=""
while :; do
	if answer=$(curl -sS --fail-with-body --max-time 5 "${trust[@]}" --connect-to "$host:$port:127.0.0.1:$port" "$url" 2>&1); then
		echo "aircraft-healthcheck: $url: $answer"
		exit 0
	fi
	if [ $(($(restarts) - started)) -ge 3 ]; then
		answer="$answer (aircraftd crashed and was restarted 3 times)"
		break
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		break
	fi
	sleep 1
done
if [ "$TLS_MODE" = acme ]; then
	resolved=$(getent hosts "$DOMAIN" | awk '{print $1; exit}')
	# A pre-allocated Elastic IP (elasticIpAllocationId) is not in deploy.env: the instance's public address is it.
	eip=${ELASTIC_IP:-$(curl -sS --max-time 2 -H "X-aws-ec2-metadata-token: $(curl -sS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)" http://169.254.169.254/latest/meta-data/public-ipv4 || true)}
	if [ "$resolved" != "$eip" ]; then
		answer="$answer (the domain $DOMAIN resolves to '${resolved}', not to the Elastic IP '$eip': ACME cannot issue the certificate)"
	fi
fi
log=$(tail -n 5 "$R/var/log/aircraft/aircraftd.log" 2>/dev/null | tr '\n' ' ')
echo "gate failed: $url did not answer 200: $answer | aircraftd log: $log" | tr '\n' ' '
echo
exit 1
