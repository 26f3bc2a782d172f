package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// An external MongoDB without TLS is refused at start, before anything is opened, with what to do about it.
func TestRefusesPlaintextExternalMongo(t *testing.T) {
	env := map[string]string{
		"API_TOKEN": "t", "DATABASE_URL": "postgres://u:p@127.0.0.1:1/none", "S3_BUCKET": "b",
		"MONGODB_URL": "mongodb://u:secret@db.example.com:27017/?replicaSet=rs0",
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{"aircraftd"}, func(k string) string { return env[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "db.example.com would be reached without TLS") ||
		!strings.Contains(err.Error(), "MONGODB_ALLOW_PLAINTEXT=true") || strings.Contains(err.Error(), "secret") {
		t.Errorf("start with a plaintext external MongoDB: %v", err)
	}
}

// fakeSecretsManager answers GetSecretValue (Secrets Manager's JSON protocol) from secrets; the SDK reaches it through
// AWS_ENDPOINT_URL_SECRETS_MANAGER.
func fakeSecretsManager(t *testing.T, secrets map[string]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ SecretId string }
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || json.NewDecoder(r.Body).Decode(&in) != nil {
			http.Error(w, "unexpected call", http.StatusBadRequest)
			return
		}
		v, ok := secrets[in.SecretId]
		if !ok {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"ResourceNotFoundException","message":"no such secret"}`))
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": in.SecretId, "Name": in.SecretId, "SecretString": v})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// With DB_APP_SECRET_ARN, aircraftd migrates as the master, makes the app role, and every connection it keeps to the
// database is the role's.
func TestServesAsTheAppRole(t *testing.T) {
	role := stacktest.Name("app_")
	stacktest.DropRoleAtEnd(t, role)
	env, _, _ := stackEnv(t)
	env["DB_APP_SECRET_ARN"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app"
	env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = fakeSecretsManager(t, map[string]string{
		env["DB_APP_SECRET_ARN"]: `{"username":"` + role + `","password":"s3cret'pw"}`,
	})
	d := startDaemon(t, env)
	if !strings.Contains(d.logs.String(), "serving as the app role") {
		t.Errorf("no 'serving as the app role' in the log")
	}
	if code, body, _ := d.call(t, http.MethodGet, "/api/v1/ready", nil, 10*time.Second); code != http.StatusOK {
		t.Errorf("ready: %d %v", code, body)
	}

	conn, err := pgx.Connect(t.Context(), env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var users []string
	rows, _ := conn.Query(t.Context(), `
		SELECT usename FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	users, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(users) == 0 {
		t.Error("aircraftd holds no connection to its database")
	}
	for _, u := range users {
		if u != role {
			t.Errorf("aircraftd's connections are %q's: %v, want %s only", u, users, role)
			break
		}
	}
	d.stop(t)
}

// With DB_WORKER_USER aircraftd makes the worker's role as the master at start: here, where no rds_iam role exists, it
// says that IAM database auth is not available, and the role has the app role's DML and no DDL.
func TestMakesTheWorkerRole(t *testing.T) {
	role := stacktest.Name("worker_")
	stacktest.DropRoleAtEnd(t, role)
	admin := stacktest.Env(t, "DB_ADMIN_URL")
	env, _, _ := stackEnv(t)
	env["DB_WORKER_USER"] = role
	d := startDaemon(t, env)
	d.stop(t)
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rdsIAM bool
	if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam')`).Scan(&rdsIAM); err != nil {
		t.Fatal(err)
	}
	if said := strings.Contains(d.logs.String(), "IAM database auth is not available here"); said == rdsIAM {
		t.Errorf("the log says IAM database auth is not available: %v; rds_iam exists: %v", said, rdsIAM)
	}
	db, err := pgx.Connect(t.Context(), env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var login, dml, ddl bool
	if err := db.QueryRow(t.Context(), `
		SELECT (SELECT rolcanlogin FROM pg_roles WHERE rolname = $1),
		       has_table_privilege($1, 'aircraft_stats', 'SELECT') AND has_table_privilege($1, 'aircraft_stats', 'INSERT') AND
		       has_table_privilege($1, 'aircraft_stats', 'UPDATE') AND has_table_privilege($1, 'aircraft_stats', 'DELETE'),
		       has_schema_privilege($1, 'public', 'CREATE')`, role).Scan(&login, &dml, &ddl); err != nil {
		t.Fatalf("the worker role: %v", err)
	}
	if !login || !dml || ddl {
		t.Errorf("the worker role: login %v, DML on aircraft_stats %v, CREATE on public %v; want true, true, false", login, dml, ddl)
	}
}
