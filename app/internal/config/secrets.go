package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretGetter returns the value of the secret named by an ARN (AWS Secrets Manager in production: SecretsManager).
type SecretGetter func(ctx context.Context, arn string) (string, error)

// SecretsManager returns a SecretGetter that reads AWS Secrets Manager in region, with the credentials of the
// environment (the instance role).
func SecretsManager(ctx context.Context, region string) (SecretGetter, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	return func(ctx context.Context, arn string) (string, error) {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.SecretString), nil
	}, nil
}

// HasSecrets reports whether any *_SECRET_ARN is set.
func (c *Config) HasSecrets() bool {
	return c.DBSecretARN != "" || c.MongoURLSecretARN != "" || c.APITokenSecretARN != "" ||
		c.DBAppSecretARN != "" || c.MongoAppSecretARN != ""
}

// ResolveSecrets reads the secrets named by the *_SECRET_ARN settings through get and fills the settings they stand
// for: DB_SECRET_ARN the DB_* parts, MONGODB_URL_SECRET_ARN MONGODB_URL, API_TOKEN_SECRET_ARN API_TOKEN,
// DB_APP_SECRET_ARN DBApp and MONGODB_APP_SECRET_ARN MongoApp.
func (c *Config) ResolveSecrets(ctx context.Context, get SecretGetter) error {
	for _, app := range []struct {
		arn  string
		into *Credentials
	}{{c.DBAppSecretARN, &c.DBApp}, {c.MongoAppSecretARN, &c.MongoApp}} {
		if app.arn == "" {
			continue
		}
		v, err := get(ctx, app.arn)
		if err != nil {
			return fmt.Errorf("secret %s: %w", app.arn, err)
		}
		*app.into = Credentials{}
		if err := json.Unmarshal([]byte(v), app.into); err != nil || app.into.User == "" || app.into.Password == "" {
			return fmt.Errorf("secret %s: not a JSON secret with username and password", app.arn)
		}
	}
	if c.DBSecretARN != "" {
		v, err := get(ctx, c.DBSecretARN)
		if err != nil {
			return fmt.Errorf("secret %s: %w", c.DBSecretARN, err)
		}
		var s dbSecret
		if err := json.Unmarshal([]byte(v), &s); err != nil {
			return fmt.Errorf("secret %s: not a database secret: %w", c.DBSecretARN, err)
		}
		c.applyDBSecret(s)
	}
	if c.MongoURLSecretARN != "" {
		v, err := get(ctx, c.MongoURLSecretARN)
		if err != nil {
			return fmt.Errorf("secret %s: %w", c.MongoURLSecretARN, err)
		}
		if c.MongoURL, err = mongoURLFromSecret(v); err != nil {
			return fmt.Errorf("secret %s: %w", c.MongoURLSecretARN, err)
		}
	}
	if c.APITokenSecretARN != "" {
		v, err := get(ctx, c.APITokenSecretARN)
		if err != nil {
			return fmt.Errorf("secret %s: %w", c.APITokenSecretARN, err)
		}
		c.APIToken = strings.TrimSpace(v)
	}
	return nil
}

// dbSecret is the JSON secret RDS generates for a database.
type dbSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Host     string `json:"host"`
	Port     any    `json:"port"` // RDS writes a number, other tools a string
	DBName   string `json:"dbname"`
}

// applyDBSecret fills the database settings from a secret.
func (c *Config) applyDBSecret(s dbSecret) {
	c.db.user, c.db.password = s.Username, s.Password
	if s.Host != "" {
		c.db.host = s.Host
	}
	if s.Port != nil {
		c.db.port = fmt.Sprint(s.Port)
	}
	if s.DBName != "" {
		c.db.name = s.DBName
	}
}

// mongoSecret is the JSON secret DocumentDB generates.
type mongoSecret struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Host     string `json:"host"`
	Port     any    `json:"port"`
}

// mongoURLFromSecret turns a secret value into a connection URI: the value is either a URI itself or a DocumentDB JSON
// secret. DocumentDB needs TLS and does not support retryable writes.
func mongoURLFromSecret(value string) (string, error) {
	value = strings.TrimSpace(value)
	if strings.HasPrefix(value, "mongodb://") || strings.HasPrefix(value, "mongodb+srv://") {
		return value, nil
	}
	var s mongoSecret
	if err := json.Unmarshal([]byte(value), &s); err != nil || s.Host == "" {
		return "", errors.New("mongo secret is neither a mongodb:// URI nor a JSON secret with host, username and password")
	}
	port := "27017"
	if s.Port != nil {
		port = fmt.Sprint(s.Port)
	}
	u := url.URL{
		Scheme:   "mongodb",
		User:     url.UserPassword(s.Username, s.Password),
		Host:     net.JoinHostPort(s.Host, port),
		Path:     "/",
		RawQuery: "tls=true&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false",
	}
	return u.String(), nil
}
