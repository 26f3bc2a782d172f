package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// appRoleLock is the advisory lock key that serializes EnsureAppRole and EnsureWorkerRole across instances starting at
// once.
const appRoleLock = 0x61697263726f6c65 // "aircrole"

// EnsureAppRole creates the login role user with password, or sets the password of an existing one, and gives it only
// what the service's queries need, connected as db's user (the master, who ran the migrations and owns the tables):
// CONNECT and TEMPORARY on the database (ingestion stages its batches in a temporary table), USAGE on schema public,
// SELECT, INSERT, UPDATE, DELETE on every table of public (aircraft_stats, ingested_objects, snapshots, jobs, contents:
// the service reads and writes each of them) but goose's version table, where it has SELECT only (Open sees that no
// migration is pending and changes nothing), USAGE and SELECT on public's sequences, and the same on the tables and
// sequences later migrations create (default privileges of db's user). It never gets SUPERUSER, CREATEDB, CREATEROLE,
// nor owns a table, and PUBLIC's CREATE on schema public (granted by PostgreSQL before 15) is revoked: the role cannot
// create, alter nor drop a table. An existing role that is a superuser or owns a table of public, or db's own user, is
// refused.
func (db *DB) EnsureAppRole(ctx context.Context, user, password string) error {
	if user == "" || password == "" {
		return errors.New("postgres: the app role needs a user name and a password")
	}
	return db.ensureRole(ctx, "app role", user, func(tx pgx.Tx) error {
		pw, err := tx.Conn().PgConn().EscapeString(password)
		if err != nil {
			return err
		}
		return alterRole(ctx, tx, user, "PASSWORD '"+pw+"'")
	})
}

// EnsureWorkerRole creates the login role user of the ingestion worker, or updates an existing one, with no password,
// and gives it the app role's privileges (EnsureAppRole: the worker runs the same ingestion queries, and no DDL). Where
// the role rds_iam exists (RDS), user is made a member of it: the worker then logs in with IAM database auth tokens
// only; iam reports whether it was. Elsewhere (a local PostgreSQL) the role has no way to log in but the ones the
// database's administrator gives it. The same roles as EnsureAppRole's are refused.
func (db *DB) EnsureWorkerRole(ctx context.Context, user string) (iam bool, err error) {
	if user == "" {
		return false, errors.New("postgres: the worker role needs a user name")
	}
	err = db.ensureRole(ctx, "worker role", user, func(tx pgx.Tx) error {
		// PASSWORD NULL: a password set before (by hand, or by a test) no longer logs in.
		if err := alterRole(ctx, tx, user, "PASSWORD NULL"); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam')`).Scan(&iam); err != nil || !iam {
			return err
		}
		if _, err := tx.Exec(ctx, "GRANT rds_iam TO "+pgx.Identifier{user}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: worker role %q: grant rds_iam: %w", user, err)
		}
		return nil
	})
	return iam, err
}

// ensureRole makes the login role user (what names it in errors) in one transaction, under appRoleLock: it refuses db's
// own user, a superuser and an owner of a table of public, lets create (which calls alterRole) create or alter the
// role, then grants it the service's privileges, those EnsureAppRole lists.
func (db *DB) ensureRole(ctx context.Context, what, user string, create func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(appRoleLock)); err != nil {
			return err
		}
		var super, owns, self bool
		var database string
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1 AND rolsuper),
			       EXISTS (SELECT FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1),
			       $1 = current_user, current_database()`, user).Scan(&super, &owns, &self, &database); err != nil {
			return err
		}
		if self {
			return fmt.Errorf("postgres: the %s %q is the user that runs the migrations: give it a role of its own", what, user)
		}
		if super || owns {
			return fmt.Errorf("postgres: the %s %q exists and is a superuser or owns tables: drop it or name another", what, user)
		}
		if err := create(tx); err != nil {
			return err
		}
		role, dbName := pgx.Identifier{user}.Sanitize(), pgx.Identifier{database}.Sanitize()
		for _, s := range []string{
			"GRANT CONNECT, TEMPORARY ON DATABASE " + dbName + " TO " + role,
			"REVOKE CREATE ON SCHEMA public FROM PUBLIC",
			"GRANT USAGE ON SCHEMA public TO " + role,
			"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
			"REVOKE INSERT, UPDATE, DELETE ON TABLE public.goose_db_version FROM " + role,
			"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + role,
			"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + role,
			"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO " + role,
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("postgres: %s %q: %s: %w", what, user, s, err)
			}
		}
		return nil
	})
}

// alterRole creates the login role user, or alters the existing one, with no privilege beyond logging in, and password,
// a PASSWORD clause.
func alterRole(ctx context.Context, tx pgx.Tx, user, password string) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, user).Scan(&exists); err != nil {
		return err
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	stmt := verb + " ROLE " + pgx.Identifier{user}.Sanitize() + " LOGIN NOCREATEDB NOCREATEROLE NOINHERIT " + password
	if _, err := tx.Exec(ctx, stmt); err != nil {
		// The statement may hold a password: name the role only.
		return fmt.Errorf("postgres: create or alter the role %q: %w", user, err)
	}
	return nil
}
