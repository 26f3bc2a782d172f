package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// userDB is where the service's user is defined: DocumentDB keeps every user there, and a URI without authSource nor a
// database authenticates there.
const userDB = "admin"

// EnsureAppUser creates the user with password, or sets the password and roles of an existing one, with only readWrite
// on the records' database (its collections and indexes), connected as a user that may manage users (DocumentDB's
// master).
func (s *Store) EnsureAppUser(ctx context.Context, user, password string) error {
	if user == "" || password == "" {
		return errors.New("mongodb: the app user needs a name and a password")
	}
	admin := s.client.Database(userDB)
	var info struct {
		Users []bson.Raw `bson:"users"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "usersInfo", Value: user}}).Decode(&info); err != nil {
		return fmt.Errorf("mongodb: look up the app user %q: %w", user, err)
	}
	if err := admin.RunCommand(ctx, appUserCommand(len(info.Users) > 0, user, password, s.coll.Database().Name())).Err(); err != nil {
		return fmt.Errorf("mongodb: create or update the app user %q: %w", user, err)
	}
	return nil
}

// appUserCommand is the command that creates the user (or updates it, when it exists) with readWrite on db only.
func appUserCommand(exists bool, user, password, db string) bson.D {
	verb := "createUser"
	if exists {
		verb = "updateUser"
	}
	return bson.D{
		{Key: verb, Value: user},
		{Key: "pwd", Value: password},
		{Key: "roles", Value: bson.A{bson.D{{Key: "role", Value: "readWrite"}, {Key: "db", Value: db}}}},
	}
}
