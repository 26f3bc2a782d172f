package main

import "testing"

// A first create of prod goes without the protections that block its rollback (and the retry after it); the follow-up
// deploy, the one every later update is, carries them.
func TestFirstCreateCanRollBackAndTheUpdateProtects(t *testing.T) {
	first := synth(t, map[string]any{"stage": "prod", "stackName": "AircraftProd", "allowedCidr": "203.0.113.0/24", "firstCreate": "true"}, "")
	update := stackOf(t, "prod")
	for name, c := range map[string]struct {
		s         *Synth
		protected bool
	}{"first create": {first, false}, "update": {update, true}} {
		s := c.s
		art := s.Manifest["artifacts"].(map[string]any)[s.Config.StackName].(map[string]any)
		props, _ := art["properties"].(map[string]any)
		if got := props["terminationProtection"] == true; got != c.protected {
			t.Errorf("%s: termination protection %v", name, props["terminationProtection"])
		}
		db := s.One(t, "AWS::RDS::DBInstance")
		doc := s.One(t, "AWS::DocDB::DBCluster")
		if db.Props["DeletionProtection"] != c.protected || doc.Props["DeletionProtection"] != c.protected {
			t.Errorf("%s: deletion protection RDS %v, DocumentDB %v", name, db.Props["DeletionProtection"], doc.Props["DeletionProtection"])
		}
		bucket := s.Resource(t, s.bucketID(t))
		if want := map[bool]string{true: "Retain", false: "Delete"}[c.protected]; bucket.Raw["DeletionPolicy"] != want {
			t.Errorf("%s: data bucket DeletionPolicy %v, want %s", name, bucket.Raw["DeletionPolicy"], want)
		}
		// Neither leaves data behind by accident: no auto-delete of objects in prod, snapshots of the databases.
		if len(s.Resources("Custom::S3AutoDeleteObjects")) > 0 || db.Raw["DeletionPolicy"] != "Snapshot" {
			t.Errorf("%s: auto-delete %d, RDS DeletionPolicy %v", name, len(s.Resources("Custom::S3AutoDeleteObjects")), db.Raw["DeletionPolicy"])
		}
	}
}
