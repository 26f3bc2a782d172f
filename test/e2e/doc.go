// Package e2e holds the black-box API checks of the aircraft data platform, shared by both end-to-end targets: the
// local one (test/local: the service binary on the real local stack) and the AWS one (test/awsstack: a stack deployed
// with cdk). A target is a base URL, the roots that its TLS certificate chains to (the pinned self-signed certificate,
// or the system roots for ACME), the API token and write access to the service's bucket.
//
// Expected values come from the sample files themselves (the oracle in oracle.go), never from the service. The checks
// pass on a fresh stack and on one this suite has used before: each run uploads its files under a prefix of its own
// (see RunID), and the ingestion checks allow for snapshots that an earlier run already ingested (a snapshot counts
// once per database, whatever its key).
//
// The HTTP calls go through terratest's http-helper, waits and polls through its retry package.
package e2e
