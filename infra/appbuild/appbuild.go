// Package appbuild is the one reproducible build of the service binary (docs/CONTRACT.md): the CDK app ships what it
// builds, the local e2e suite and the benchmarks test and measure the same build (through Binary), and devstack runs it
// (go run ./infra/cmd/appbuild). The ingestion worker's Lambda binary is built by the same recipe (BuildWorker). It
// imports nothing but the standard library, so using it compiles no CDK code.
package appbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Args is the go command of the build, before the output path. Changing a flag changes every binary and so every
// deploy: keep it identical to the contract (and the root Makefile's GOFLAGS to its compile flags, so that the tests
// compile what ships). nomsgpack leaves out gin's msgpack binding, which the service does not use.
var Args = []string{"build", "-trimpath", "-tags=nomsgpack", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o"}

// Env is the environment of the build: the contract's variables, and nothing inherited that changes the output
// (GOFLAGS, GOAMD64/GOARM64 levels, GOEXPERIMENT, a workspace).
func Env(goarch string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GOWORK", "CGO_ENABLED", "GOOS", "GOARCH", "GOFLAGS", "GOAMD64", "GOARM64", "GOEXPERIMENT", "GO386":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOWORK=off", "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=")
}

// BinaryOverrideEnv names a prebuilt service binary to use instead of building app/ (for a broken app tree, or CI that
// built the binary in an earlier step): the CDK app ships that file and the e2e suite tests it. It is used as is: it
// must be a linux binary for the instance.
const BinaryOverrideEnv = "AIRCRAFTD_BINARY"

// Binary returns the path of the service binary for linux/goarch: the file named by AIRCRAFTD_BINARY when set, else
// Build's.
func Binary(appDir, outDir, goarch string) (string, error) {
	if prebuilt := os.Getenv(BinaryOverrideEnv); prebuilt != "" {
		if fi, err := os.Stat(prebuilt); err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s=%s: not a file", BinaryOverrideEnv, prebuilt)
		}
		return filepath.Abs(prebuilt)
	}
	return Build(appDir, outDir, goarch)
}

// Build runs the contract's build of appDir/cmd/aircraftd for linux/goarch (amd64 or arm64) into outDir and returns the
// absolute path of the binary. The binary is written under a temporary name and renamed, so concurrent builds never
// leave a half-written file.
func Build(appDir, outDir, goarch string) (string, error) {
	return build(appDir, outDir, goarch, "./cmd/aircraftd", "aircraftd")
}

// WorkerArch is the architecture of the ingestion worker's Lambda function (Graviton).
const WorkerArch = "arm64"

// BuildWorker runs the contract's build of appDir/cmd/ingest-worker for linux/arm64 into outDir, named bootstrap as the
// provided.al2023 runtime runs it, and returns the absolute path of the binary.
func BuildWorker(appDir, outDir string) (string, error) {
	return build(appDir, outDir, WorkerArch, "./cmd/ingest-worker", "bootstrap")
}

// build builds the package pkg of appDir for linux/goarch as outDir/name.
func build(appDir, outDir, goarch, pkg, name string) (string, error) {
	if goarch != "amd64" && goarch != "arm64" {
		return "", fmt.Errorf("build %s: unsupported GOARCH %q", pkg, goarch)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(outDir, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	args := append(append([]string{}, Args...), filepath.Join(tmp, name), pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = appDir
	cmd.Env = Env(goarch)
	// The workspace's pinned Go release builds the binary, wherever it is built (the go command fetches it from the
	// module proxy when the local go is another release).
	if tc, err := Toolchain(filepath.Join(appDir, "..", "go.work")); err != nil {
		return "", err
	} else if tc != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+tc)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s (cd %s && GOWORK=off CGO_ENABLED=0 GOOS=linux GOARCH=%s go %s): %v\n%s",
			pkg, appDir, goarch, strings.Join(args, " "), err, out)
	}
	bin := filepath.Join(outDir, name)
	if err := os.Rename(filepath.Join(tmp, name), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Toolchain is the toolchain line of a go.work (or go.mod) file, e.g. go1.26.8; "" when the file has none or does not
// exist.
func Toolchain(path string) (string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "toolchain" {
			return f[1], nil
		}
	}
	return "", nil
}

// RepoRoot is the repository root, the folder of cdk.json and go.work that holds app/: the nearest at or above the
// working directory (the CDK CLI runs the app from the root, tests run in their package's folder, benchmark commands in
// bench/).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "cdk.json")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no cdk.json in any parent folder of the working directory")
		}
		dir = parent
	}
}
