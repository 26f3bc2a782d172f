package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Credentials are a user name and its password (the service's own database role or MongoDB user).
type Credentials struct {
	User     string `json:"username"`
	Password string `json:"password"`
}

// PostgresAppURL is the database's URL (PostgresURL) with the user and password of the service's own role
// (DB_APP_SECRET_ARN), or "" when none is configured.
func (c *Config) PostgresAppURL() (string, error) {
	if c.DBApp.User == "" {
		return "", nil
	}
	master, err := c.PostgresURL()
	if err != nil {
		return "", err
	}
	return withCredentials(master, c.DBApp, "postgres")
}

// MongoAppURL is MONGODB_URL with the user and password of the service's own user (MONGODB_APP_SECRET_ARN),
// authenticated in the admin database where aircraftd defines it (unless the URI names an authSource), or "" when none
// is configured.
func (c *Config) MongoAppURL() (string, error) {
	if c.MongoApp.User == "" || c.MongoURL == "" {
		return "", nil
	}
	// A Mongo URI may list several hosts, which net/url refuses: swap the user information by hand.
	scheme, rest, ok := strings.Cut(c.MongoURL, "://")
	if !ok {
		return "", errors.New("MONGODB_URL is not a mongodb:// URI")
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	user := url.UserPassword(c.MongoApp.User, c.MongoApp.Password).String()
	tail := rest[end:]
	if !strings.Contains(strings.ToLower(tail), "authsource=") {
		switch {
		case strings.Contains(tail, "?"):
			tail += "&authSource=admin"
		case tail == "":
			tail = "/?authSource=admin"
		default:
			tail += "?authSource=admin"
		}
	}
	return scheme + "://" + user + "@" + authority + tail, nil
}

func withCredentials(raw string, cr Credentials, what string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("the %s URL must be a URL to connect as another user", what)
	}
	u.User = url.UserPassword(cr.User, cr.Password)
	return u.String(), nil
}

// CheckMongoTLS refuses a MongoDB URI (MONGODB_URL, or the secret's) that would send credentials and records in
// clear text beyond this host: it needs TLS (tls=true or ssl=true, mongodb+srv:// unless it turns TLS off, or
// MONGODB_TLS_CA_FILE), every host on loopback (the local stack), or MONGODB_ALLOW_PLAINTEXT=true.
func (c *Config) CheckMongoTLS() error {
	if c.MongoURL == "" || c.MongoAllowPlaintext || c.MongoTLSCAFile != "" {
		return nil
	}
	tls, hosts, err := mongoTLSAndHosts(c.MongoURL)
	if err != nil {
		return err
	}
	if tls {
		return nil
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("MONGODB_URL: %s would be reached without TLS: add tls=true to the URI (and MONGODB_TLS_CA_FILE), or set MONGODB_ALLOW_PLAINTEXT=true", h)
		}
	}
	return nil
}

// mongoTLSAndHosts reports whether a Mongo URI asks for TLS, and returns its hosts (without ports).
func mongoTLSAndHosts(uri string) (tls bool, hosts []string, err error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || (scheme != "mongodb" && scheme != "mongodb+srv") {
		return false, nil, errors.New("MONGODB_URL is not a mongodb:// or mongodb+srv:// URI")
	}
	authority, query := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
		if _, q, ok := strings.Cut(rest[i:], "?"); ok {
			query = q
		}
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	for _, h := range strings.Split(authority, ",") {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		hosts = append(hosts, strings.Trim(h, "[]"))
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return false, nil, fmt.Errorf("MONGODB_URL: options: %w", err)
	}
	tls = scheme == "mongodb+srv" // SRV implies TLS unless the options turn it off
	for k, v := range values {
		if k = strings.ToLower(k); (k == "tls" || k == "ssl") && len(v) > 0 {
			tls = strings.EqualFold(v[len(v)-1], "true")
		}
	}
	return tls, hosts, nil
}
