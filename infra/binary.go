package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BinaryOverrideEnv names a prebuilt service binary to ship instead of building app/ (for a broken app tree, or CI
// that built the binary in an earlier step). The file is shipped as is: it must be a linux binary for the instance.
const BinaryOverrideEnv = "AIRCRAFTD_BINARY"

// BuildArgs is the reproducible build of docs/CONTRACT.md, run in app/ with buildEnv. Changing a flag changes every
// binary and so every deploy: keep it identical to the contract.
var BuildArgs = []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o"}

// buildEnv is the environment of the build: the contract's variables, and nothing inherited that changes the output
// (GOFLAGS, GOAMD64/GOARM64 levels, GOEXPERIMENT, a workspace).
func buildEnv(goarch string) []string {
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

// ServiceBinary returns the path of the aircraftd binary to ship for goarch (amd64 or arm64): the file named by
// AIRCRAFTD_BINARY when set, else a fresh build of appDir/cmd/aircraftd into outDir/linux-<goarch>/aircraftd.
func ServiceBinary(appDir, outDir, goarch string) (string, error) {
	if prebuilt := os.Getenv(BinaryOverrideEnv); prebuilt != "" {
		if fi, err := os.Stat(prebuilt); err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s=%s: not a file", BinaryOverrideEnv, prebuilt)
		}
		return filepath.Abs(prebuilt)
	}
	return BuildServiceBinary(appDir, filepath.Join(outDir, "linux-"+goarch), goarch)
}

// BuildServiceBinary runs the contract's build of appDir/cmd/aircraftd and returns the absolute path of the binary.
// The binary is written under a temporary name and renamed, so concurrent synths never ship a half-written file.
func BuildServiceBinary(appDir, outDir, goarch string) (string, error) {
	if goarch != "amd64" && goarch != "arm64" {
		return "", fmt.Errorf("build aircraftd: unsupported GOARCH %q", goarch)
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

	args := append(append([]string{}, BuildArgs...), filepath.Join(tmp, "aircraftd"), "./cmd/aircraftd")
	cmd := exec.Command("go", args...)
	cmd.Dir = appDir
	cmd.Env = buildEnv(goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build aircraftd (cd %s && GOWORK=off CGO_ENABLED=0 GOOS=linux GOARCH=%s go %s): %v\n%s",
			appDir, goarch, strings.Join(args, " "), err, out)
	}
	bin := filepath.Join(outDir, "aircraftd")
	if err := os.Rename(filepath.Join(tmp, "aircraftd"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// fileSHA256 is the hex SHA-256 of a file (the release id of a deploy includes the binary's).
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
