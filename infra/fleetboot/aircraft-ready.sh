#!/bin/bash
# aircraft-ready: the release gate of a fleet instance. Wait up to 120 s for GET /api/v1/ready on this instance,
# the check the load balancer's target group makes: every dependency (PostgreSQL, the Mongo-wire store, S3)
# reachable. aircraftd serves HTTPS with a certificate it makes in memory at start (the load balancer does not
# verify its targets either), so the check skips verification; it never leaves the instance.
set -uo pipefail

for _ in $(seq 1 60); do
	if curl -fsS --max-time 5 --insecure https://127.0.0.1/api/v1/ready; then
		echo
		exit 0
	fi
	sleep 2
done
echo "aircraft-ready: aircraftd did not become ready" >&2
systemctl status --no-pager aircraftd >&2 || true
tail -n 50 /var/log/aircraft/aircraftd.log >&2 || true
exit 1
