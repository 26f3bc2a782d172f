package fleet

// The instance side of the load-balanced fleet, as plain text like host/bootstrap.go: its user data and the files under
// fleetboot/. They live apart from bootstrap/ because every file there is part of the single instance's release id.

import (
	"embed"
	"fmt"
	"maps"
	"strings"

	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/serviceenv"
)

//go:embed fleetboot
var fleetbootFS embed.FS

// Paths on a fleet instance (the rest are every instance's, host/bootstrap.go).
const (
	sharedDownloadsPath = "/mnt/aircraft/downloads" // EFS access point, mounted; DOWNLOAD_PATH
	ReadyScriptPath     = host.Sbin + "/aircraft-ready"
	FleetGateEnvPath    = "/etc/aircraft/fleet-gate.env" // AWS_REGION, TARGET_GROUP_ARN of aircraft-ready
	DownloadsDropInPath = "/etc/systemd/system/aircraftd.service.d/shared-downloads.conf"
	// fleetUID is the uid of the aircraftd user on every fleet instance, and the owner the EFS access point enforces:
	// files on the shared file system belong to aircraftd wherever they were written.
	fleetUID = 2000
	// fleetShutdownGraceSeconds is SHUTDOWN_GRACE_SECONDS on the fleet: how long aircraftd drains requests when stopped
	// (its default, set explicitly; the unit's TimeoutStopSec=30 covers it). The load balancer's deregistration delay
	// is at least this long.
	fleetShutdownGraceSeconds = 20
)

func FleetbootFile(name string) string {
	b, err := fleetbootFS.ReadFile("fleetboot/" + name)
	if err != nil {
		panic(err) // embedded at build time: a missing name is a programming error
	}
	return string(b)
}

// RenderFleetUserData is the user data of the fleet's launch template for one release.
func RenderFleetUserData(region, stack, resource, release string) string {
	return strings.NewReplacer("@REGION@", region, "@STACK@", stack, "@RESOURCE@", resource, "@RELEASE@", release).
		Replace(FleetbootFile("user-data.sh"))
}

// FleetEnvironment is aircraftd.env on a fleet instance: the single instance's environment (serviceenv.Environment)
// with HTTPS on 443 for the load balancer only - a certificate made in memory at start, no redirect listener (the load
// balancer redirects), no ACME - and the downloads on the shared file system.
func FleetEnvironment(s serviceenv.Settings) map[string]string {
	s.TLSMode, s.Domain, s.AcmeEmail = "selfsigned", "", ""
	env := maps.Clone(serviceenv.Environment(s))
	for _, k := range []string{"REDIRECT_ADDR", "TLS_CERT_FILE", "TLS_KEY_FILE"} {
		delete(env, k)
	}
	env["DOWNLOAD_PATH"] = sharedDownloadsPath
	env["SHUTDOWN_GRACE_SECONDS"] = fmt.Sprint(fleetShutdownGraceSeconds)
	return env
}

// DownloadsDropIn is the systemd drop-in that lets aircraftd write the shared download folder.
func DownloadsDropIn() string {
	return strings.ReplaceAll(FleetbootFile("aircraftd-shared-downloads.conf"), "@DOWNLOADS@", sharedDownloadsPath)
}

// EFSMountLine is the /etc/fstab line of the shared download folder: amazon-efs-utils, TLS in transit, IAM
// authorization with the instance role, through the access point.
func EFSMountLine(fileSystemID, accessPointID string) string {
	return fmt.Sprintf("%s:/ %s efs _netdev,noresvport,tls,iam,accesspoint=%s 0 0", fileSystemID, sharedDownloadsPath, accessPointID)
}
