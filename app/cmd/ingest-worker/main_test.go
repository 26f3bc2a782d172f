package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// With DB_IAM_AUTH=true the password of a connection is an IAM database auth token: a SigV4-presigned "connect" for
// DB_USER at DB_HOST:DB_PORT, signed offline with the role's credentials (static ones here).
func TestIAMAuthToken(t *testing.T) {
	env := map[string]string{
		"DB_IAM_AUTH": "true", "DB_HOST": "db.abc.eu-west-1.rds.amazonaws.com", "DB_PORT": "5433", "DB_USER": "worker",
		"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": "/etc/rds-ca.pem", "AWS_REGION": "eu-west-1",
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	dbURL, err := cfg.PostgresURL()
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := url.Parse(dbURL); u.User.String() != "worker" {
		t.Errorf("the URL's user is %q: want worker and no password", u.User)
	}
	password, err := iamAuth(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	token, err := password(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse("https://" + token)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "db.abc.eu-west-1.rds.amazonaws.com:5433" || q.Get("Action") != "connect" || q.Get("DBUser") != "worker" ||
		!strings.HasPrefix(q.Get("X-Amz-Credential"), "AKIDEXAMPLE/") ||
		!strings.HasSuffix(q.Get("X-Amz-Credential"), "/eu-west-1/rds-db/aws4_request") || q.Get("X-Amz-Signature") == "" {
		t.Errorf("not an IAM auth token for worker at the database: %s", token)
	}

	env["DB_SSLMODE"] = "require"
	if _, err := config.Load(func(k string) string { return env[k] }); err == nil {
		t.Error("DB_IAM_AUTH=true loads without DB_SSLMODE=verify-full")
	}
}

// Every pool of the database takes its connections' password from the function given to OpenMigrated (where the IAM
// auth token goes), not from the URL.
func TestPasswordGivenPerConnection(t *testing.T) {
	_, migrated := stacktest.DB(t) // aircraftd's part: the worker never migrates
	u, err := url.Parse(migrated)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	d := config.Defaults()
	rp := postgres.ReadPool{MaxConns: d.DBReadMaxConns, Timeout: d.ReadTimeout}
	ctx := context.Background()
	if db, err := postgres.Open(ctx, u.String(), rp); err == nil {
		db.Close()
		t.Fatal("the database takes connections without a password: the test proves nothing")
	}
	var calls atomic.Int32
	db, err := postgres.OpenMigrated(ctx, u.String(), rp, func(context.Context) (string, error) { calls.Add(1); return pw, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Reads().Aircraft(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n < 3 {
		t.Errorf("%d passwords asked for: want one per connection of the work's, the reads' and the ping's pools", n)
	}
}

// Under Lambda the worker's memory limit is three quarters of the function's memory, not aircraftd's default.
func TestMemoryLimitFollowsTheFunction(t *testing.T) {
	def := config.Defaults().MemoryLimit
	for _, c := range []struct {
		size string
		want int64
	}{{"", def}, {"nonsense", def}, {"1769", 1769 << 20 / 4 * 3}, {"128", 96 << 20}} {
		if got := memoryLimit(def, func(k string) string {
			if k == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" {
				return c.size
			}
			return ""
		}); got != c.want {
			t.Errorf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%q: limit %d, want %d", c.size, got, c.want)
		}
	}
}

// Under Lambda the collector runs when the heap reaches five times what is live (GOGC=400), unless GOGC or GOMEMLIMIT
// says otherwise; outside Lambda it keeps Go's default.
func TestGCPercentUnderLambda(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}, true},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "GOGC": "100"}, false},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769", "GOMEMLIMIT": "512MiB"}, false},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "nonsense"}, false},
		{map[string]string{}, false},
	} {
		gogc, got := lambdaGCPercent(func(k string) string { return c.env[k] })
		if got != c.want || got && gogc != 400 {
			t.Errorf("%v: GOGC %d set %v, want 400 set %v", c.env, gogc, got, c.want)
		}
	}
}
