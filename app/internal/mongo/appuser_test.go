package mongo_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aircraftdata/platform/app/internal/mongo"
)

// The app user gets readWrite on the records' database and nothing else; an existing user is updated, not created
// again. (FerretDB has no user management: the commands are checked as documents, not on a server.)
func TestAppUserCommand(t *testing.T) {
	for _, tc := range []struct {
		exists bool
		want   string
	}{
		{false, `{"createUser":"aircraft_app","pwd":"p\"w","roles":[{"role":"readWrite","db":"s3_files"}]}`},
		{true, `{"updateUser":"aircraft_app","pwd":"p\"w","roles":[{"role":"readWrite","db":"s3_files"}]}`},
	} {
		doc, err := bson.Marshal(mongo.AppUserCommand(tc.exists, "aircraft_app", `p"w`, "s3_files"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := bson.MarshalExtJSON(bson.Raw(doc), false, false)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("exists %v:\n got %s\nwant %s", tc.exists, got, tc.want)
		}
	}
}
