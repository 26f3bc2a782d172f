package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// DieTakingOver leaves behind what a taker that died while taking name's expired claim over leaves: its takeover token,
// held until until, with the claim still in place.
func (s *Store) DieTakingOver(ctx context.Context, name string, until time.Time) error {
	var c claimDoc
	if err := s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&c); err != nil {
		return err
	}
	_, err := s.claims.InsertOne(ctx, tokenDoc{ID: tokenID{Takeover: name, From: c.Owner, Until: c.Until}, Until: until})
	return err
}

// OnTakeover makes fn run between a taker's read of an expired claim and its removal.
func (s *Store) OnTakeover(fn func()) { s.onTakeover = fn }

// ListsApart reports whether the file list has a client of its own.
func (s *Store) ListsApart() bool { return s.reads != s.client }

// AppUserCommand is the command EnsureAppUser sends to create or update the app user.
var AppUserCommand = appUserCommand
