package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// appRoleLock is the advisory lock key that serializes EnsureAppRole across instances starting at once.
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
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(appRoleLock)); err != nil {
			return err
		}
		var exists, super, owns, self bool
		var database string
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1),
			       EXISTS (SELECT FROM pg_roles WHERE rolname = $1 AND rolsuper),
			       EXISTS (SELECT FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1),
			       $1 = current_user, current_database()`, user).Scan(&exists, &super, &owns, &self, &database); err != nil {
			return err
		}
		if self {
			return fmt.Errorf("postgres: the app role %q is the user that runs the migrations: give it a role of its own", user)
		}
		if super || owns {
			return fmt.Errorf("postgres: the app role %q exists and is a superuser or owns tables: drop it or name another", user)
		}
		pw, err := tx.Conn().PgConn().EscapeString(password)
		if err != nil {
			return err
		}
		role, dbName := pgx.Identifier{user}.Sanitize(), pgx.Identifier{database}.Sanitize()
		stmt := "CREATE ROLE " + role + " LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '" + pw + "'"
		if exists {
			stmt = "ALTER ROLE " + role + " LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '" + pw + "'"
		}
		if _, err := tx.Exec(ctx, stmt); err != nil {
			// The statement holds the password: name the role only.
			return fmt.Errorf("postgres: create or alter the app role %q: %w", user, err)
		}
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
				return fmt.Errorf("postgres: app role %q: %s: %w", user, s, err)
			}
		}
		return nil
	})
}
