// Package removal holds the removal policies of the stack's resources: what a stack delete (or a replacement) destroys,
// keeps or snapshots, by stage.
package removal

import "github.com/aws/aws-cdk-go/awscdk/v2"

// RetainIf is RETAIN when keep, else DESTROY.
func RetainIf(keep bool) awscdk.RemovalPolicy {
	if keep {
		return awscdk.RemovalPolicy_RETAIN
	}
	return awscdk.RemovalPolicy_DESTROY
}

// RetainInProd is the removal policy of data that cannot be snapshotted (logs, the bucket): kept in prod.
func RetainInProd(stage string) awscdk.RemovalPolicy {
	if stage == "prod" {
		return awscdk.RemovalPolicy_RETAIN
	}
	return awscdk.RemovalPolicy_DESTROY
}

// SnapshotInProd is the removal policy of stateful resources: dev destroys them with the stack, prod snapshots them.
func SnapshotInProd(stage string) awscdk.RemovalPolicy {
	if stage == "prod" {
		return awscdk.RemovalPolicy_SNAPSHOT
	}
	return awscdk.RemovalPolicy_DESTROY
}
