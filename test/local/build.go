// Package local is the local end-to-end target: the service binary, built exactly as the infra builds it for the
// instance, run with an environment file laid out like the instance's, over HTTPS with a certificate from
// `aircraftd gencert` that the checks trust by pinning it, against the real local stack (Postgres, versitygw,
// FerretDB) of scripts/cmd/devstack. Run it with `make e2e`, or
// `.dev/bin/devstack exec -- go test -count=1 -timeout 30m ./test/local/`.
package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// RepoRoot is the repository root (test/local/../..).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// appbuildCmd is the infra module's build of the service binary: the one function that both the CDK app (for the
// instance) and this suite call, so that the binary tested here is the binary deployed there.
const appbuildCmd = "./infra/cmd/appbuild"

// BuildCommand returns the command that builds the service binary into outDir/aircraftd, run in root: the infra's
// `go run ./infra/cmd/appbuild -out DIR` when the repository has it, else the reproducible build of
// docs/CONTRACT.md (`cd app && GOWORK=off CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false
// -ldflags "-s -w -buildid=" -o DIR/aircraftd ./cmd/aircraftd`) with the same clean environment the infra uses.
func BuildCommand(ctx context.Context, root, outDir string) *exec.Cmd {
	if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(appbuildCmd))); err == nil && fi.IsDir() {
		cmd := exec.CommandContext(ctx, "go", "run", appbuildCmd, "-out", outDir)
		cmd.Dir = root
		return cmd
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=",
		"-o", filepath.Join(outDir, "aircraftd"), "./cmd/aircraftd")
	cmd.Dir = filepath.Join(root, "app")
	cmd.Env = contractBuildEnv(os.Environ())
	return cmd
}

// contractBuildEnv is env without what changes the build's output (a workspace, GOFLAGS, GOAMD64 levels, …) and
// with the contract's settings.
func contractBuildEnv(env []string) []string {
	out := make([]string, 0, len(env)+5)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GOWORK", "CGO_ENABLED", "GOOS", "GOARCH", "GOFLAGS", "GOAMD64", "GOARM64", "GOEXPERIMENT", "GO386":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GOWORK=off", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
}

// BinaryOverrideEnv is infra's variable for a prebuilt service binary (CI that built it in an earlier step): when it
// is set, the CDK app ships that file and this suite tests the same file.
const BinaryOverrideEnv = "AIRCRAFTD_BINARY"

// BuildService builds the service binary into outDir and returns its path; with AIRCRAFTD_BINARY set, it returns
// that file instead.
func BuildService(ctx context.Context, root, outDir string) (string, error) {
	if prebuilt := os.Getenv(BinaryOverrideEnv); prebuilt != "" {
		if fi, err := os.Stat(prebuilt); err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s=%s: not a file", BinaryOverrideEnv, prebuilt)
		}
		return filepath.Abs(prebuilt)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return "", fmt.Errorf("the instance's binary is linux/amd64; this machine is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	cmd := BuildCommand(ctx, root, outDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build aircraftd (%s in %s): %w\n%s", strings.Join(cmd.Args, " "), cmd.Dir, err, out)
	}
	bin := filepath.Join(outDir, "aircraftd")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("build aircraftd: %w", err)
	}
	return bin, nil
}
