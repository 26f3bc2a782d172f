// Package stack starts and stops the local stack: PostgreSQL, S3 (versitygw) and the MongoDB wire (FerretDB). A part
// that already answers on its port with our settings (e.g. started by another devstack, as `make dev`) is used as it is
// and left running; only what this run started is stopped.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aircraftdata/platform/scripts/internal/ferret"
	"github.com/aircraftdata/platform/scripts/internal/postgres"
	"github.com/aircraftdata/platform/scripts/internal/proc"
	"github.com/aircraftdata/platform/scripts/internal/s3local"
)

// The service's defaults (app/internal/config; env_test.go checks them against .env.example), written out so that tests
// see them in .dev/env.
const (
	mongoDBName     = "s3_files"
	mongoCollection = "file_records"
)

// Config says where the stack lives and how it reports.
type Config struct {
	Root   string              // repository root; state goes to Root/.dev
	Getenv func(string) string // the caller's environment (os.Getenv)
	Log    io.Writer           // progress lines
}

// Stack is a running local stack.
type Stack struct {
	Root string
	Dir  string // Root/.dev

	DB    *postgres.DB
	S3    Part
	Mongo Part
}

// Part is S3 or the MongoDB wire: either started by this run (Proc set) or found running.
type Part struct {
	Addr string
	Proc *proc.Process // nil when reused
}

func (p Part) describe(rel func(string) string) string {
	if p.Proc == nil {
		return "already running, left running"
	}
	return fmt.Sprintf("started (pid %d, stopped on exit), log %s", p.Proc.Pid(), rel(p.Proc.LogPath))
}

// Start brings the stack up. On error, whatever it started is stopped again.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	s := &Stack{Root: cfg.Root, Dir: filepath.Join(cfg.Root, ".dev")}
	for _, d := range []string{s.BinDir(), s.LogDir(), s.DownloadDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}

	// Postgres may need apt-get and a cluster start: do it while the Go binaries build and the other two start.
	var wg sync.WaitGroup
	var dbErr, objErr error
	wg.Go(func() { s.DB, dbErr = postgres.Ensure(ctx, cfg.Getenv, cfg.Log) })
	wg.Go(func() { objErr = s.startS3AndMongo(ctx, cfg.Log) })
	wg.Wait()

	if err := errors.Join(dbErr, objErr); err != nil {
		_ = s.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func (s *Stack) startS3AndMongo(ctx context.Context, log io.Writer) error {
	s.S3.Addr, s.Mongo.Addr = s3local.Addr, ferret.Addr
	c := s3local.Client()
	needS3 := !proc.Listening(s3local.Addr) || s3local.Reachable(ctx, c) != nil
	needMongo := !proc.Listening(ferret.Addr) || ferret.Ping(ctx, ferret.URL) != nil

	var flags, pkgs []string
	if needS3 {
		pkgs = append(pkgs, "github.com/versity/versitygw/cmd/versitygw")
	}
	if needMongo {
		modFile, err := ferret.PatchedModFile(ctx, filepath.Join(s.Root, "scripts"), s.Dir)
		if err != nil {
			return err
		}
		flags = append(flags, "-modfile", modFile)
		pkgs = append(pkgs, "./cmd/ferretdb")
	}
	if len(pkgs) > 0 {
		if err := s.buildTools(ctx, log, flags, pkgs); err != nil {
			return err
		}
	}

	if needS3 {
		data, versions := s3local.Dirs(s.Dir)
		p, err := s3local.Start(ctx, filepath.Join(s.BinDir(), "versitygw"), data, versions, s.LogPath("versitygw"))
		if err != nil {
			return err
		}
		s.S3.Proc = p
	}
	if err := s3local.EnsureVersionedBucket(ctx, c, s3local.Bucket); err != nil {
		return err
	}

	if needMongo {
		p, err := ferret.Start(ctx, filepath.Join(s.BinDir(), "ferretdb"), filepath.Join(s.Dir, "ferretdb"), s.LogPath("ferretdb"))
		if err != nil {
			return err
		}
		s.Mongo.Proc = p
	}
	return nil
}

// buildTools builds the pinned tools of the scripts module into .dev/bin. The Go build cache makes this a sub-second
// no-op once built.
func (s *Stack) buildTools(ctx context.Context, log io.Writer, flags, pkgs []string) error {
	start := time.Now()
	args := append([]string{"build", "-o", s.BinDir() + string(filepath.Separator)}, flags...)
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(s.Root, "scripts")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("s3/mongodb: build %s (cd scripts && GOWORK=off go %s): %w\n%s",
			strings.Join(pkgs, " "), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	if d := time.Since(start); d > 5*time.Second {
		fmt.Fprintf(log, "built %s into %s in %s\n", strings.Join(pkgs, ", "), s.BinDir(), d.Round(time.Second))
	}
	return nil
}

// Stop stops, in reverse order, what this run started. Safe on a partly started stack.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	for _, p := range []*proc.Process{s.Mongo.Proc, s.S3.Proc} {
		if p != nil {
			errs = append(errs, p.Stop(10*time.Second))
		}
	}
	if s.DB != nil {
		errs = append(errs, s.DB.Stop(ctx))
	}
	return errors.Join(errs...)
}

// Env returns the stack's variables as KEY=value lines, in the order of docs/CONTRACT.md. apiToken is the bearer token
// the service should accept.
func (s *Stack) Env(apiToken string) []string {
	return []string{
		"DATABASE_URL=" + s.DB.URL,
		"DB_ADMIN_URL=" + s.DB.AdminURL,
		"S3_ENDPOINT=" + s3local.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s3local.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s3local.SecretKey,
		"AWS_REGION=" + s3local.Region,
		"S3_BUCKET=" + s3local.Bucket,
		"SOURCE_BUCKET=" + s3local.Bucket,
		"MONGODB_URL=" + ferret.URL,
		"MONGODB_DB_NAME=" + mongoDBName,
		"MONGODB_COLLECTION=" + mongoCollection,
		"DOWNLOAD_PATH=" + s.DownloadDir(),
		"API_TOKEN=" + apiToken,
	}
}

// Describe writes one line per part: where it listens and who runs it.
func (s *Stack) Describe(w io.Writer) {
	fmt.Fprintf(w, "  postgres  %-16s %s\n", hostPort(s.DB.URL), s.DB.Origin)
	fmt.Fprintf(w, "  s3        %-16s versitygw, bucket %s (versioned), %s\n", s.S3.Addr, s3local.Bucket, s.S3.describe(s.rel))
	fmt.Fprintf(w, "  mongodb   %-16s ferretdb (SQLite in %s), %s\n", s.Mongo.Addr, s.rel(filepath.Join(s.Dir, "ferretdb")), s.Mongo.describe(s.rel))
}

// Paths under the state folder.
func (s *Stack) BinDir() string             { return filepath.Join(s.Dir, "bin") }
func (s *Stack) LogDir() string             { return filepath.Join(s.Dir, "logs") }
func (s *Stack) LogPath(name string) string { return filepath.Join(s.LogDir(), name+".log") }
func (s *Stack) DownloadDir() string        { return filepath.Join(s.Dir, "downloads") }
func (s *Stack) EnvPath() string            { return filepath.Join(s.Dir, "env") }

func (s *Stack) rel(p string) string {
	if r, err := filepath.Rel(s.Root, p); err == nil {
		return r
	}
	return p
}

func hostPort(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return "(see DATABASE_URL)"
}
