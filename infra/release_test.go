package main

// A redeploy after an app change updates the instance in place: same instance, new cfn-init metadata (which cfn-hup
// applies) and a new wait condition for `cdk deploy` to wait on. The user data never changes, so EC2 never stops or
// replaces the instance for a release.

import (
	"strings"
	"testing"
)

func TestAppChangeUpdatesTheInstanceInPlace(t *testing.T) {
	v1 := synth(t, nil, fakeBinary(t, "aircraftd release 1"))
	v1again := synth(t, nil, fakeBinary(t, "aircraftd release 1"))
	v2 := synth(t, nil, fakeBinary(t, "aircraftd release 2"))

	i1, i2 := v1.One(t, "AWS::EC2::Instance"), v2.One(t, "AWS::EC2::Instance")
	if i1.ID != i2.ID {
		t.Fatalf("the instance is replaced: %s -> %s", i1.ID, i2.ID)
	}
	if jsonOf(i1.Props) != jsonOf(i2.Props) {
		t.Errorf("instance properties change (user data or others): EC2 would stop or replace the instance")
	}
	if jsonOf(i1.Raw["Metadata"]) == jsonOf(i2.Raw["Metadata"]) {
		t.Error("the cfn-init metadata does not change: cfn-hup would not deploy the new binary")
	}
	w1, w2 := v1.One(t, "AWS::CloudFormation::WaitCondition"), v2.One(t, "AWS::CloudFormation::WaitCondition")
	if w1.ID == w2.ID {
		t.Error("same wait condition: `cdk deploy` would not wait for the new release")
	}
	if v1.One(t, "AWS::CloudFormation::WaitCondition").ID != v1again.One(t, "AWS::CloudFormation::WaitCondition").ID {
		t.Error("the release id is not stable for the same binary")
	}
	for _, w := range []Resource{w1, w2} {
		if w.Props["Timeout"] != "1200" || w.Props["Count"] != float64(1) || w.Raw["CreationPolicy"] != nil {
			t.Errorf("%s: %s", w.ID, jsonOf(w.Raw))
		}
		deps := jsonOf(w.Raw["DependsOn"])
		if !strings.Contains(deps, i1.ID) || !strings.Contains(deps, v1.One(t, "AWS::EC2::EIPAssociation").ID) {
			t.Errorf("%s depends on %s", w.ID, deps)
		}
	}
	// Only the binary asset, the release files and the wait condition differ.
	if v1.Output("ReleaseId") == v2.Output("ReleaseId") {
		t.Error("ReleaseId output unchanged")
	}
	for _, typ := range []string{"AWS::RDS::DBInstance", "AWS::DocDB::DBCluster", "AWS::S3::Bucket", "AWS::EC2::SecurityGroup", "AWS::EC2::EIP"} {
		if jsonOf(v1.Resources(typ)) != jsonOf(v2.Resources(typ)) {
			t.Errorf("%s changes with the app", typ)
		}
	}
}
