// Package postgres provides the stack's PostgreSQL: an external server named by DATABASE_URL (or DB_HOST...), or else
// Debian's own cluster, installed, started and given the aircraft role and database when needed.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Local role, password and database made on the Debian cluster.
const (
	User     = "aircraft"
	Password = "aircraft"
	Database = "aircraft_db"
	Host     = "127.0.0.1"
)

// DB is the server the stack uses.
type DB struct {
	URL      string // DATABASE_URL
	AdminURL string // DB_ADMIN_URL: a role that may CREATE DATABASE, on a maintenance database
	Origin   string // for people: where it comes from

	stop func(context.Context) error // nil unless this run started the cluster
}

// Started reports whether this run started the server (and will stop it).
func (d *DB) Started() bool { return d.stop != nil }

// Stop stops the cluster if this run started it; otherwise it does nothing.
func (d *DB) Stop(ctx context.Context) error {
	if d.stop == nil {
		return nil
	}
	return d.stop(ctx)
}

// Ensure returns a reachable PostgreSQL. getenv reads the caller's environment.
func Ensure(ctx context.Context, getenv func(string) string, log io.Writer) (*DB, error) {
	if u, ok := URLFromEnv(getenv); ok {
		if err := Ping(ctx, u); err != nil {
			return nil, fmt.Errorf("postgres: DATABASE_URL/DB_HOST points at %s, which is not reachable: %w\n"+
				"(unset DATABASE_URL and DB_HOST to use the local Debian cluster instead)", redact(u), err)
		}
		admin := getenv("DB_ADMIN_URL")
		if admin == "" {
			admin = WithDatabase(u, "postgres")
		}
		return &DB{URL: u, AdminURL: admin, Origin: "external server " + redact(u)}, nil
	}

	// The usual local URL answers: a cluster is already running and set up (a role set up before it needed CREATEROLE
	// is fixed).
	u := localURL("5432", Database)
	pingErr := Ping(ctx, u)
	if pingErr == nil {
		if err := ensureCreateRole(ctx, u); err != nil {
			return nil, err
		}
		return &DB{URL: u, AdminURL: localURL("5432", "postgres"), Origin: "local cluster (already running, left running)"}, nil
	}
	return ensureLocal(ctx, log, fmt.Errorf("%s: %w", redact(u), pingErr))
}

// URLFromEnv returns DATABASE_URL, or a URL built from DB_HOST DB_PORT DB_USER DB_PASSWORD DB_NAME DB_SSLMODE when
// DB_HOST is set.
func URLFromEnv(getenv func(string) string) (string, bool) {
	if u := getenv("DATABASE_URL"); u != "" {
		return u, true
	}
	host := getenv("DB_HOST")
	if host == "" {
		return "", false
	}
	port := cmp(getenv("DB_PORT"), "5432")
	u := url.URL{
		Scheme:   "postgres",
		Host:     net.JoinHostPort(host, port),
		Path:     "/" + cmp(getenv("DB_NAME"), Database),
		RawQuery: "sslmode=" + url.QueryEscape(cmp(getenv("DB_SSLMODE"), "prefer")),
	}
	if user := getenv("DB_USER"); user != "" {
		if pw := getenv("DB_PASSWORD"); pw != "" {
			u.User = url.UserPassword(user, pw)
		} else {
			u.User = url.User(user)
		}
	}
	return u.String(), true
}

// WithDatabase returns the URL u pointing at database db instead. It returns u unchanged when u is not a URL (e.g. a
// key=value DSN).
func WithDatabase(u, db string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return u
	}
	p.Path = "/" + db
	p.RawPath = ""
	return p.String()
}

// Ping connects to u and pings the server.
func Ping(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

func localURL(port, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(User, Password),
		Host:     net.JoinHostPort(Host, port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil && p.Scheme != "" {
		return p.Redacted()
	}
	return "(DSN)"
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Cluster is one line of pg_lsclusters.
type Cluster struct {
	Version, Name, Port, Status string
}

// ParseClusters parses `pg_lsclusters --no-header` output.
func ParseClusters(out string) []Cluster {
	var cs []Cluster
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		cs = append(cs, Cluster{Version: f[0], Name: f[1], Port: f[2], Status: f[3]})
	}
	return cs
}

// pick prefers the cluster on 5432, then one named main, newest version first.
func pick(cs []Cluster) (Cluster, bool) {
	if len(cs) == 0 {
		return Cluster{}, false
	}
	sorted := append([]Cluster(nil), cs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if (a.Port == "5432") != (b.Port == "5432") {
			return a.Port == "5432"
		}
		if (a.Name == "main") != (b.Name == "main") {
			return a.Name == "main"
		}
		return versionLess(b.Version, a.Version)
	})
	return sorted[0], true
}

func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// ensureLocal sets up Debian's cluster; why says why the local URL did not answer.
func ensureLocal(ctx context.Context, log io.Writer, why error) (*DB, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("postgres: DATABASE_URL is unset and the local database does not answer (%v); "+
			"setting it up needs root (apt-get, pg_ctlcluster, psql as postgres): run as root, or set DATABASE_URL to a reachable server", why)
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		return nil, fmt.Errorf("postgres: DATABASE_URL is unset and the local database does not answer (%v); "+
			"this is not Debian (no /etc/debian_version), so install and start PostgreSQL yourself and set DATABASE_URL (see docs/local-stack.md)", why)
	}
	if err := install(ctx, log); err != nil {
		return nil, err
	}

	out, err := run(ctx, nil, "pg_lsclusters", "--no-header")
	if err != nil {
		return nil, fmt.Errorf("postgres: pg_lsclusters: %w", err)
	}
	c, ok := pick(ParseClusters(out))
	if !ok {
		if c, err = createCluster(ctx, log); err != nil {
			return nil, err
		}
	}

	db := &DB{Origin: fmt.Sprintf("local cluster %s/%s (already running, left running)", c.Version, c.Name)}
	if c.Status != "online" {
		fmt.Fprintf(log, "postgres: starting cluster %s/%s on port %s\n", c.Version, c.Name, c.Port)
		if _, err := run(ctx, nil, "pg_ctlcluster", c.Version, c.Name, "start"); err != nil {
			return nil, fmt.Errorf("postgres: start cluster %s/%s: %w (log: /var/log/postgresql/postgresql-%s-%s.log)", c.Version, c.Name, err, c.Version, c.Name)
		}
		db.Origin = fmt.Sprintf("local cluster %s/%s (started, stopped on exit)", c.Version, c.Name)
		db.stop = func(ctx context.Context) error {
			if _, err := run(ctx, nil, "pg_ctlcluster", c.Version, c.Name, "stop"); err != nil {
				return fmt.Errorf("postgres: stop cluster %s/%s: %w", c.Version, c.Name, err)
			}
			return nil
		}
	}

	if err := createRoleAndDatabase(ctx, c.Port); err != nil {
		_ = db.Stop(ctx)
		return nil, err
	}
	db.URL, db.AdminURL = localURL(c.Port, Database), localURL(c.Port, "postgres")
	if err := waitPing(ctx, db.URL, 30*time.Second); err != nil {
		_ = db.Stop(ctx)
		return nil, fmt.Errorf("postgres: cluster %s/%s is up but %s does not answer: %w (log: /var/log/postgresql/postgresql-%s-%s.log)",
			c.Version, c.Name, redact(db.URL), err, c.Version, c.Name)
	}
	return db, nil
}

// install installs Debian's postgresql package unless the server is there. A failed install is retried once after
// apt-get update.
func install(ctx context.Context, log io.Writer) error {
	if _, err := exec.LookPath("pg_ctlcluster"); err == nil {
		if vs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(vs) > 0 {
			return nil
		}
	}
	fmt.Fprintln(log, "postgres: installing Debian's postgresql package (apt-get install -y postgresql)")
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	installArgs := []string{"-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", "postgresql"}
	if _, err := run(ctx, env, "apt-get", installArgs...); err == nil {
		return nil
	}
	fmt.Fprintln(log, "postgres: install failed; running apt-get update and retrying")
	if _, err := run(ctx, env, "apt-get", "-o", "DPkg::Lock::Timeout=600", "update"); err != nil {
		return fmt.Errorf("postgres: apt-get update: %w", err)
	}
	if _, err := run(ctx, env, "apt-get", installArgs...); err != nil {
		return fmt.Errorf("postgres: apt-get install postgresql: %w", err)
	}
	return nil
}

// createCluster makes a "main" cluster for the newest installed server (the package normally does this itself unless
// told not to).
func createCluster(ctx context.Context, log io.Writer) (Cluster, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		return Cluster{}, errors.New("postgres: no server under /usr/lib/postgresql after installing postgresql")
	}
	var newest string
	for _, b := range bins {
		v := filepath.Base(filepath.Dir(filepath.Dir(b)))
		if newest == "" || versionLess(newest, v) {
			newest = v
		}
	}
	fmt.Fprintf(log, "postgres: creating cluster %s/main\n", newest)
	if _, err := run(ctx, nil, "pg_createcluster", newest, "main"); err != nil {
		return Cluster{}, fmt.Errorf("postgres: pg_createcluster %s main: %w", newest, err)
	}
	out, err := run(ctx, nil, "pg_lsclusters", "--no-header")
	if err != nil {
		return Cluster{}, err
	}
	for _, c := range ParseClusters(out) {
		if c.Version == newest && c.Name == "main" {
			return c, nil
		}
	}
	return Cluster{}, fmt.Errorf("postgres: cluster %s/main not listed after pg_createcluster", newest)
}

// setupSQL creates (or fixes) the role and the database; safe to run again. The role has CREATEROLE, as RDS's master
// user has: aircraftd creates its own least-privileged role with it (DB_APP_SECRET_ARN).
var setupSQL = fmt.Sprintf(`
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN
    CREATE ROLE %[1]s LOGIN CREATEDB CREATEROLE PASSWORD '%[2]s';
  ELSE
    ALTER ROLE %[1]s LOGIN CREATEDB CREATEROLE PASSWORD '%[2]s';
  END IF;
END
$$;
SELECT 'CREATE DATABASE %[3]s OWNER %[1]s'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%[3]s')\gexec
`, User, Password, Database)

// ensureCreateRole gives the local role CREATEROLE when a cluster set up by an older devstack lacks it (the role tests
// of aircraftd need it), by running the setup again; it says how to do so by hand where it cannot.
func ensureCreateRole(ctx context.Context, u string) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var can bool
	if err := conn.QueryRow(ctx, `SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user`).Scan(&can); err != nil || can {
		return err
	}
	if err := createRoleAndDatabase(ctx, "5432"); err != nil {
		return fmt.Errorf("%w\n(the role %s needs CREATEROLE: runuser -u postgres -- psql -c 'ALTER ROLE %s CREATEROLE')", err, User, User)
	}
	return nil
}

func createRoleAndDatabase(ctx context.Context, port string) error {
	cmd := exec.CommandContext(ctx, "runuser", "-u", "postgres", "--",
		"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", port, "-d", "postgres", "-f", "-")
	cmd.Dir = "/" // postgres cannot read root's working directory
	cmd.Stdin = strings.NewReader(setupSQL)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("postgres: create role %s and database %s: %w: %s", User, Database, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func waitPing(ctx context.Context, u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := Ping(ctx, u)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// run runs a command and returns its stdout; errors carry its stderr.
func run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
