#!/bin/bash
# aircraft-healthcheck: wait up to 90 s for aircraftd to answer on this instance.
#   selfsigned: GET https://<elastic ip>/api/v1/health through 127.0.0.1, verified with the published certificate.
#   acme: the certificate is issued on the first TLS request for the domain (its DNS record may not point here
#         yet), so check that the port-80 listener answers with its redirect to https.
set -uo pipefail

# shellcheck source=/dev/null
. /etc/aircraft/deploy.env

for _ in $(seq 1 45); do
	if [ "$TLS_MODE" = selfsigned ]; then
		if curl -fsS --max-time 5 --cacert "$TLS_CERT_FILE" --connect-to "::127.0.0.1:" \
			"https://$ELASTIC_IP/api/v1/health"; then
			echo
			exit 0
		fi
	else
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1/api/v1/health") || true
		case "$code" in
		301 | 302 | 307 | 308) exit 0 ;;
		esac
	fi
	sleep 2
done
echo "aircraft-healthcheck: aircraftd did not become healthy" >&2
systemctl status --no-pager aircraftd >&2 || true
tail -n 50 /var/log/aircraft/aircraftd.log >&2 || true
exit 1
