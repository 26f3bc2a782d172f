// Package serviceenv is aircraftd's environment on the instance (/etc/aircraft/aircraftd.env): the settings of the
// service (app/internal/config, listed in .env.example) that differ from their defaults there, and the paths they name.
// The CDK app renders the instance's file from it, and the local e2e suite derives its twin from it, swapping only what
// the instance reads from a secret or its role. It imports nothing but the standard library, so using it compiles no
// CDK code.
package serviceenv

import "fmt"

// Paths on the instance, and the database the stack creates.
const (
	CABundlePath = "/etc/aircraft/rds-ca.pem" // RDS (and DocumentDB) CA bundle
	TLSCertPath  = "/etc/aircraft/tls/cert.pem"
	TLSKeyPath   = "/etc/aircraft/tls/key.pem"
	StateDir     = "/var/lib/aircraft"
	DatabaseName = "aircraft_db"
)

// DownloadReserveBytes is DOWNLOAD_RESERVE_BYTES on the instance: the free space every downloaded file must leave on
// DOWNLOAD_PATH's file system (the disk alarm is derived from it).
const DownloadReserveBytes = 1 << 30

// Settings is what the service's environment is made of. Values may be CDK token strings; CloudFormation substitutes
// them at deploy time.
type Settings struct {
	Region            string
	Bucket            string
	DBSecretArn       string
	MongoSecretArn    string
	DocumentDB        bool // the Mongo secret is DocumentDB's: TLS with the RDS CA bundle
	APITokenSecretArn string
	DBAppSecretArn    string // the service's own PostgreSQL user: it serves as that user after migrating as the master
	MongoAppSecretArn string // the same for DocumentDB; "" with an external MongoDB
	TLSMode           string // "acme" or "selfsigned"
	Domain            string
	AcmeEmail         string
	TrustedProxies    string     // the load balancer's network: its X-Forwarded-For names the client; "" for none
	Backfills         *Backfills // backfills on the ingestion pipeline's state machine; nil: in the service
}

// Backfills is how the service runs backfills on the ingestion pipeline (infra/pipeline).
type Backfills struct {
	StateMachineArn string
	Concurrency     int    // the map's MaxConcurrency: the workers the database takes, less live ingestion's
	Retries         int    // the state machine's retries of a batch
	RetrySeconds    int    // and the wait before the first
	WorkerUser      string // the worker's PostgreSQL role: the service creates it, with rds_iam, after migrating
}

// Environment is the instance's aircraftd.env as a map. Secrets stay in Secrets Manager: it holds their ARNs, never
// their values.
func Environment(s Settings) map[string]string {
	env := map[string]string{
		"HTTP_ADDR":              ":443",
		"AWS_REGION":             s.Region,
		"S3_BUCKET":              s.Bucket,
		"DB_SECRET_ARN":          s.DBSecretArn,
		"DB_NAME":                DatabaseName,
		"DB_SSLMODE":             "verify-full",
		"DB_SSLROOTCERT":         CABundlePath,
		"MONGODB_URL_SECRET_ARN": s.MongoSecretArn,
		"API_TOKEN_SECRET_ARN":   s.APITokenSecretArn,
		"DOWNLOAD_PATH":          StateDir + "/downloads",
		"DOWNLOAD_RESERVE_BYTES": fmt.Sprint(DownloadReserveBytes),
	}
	if s.TrustedProxies != "" {
		env["TRUSTED_PROXIES"] = s.TrustedProxies
	}
	if s.DocumentDB {
		env["MONGODB_TLS_CA_FILE"] = CABundlePath
	}
	if s.DBAppSecretArn != "" {
		env["DB_APP_SECRET_ARN"] = s.DBAppSecretArn
	}
	if s.MongoAppSecretArn != "" {
		env["MONGODB_APP_SECRET_ARN"] = s.MongoAppSecretArn
	}
	if b := s.Backfills; b != nil {
		env["BACKFILL_STATE_MACHINE_ARN"] = b.StateMachineArn
		// One backfill at a time, each at most Concurrency batches at once: the bound the pipeline derived.
		env["BACKFILL_MAX_RUNNING"] = "1"
		env["BACKFILL_CONCURRENCY"] = fmt.Sprint(b.Concurrency)
		env["BACKFILL_RETRIES"] = fmt.Sprint(b.Retries)
		env["BACKFILL_RETRY_SECONDS"] = fmt.Sprint(b.RetrySeconds)
		env["DB_WORKER_USER"] = b.WorkerUser
	}
	if s.TLSMode == "acme" {
		// Port 80 only with ACME (its security group admits it only then): the http-01 challenge and a redirect.
		env["REDIRECT_ADDR"] = ":80"
		env["ACME_DOMAIN"] = s.Domain
		env["ACME_CACHE_DIR"] = StateDir + "/acme"
		if s.AcmeEmail != "" {
			env["ACME_EMAIL"] = s.AcmeEmail
		}
	} else {
		env["TLS_CERT_FILE"] = TLSCertPath
		env["TLS_KEY_FILE"] = TLSKeyPath
	}
	return env
}
