package postgres

import (
	"reflect"
	"testing"
)

func TestURLFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
		ok   bool
	}{
		{"nothing", nil, "", false},
		{"DATABASE_URL wins", map[string]string{"DATABASE_URL": "postgres://a@h/db", "DB_HOST": "other"}, "postgres://a@h/db", true},
		{"DB_HOST with defaults", map[string]string{"DB_HOST": "db.example"},
			"postgres://db.example:5432/aircraft_db?sslmode=prefer", true},
		{"all DB_ variables", map[string]string{
			"DB_HOST": "10.0.0.5", "DB_PORT": "6543", "DB_USER": "u", "DB_PASSWORD": "p@ss/word",
			"DB_NAME": "other_db", "DB_SSLMODE": "verify-full",
		}, "postgres://u:p%40ss%2Fword@10.0.0.5:6543/other_db?sslmode=verify-full", true},
		{"IPv6 host", map[string]string{"DB_HOST": "::1", "DB_USER": "u"},
			"postgres://u@[::1]:5432/aircraft_db?sslmode=prefer", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := URLFromEnv(func(k string) string { return tt.env[k] })
			if got != tt.want || ok != tt.ok {
				t.Errorf("URLFromEnv = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@127.0.0.1:5432/aircraft_db?sslmode=disable": "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable",
		"postgres://h":           "postgres://h/postgres",
		"host=h dbname=x user=u": "host=h dbname=x user=u", // not a URL: unchanged
	} {
		if got := WithDatabase(in, "postgres"); got != want {
			t.Errorf("WithDatabase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseClustersAndPick(t *testing.T) {
	out := "13  main    5433 online postgres /var/lib/postgresql/13/main /var/log/postgresql/postgresql-13-main.log\n" +
		"15  main    5432 down   postgres /var/lib/postgresql/15/main /var/log/postgresql/postgresql-15-main.log\n" +
		"15  other   5434 online postgres /var/lib/postgresql/15/other /var/log/postgresql/postgresql-15-other.log\n\n"
	cs := ParseClusters(out)
	want := []Cluster{
		{"13", "main", "5433", "online"},
		{"15", "main", "5432", "down"},
		{"15", "other", "5434", "online"},
	}
	if !reflect.DeepEqual(cs, want) {
		t.Fatalf("ParseClusters = %+v, want %+v", cs, want)
	}
	if c, ok := pick(cs); !ok || c != want[1] {
		t.Errorf("pick = %+v, want the cluster on 5432", c)
	}
	// Without one on 5432: a "main" one, newest version first (9 < 10 < 16).
	cs = []Cluster{{"9", "main", "5440", "down"}, {"16", "main", "5441", "down"}, {"10", "main", "5442", "down"}, {"17", "x", "5443", "down"}}
	if c, _ := pick(cs); c.Version != "16" {
		t.Errorf("pick = %+v, want 16/main", c)
	}
	if _, ok := pick(nil); ok {
		t.Error("pick(nil) found a cluster")
	}
}
