package config

import (
	"context"
	"strings"
	"testing"
)

// The app secrets give the service's own role and user; the URLs are the master's with those credentials.
func TestAppSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{
		"DB_SECRET_ARN": "arn:db", "DB_APP_SECRET_ARN": "arn:dbapp",
		"MONGODB_URL_SECRET_ARN": "arn:mongo", "MONGODB_APP_SECRET_ARN": "arn:mongoapp",
	}))
	if err != nil || !c.HasSecrets() {
		t.Fatalf("load: %v", err)
	}
	secrets := map[string]string{
		"arn:db":       `{"username":"master","password":"m","host":"db.rds","port":5432,"dbname":"stats"}`,
		"arn:dbapp":    `{"username":"aircraft_app","password":"p@ss/w:rd"}`,
		"arn:mongo":    `{"username":"master","password":"m","host":"docdb","port":27017}`,
		"arn:mongoapp": `{"username":"aircraft_app","password":"q@ss/w:rd"}`,
	}
	get := func(_ context.Context, arn string) (string, error) { return secrets[arn], nil }
	if err := c.ResolveSecrets(t.Context(), get); err != nil {
		t.Fatal(err)
	}
	if u, err := c.PostgresAppURL(); err != nil || u != "postgres://aircraft_app:p%40ss%2Fw%3Ard@db.rds:5432/stats?sslmode=prefer" {
		t.Errorf("app database URL: %s, %v", u, err)
	}
	if u, _ := c.PostgresURL(); !strings.HasPrefix(u, "postgres://master:m@") {
		t.Errorf("master database URL: %s", u)
	}
	want := "mongodb://aircraft_app:q%40ss%2Fw%3Ard@docdb:27017/?tls=true&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false&authSource=admin"
	if u, err := c.MongoAppURL(); err != nil || u != want {
		t.Errorf("app mongo URL: %s, %v; want %s", u, err, want)
	}

	secrets["arn:dbapp"] = `{"username":"aircraft_app"}`
	if err := c.ResolveSecrets(t.Context(), get); err == nil || !strings.Contains(err.Error(), "arn:dbapp") {
		t.Errorf("an app secret without a password: %v; want an error naming it", err)
	}
}

// Without an app secret the service serves as the master: no app URLs.
func TestNoAppSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{"DATABASE_URL": "postgres://a:b@h/d", "MONGODB_URL": "mongodb://127.0.0.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := c.PostgresAppURL(); u != "" || err != nil {
		t.Errorf("app database URL without a secret: %q, %v", u, err)
	}
	if u, err := c.MongoAppURL(); u != "" || err != nil {
		t.Errorf("app mongo URL without a secret: %q, %v", u, err)
	}
}

func TestMongoMultiHostAppURL(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://old:pw@a:1,b:2/db?tls=true":         "mongodb://app:x@a:1,b:2/db?tls=true&authSource=admin",
		"mongodb://a:1/db?tls=true&authSource=records": "mongodb://app:x@a:1/db?tls=true&authSource=records",
		"mongodb://a:1":    "mongodb://app:x@a:1/?authSource=admin",
		"mongodb://a:1/db": "mongodb://app:x@a:1/db?authSource=admin",
	} {
		c := &Config{MongoURL: in, MongoApp: Credentials{"app", "x"}}
		if u, err := c.MongoAppURL(); err != nil || u != want {
			t.Errorf("%s: %s, %v; want %s", in, u, err, want)
		}
	}
}

// A MongoDB URI beyond loopback needs TLS unless MONGODB_ALLOW_PLAINTEXT=true says otherwise.
func TestMongoTLSRequired(t *testing.T) {
	for _, tc := range []struct {
		url, caFile string
		allow, ok   bool
	}{
		{url: "mongodb://127.0.0.1:27017", ok: true},
		{url: "mongodb://localhost", ok: true},
		{url: "mongodb://[::1]:27017/db", ok: true},
		{url: "mongodb://u:p@127.0.0.1:27017,127.0.0.2:27018/?replicaSet=rs0", ok: true},
		{url: "mongodb://u:p@db.example.com:27017", ok: false},
		{url: "mongodb://u:p@127.0.0.1:27017,db.example.com:27017", ok: false},
		{url: "mongodb://u:p@10.0.0.5:27017/?tls=false", ok: false},
		{url: "mongodb://u:p@db.example.com:27017/?ssl=false&tls=false", ok: false},
		{url: "mongodb://u:p@db.example.com:27017/?tls=true", ok: true},
		{url: "mongodb://u:p@db.example.com:27017/?TLS=TRUE", ok: true},
		{url: "mongodb://u:p@db.example.com:27017/db?ssl=true", ok: true},
		{url: "mongodb+srv://u:p@cluster.example.net/db", ok: true},
		{url: "mongodb+srv://u:p@cluster.example.net/db?tls=false", ok: false},
		{url: "mongodb://u:p@db.example.com:27017", caFile: "/etc/ca.pem", ok: true},
		{url: "mongodb://u:p@db.example.com:27017", allow: true, ok: true},
		{url: "mongodb://u:p@db.example.com:27017/?tls=false", allow: true, ok: true},
		{url: "http://db.example.com", ok: false},
	} {
		c := &Config{MongoURL: tc.url, MongoTLSCAFile: tc.caFile, MongoAllowPlaintext: tc.allow}
		err := c.CheckMongoTLS()
		if (err == nil) != tc.ok {
			t.Errorf("%s (CA file %q, allow plaintext %v): %v, want ok %v", tc.url, tc.caFile, tc.allow, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("%s: the error shows the credentials: %v", tc.url, err)
		}
	}
}

func TestAppRoleAndIAMAuthRefused(t *testing.T) {
	_, err := Load(env(map[string]string{
		"DB_HOST": "h", "DB_USER": "u", "DB_SSLMODE": "verify-full", "DB_IAM_AUTH": "true", "DB_APP_SECRET_ARN": "arn:x",
	}))
	if err == nil || !strings.Contains(err.Error(), "DB_APP_SECRET_ARN") {
		t.Errorf("DB_IAM_AUTH with DB_APP_SECRET_ARN: %v", err)
	}
}
