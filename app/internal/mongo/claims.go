package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// Claims.
//
// A download claims the hour it downloads before fetching anything, so that two requests (on one instance or many)
// never fetch the same file at the same time: a lane hour is the unit of a request and of the folder its files go to,
// and every file belongs to exactly one hour, so one claim per request covers all its files, whatever their number —
// two writes per request instead of two per file — and also two keys that would land on the same local path.
//
// A claim is a document {_id: name, owner, until} in the collection "<collection>_claims": inserting it is the claim,
// and the unique _id makes that atomic on every server, FerretDB included, whose findAndModify and updates are not
// atomic (FerretDB issue #3040: its SQLite handler reads and writes without a transaction; 16 racing findOneAndUpdate
// claims gave 6 winners in our tests).
//
// A claim lasts until `until`; its owner renews it while working and lets it go when done (Release). A claim whose
// owner died expires; taking it over is made atomic by first inserting a takeover token named after the expired claim:
// only one taker can insert it. A token is held for takeoverLease at most: a taker that died between inserting it and
// replacing the claim leaves it behind, and the next taker then inserts the token's next generation instead of finding
// the hour blocked for good.

type claimDoc struct {
	ID    string    `bson:"_id"` // what is claimed
	Owner string    `bson:"owner"`
	Until time.Time `bson:"until"`
}

// tokenDoc is a takeover under way: the expired claim it replaces and the generation of the token, which ends at until.
type tokenDoc struct {
	ID    tokenID   `bson:"_id"`
	Until time.Time `bson:"until"`
}

type tokenID struct {
	Takeover string    `bson:"takeover"` // the claim's name
	From     string    `bson:"from"`     // its expired owner
	Until    time.Time `bson:"until"`    // and lease
	Gen      int       `bson:"gen"`
}

// takeoverLease is how long a takeover token is held at most. A takeover's writes must end within two thirds of it from
// the start of the claim; a token older than that was left by a taker that died.
const takeoverLease = 30 * time.Second

// Claim claims name for owner until now+lease. It reports false when another owner holds it and its lease has not
// expired.
func (s *Store) Claim(ctx context.Context, name, owner string, now time.Time, lease time.Duration) (bool, error) {
	takeoverDeadline := time.Now().Add(takeoverLease * 2 / 3) // now is the caller's clock read just before
	mine := claimDoc{ID: name, Owner: owner, Until: now.Add(lease)}
	won, err := s.insertClaim(ctx, mine)
	if err != nil || won {
		return won, err
	}
	var c claimDoc
	switch err := s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&c); {
	case errors.Is(err, mongo.ErrNoDocuments): // released since the insert
		return s.insertClaim(ctx, mine)
	case err != nil:
		return false, fmt.Errorf("mongodb: read claim: %w", err)
	case c.Owner == owner: // ours already (a retry)
		return true, nil
	case !c.Until.Before(now):
		return false, nil
	}

	// Expired: only one taker gets to remove it, the one that inserts the token named after it.
	token, err := s.takeoverToken(ctx, c, now)
	if token == nil || err != nil {
		return false, err
	}
	defer func() { // even for a cancelled request: a token left behind holds up taking this claim over
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), takeoverLease/3)
		defer cancel()
		ids := make([]tokenID, 0, token.Gen+1) // earlier generations too: left by dead takers
		for gen := range token.Gen + 1 {
			id := *token
			id.Gen = gen
			ids = append(ids, id)
		}
		_, _ = s.claims.DeleteMany(dctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	}()
	// Done well before the token expires (its lease runs from the start of this call), or not at all: a taker passing
	// over this token must not find this one still at work.
	if s.onTakeover != nil {
		s.onTakeover()
	}
	tctx, cancel := context.WithDeadline(ctx, takeoverDeadline)
	defer cancel()
	// Only the claim as read: renewed meanwhile (its owner woke up), it is not expired any more and stays.
	del, err := s.claims.DeleteOne(tctx, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: c.Owner}, {Key: "until", Value: c.Until}})
	if err != nil {
		return false, fmt.Errorf("mongodb: take over claim: %w", err)
	}
	if del.DeletedCount == 0 {
		return false, nil
	}
	return s.insertClaim(tctx, mine)
}

// takeoverToken inserts a token for taking the expired claim c over, and returns its id; nil if another taker holds
// one. A token whose holder died (older than takeoverLease) is passed over: the next generation is tried.
func (s *Store) takeoverToken(ctx context.Context, c claimDoc, now time.Time) (*tokenID, error) {
	for gen := 0; ; gen++ {
		t := tokenDoc{ID: tokenID{Takeover: c.ID, From: c.Owner, Until: c.Until, Gen: gen}, Until: now.Add(takeoverLease)}
		_, err := s.claims.InsertOne(ctx, t)
		if err == nil {
			return &t.ID, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, fmt.Errorf("mongodb: take over claim: %w", err)
		}
		var held tokenDoc
		switch err := s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: t.ID}}).Decode(&held); {
		case errors.Is(err, mongo.ErrNoDocuments): // that takeover has just ended
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("mongodb: read takeover token: %w", err)
		case !held.Until.Before(now): // under way
			return nil, nil
		}
	}
}

// insertClaim inserts c, and reports false if its name is claimed already.
func (s *Store) insertClaim(ctx context.Context, c claimDoc) (bool, error) {
	_, err := s.claims.InsertOne(ctx, c)
	switch {
	case mongo.IsDuplicateKeyError(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("mongodb: claim: %w", err)
	}
	return true, nil
}

// Renew extends owner's claim on name to until. It fails with lanes.ErrClaimLost when the claim is not owner's any more
// (taken over after it expired, or released).
func (s *Store) Renew(ctx context.Context, name, owner string, until time.Time) error {
	res, err := s.claims.UpdateOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: until}}}})
	if err != nil {
		return fmt.Errorf("mongodb: renew claim: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongodb: renew claim %s of %s: %w", name, owner, lanes.ErrClaimLost)
	}
	return nil
}

// Release lets owner's claim on name go. A claim left behind by a failed release expires.
func (s *Store) Release(ctx context.Context, name, owner string) error {
	if _, err := s.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "owner", Value: owner}}); err != nil {
		return fmt.Errorf("mongodb: release claim: %w", err)
	}
	return nil
}
