package host

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"

	"github.com/aircraftdata/platform/infra/appbuild"
)

// ServiceBinary returns the path of the aircraftd binary to ship for goarch (amd64 or arm64): the file named by
// AIRCRAFTD_BINARY when set, else a fresh build of appDir/cmd/aircraftd into outDir/linux-<goarch>/aircraftd.
func ServiceBinary(appDir, outDir, goarch string) (string, error) {
	return appbuild.Binary(appDir, filepath.Join(outDir, "linux-"+goarch), goarch)
}

// FileSHA256 is the hex SHA-256 of a file (the release id of a deploy includes the binary's).
func FileSHA256(path string) (string, error) {
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
