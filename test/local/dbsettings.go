package local

import (
	"fmt"
	"net/url"
	"strings"
)

// DBSettings splits a postgres:// URL into the DB_* variables the instance gets (there aircraftd fills them from
// the RDS secret named by DB_SECRET_ARN): the service connects through the same settings in both places.
func DBSettings(databaseURL string) (map[string]string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Hostname() == "" || u.User == nil {
		return nil, fmt.Errorf("DATABASE_URL %q: want postgres://user:password@host:port/db", databaseURL)
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	env := map[string]string{
		"DB_HOST": u.Hostname(), "DB_PORT": port, "DB_USER": u.User.Username(), "DB_PASSWORD": pw,
		"DB_NAME": strings.TrimPrefix(u.Path, "/"),
	}
	if mode := u.Query().Get("sslmode"); mode != "" {
		env["DB_SSLMODE"] = mode
	}
	return env, nil
}
