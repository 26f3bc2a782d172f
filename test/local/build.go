// Package local is the local end-to-end target: the service binary, built exactly as the infra builds it for the
// instance, run with an environment file laid out like the instance's, over HTTPS with a certificate from `aircraftd
// gencert` that the checks trust by pinning it, against the real local stack (Postgres, versitygw, FerretDB) of
// scripts/cmd/devstack. Run it with `make e2e`, or `.dev/bin/devstack exec -- go test -count=1 -timeout 30m
// ./test/local/`. The benchmarks (bench/) start the service with the same code.
package local

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/aircraftdata/platform/infra/appbuild"
)

// BuildService builds the service binary into outDir with the infra's one build (package appbuild, the binary the CDK
// app ships) and returns its path (root is the repository, testkit.RepoRoot but for a checkout to compare with); with
// AIRCRAFTD_BINARY set, it returns that file instead.
func BuildService(root, outDir string) (string, error) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return "", fmt.Errorf("the instance's binary is linux/amd64; this machine is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	return appbuild.Binary(filepath.Join(root, "app"), outDir, "amd64")
}
