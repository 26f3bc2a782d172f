// Package awsstack is the AWS end-to-end target: deploy a stack of its own with `cdk deploy`, run the same API checks
// as the local target over HTTPS against it, check the AWS side with terratest's aws module and the SDK, and destroy it
// with `cdk destroy`, even when something failed.
//
// It runs only when E2E_AWS=1 (`make e2e-aws`, the deploy workflow); otherwise TestAWS skips and only the offline logic
// here (settings, naming, stages, outputs, commands, the AWS-side predicates) is tested. Stages follow terratest's
// test-structure convention: SKIP_deploy, SKIP_validate and SKIP_teardown skip one, and what a stage hands to the next
// is kept in .test-data/ beside this file. docs/e2e.md has the details.
package awsstack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Settings are what the environment says about a run.
type Settings struct {
	Enabled      bool   // E2E_AWS=1
	Region       string // AWS_REGION, else AWS_DEFAULT_REGION
	StackName    string // E2E_STACK_NAME: a given stack (e.g. kept from an earlier run); "" = a new unique name
	AllowedCidr  string // E2E_ALLOWED_CIDR: who may reach 80/443; "" = this runner's public address /32
	InstanceType string // E2E_INSTANCE_TYPE: expected (and deployed) instance type; default t2.micro
	DomainName   string // E2E_DOMAIN_NAME: deploy with an ACME certificate for this name (trusted by system roots)
	HostedZoneID string // E2E_HOSTED_ZONE_ID: with E2E_DOMAIN_NAME, the Route 53 zone of its A record
	// The load-balanced variant: E2E_INSTANCES > 1 deploys -c instances=N, an ALB with an ACM certificate (for
	// E2E_DOMAIN_NAME, DNS-validated in E2E_HOSTED_ZONE_ID, or E2E_CERTIFICATE_ARN) in front of N instances.
	Instances      int    // E2E_INSTANCES: default 1 (the single instance)
	CertificateArn string // E2E_CERTIFICATE_ARN: the load balancer's certificate (its DNS is yours to point)
	Context        []string
}

// LoadBalanced reports whether the run deploys and checks the load-balanced variant.
func (s Settings) LoadBalanced() bool { return s.Instances > 1 }

// DefaultInstanceType is the infra's default (docs/infra.md).
const DefaultInstanceType = "t2.micro"

// ReadSettings reads the settings through getenv (os.Getenv) and validates them.
func ReadSettings(getenv func(string) string) (Settings, error) {
	s := Settings{
		Enabled:        getenv("E2E_AWS") == "1",
		Region:         firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		StackName:      strings.TrimSpace(getenv("E2E_STACK_NAME")),
		AllowedCidr:    strings.TrimSpace(getenv("E2E_ALLOWED_CIDR")),
		InstanceType:   firstNonEmpty(strings.TrimSpace(getenv("E2E_INSTANCE_TYPE")), DefaultInstanceType),
		DomainName:     strings.TrimSpace(getenv("E2E_DOMAIN_NAME")),
		HostedZoneID:   strings.TrimSpace(getenv("E2E_HOSTED_ZONE_ID")),
		Instances:      1,
		CertificateArn: strings.TrimSpace(getenv("E2E_CERTIFICATE_ARN")),
	}
	if !s.Enabled {
		return s, nil
	}
	if v := strings.TrimSpace(getenv("E2E_INSTANCES")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 20 {
			return s, fmt.Errorf("E2E_INSTANCES %q: want 1 to 20", v)
		}
		s.Instances = n
	}
	if s.Region == "" {
		return s, fmt.Errorf("E2E_AWS=1 needs a region: set AWS_REGION")
	}
	if s.StackName != "" && !stackNamePattern.MatchString(s.StackName) {
		return s, fmt.Errorf("E2E_STACK_NAME %q: want a letter, then letters, digits or '-' (at most 100)", s.StackName)
	}
	if s.AllowedCidr != "" {
		if _, _, err := net.ParseCIDR(s.AllowedCidr); err != nil {
			return s, fmt.Errorf("E2E_ALLOWED_CIDR %q: %v", s.AllowedCidr, err)
		}
	}
	if s.HostedZoneID != "" && s.DomainName == "" {
		return s, fmt.Errorf("E2E_HOSTED_ZONE_ID needs E2E_DOMAIN_NAME")
	}
	switch {
	case s.CertificateArn != "" && !s.LoadBalanced():
		return s, fmt.Errorf("E2E_CERTIFICATE_ARN needs E2E_INSTANCES > 1")
	case s.LoadBalanced() && s.DomainName == "":
		// The API is checked with the system roots: the certificate must name the URL.
		return s, fmt.Errorf("E2E_INSTANCES > 1 needs E2E_DOMAIN_NAME (the name of the load balancer's certificate)")
	case s.LoadBalanced() && s.HostedZoneID == "" && s.CertificateArn == "":
		return s, fmt.Errorf("E2E_INSTANCES > 1 needs E2E_HOSTED_ZONE_ID (a DNS-validated certificate) or E2E_CERTIFICATE_ARN")
	}
	return s, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// stackNamePattern is infra's rule for stackName (infra/config/config.go).
var stackNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,99}$`)

// NewStackName is a unique stack name for one run: AircraftE2E-<UTC date and time>-<random>. It sorts by time and says
// what created it, so that a stack left behind is easy to recognise (and clean up).
func NewStackName(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "AircraftE2E-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// CDKContext is the context of the stack's synth: the same for deploy and destroy.
func (s Settings) CDKContext(stackName, allowedCidr string) []string {
	ctx := []string{"stackName=" + stackName, "stage=dev", "instanceType=" + s.InstanceType, "allowedCidr=" + allowedCidr}
	if s.DomainName != "" {
		ctx = append(ctx, "domainName="+s.DomainName)
	}
	if s.HostedZoneID != "" {
		ctx = append(ctx, "hostedZoneId="+s.HostedZoneID)
	}
	if s.LoadBalanced() {
		ctx = append(ctx, "instances="+strconv.Itoa(s.Instances))
	}
	if s.CertificateArn != "" {
		ctx = append(ctx, "certificateArn="+s.CertificateArn)
	}
	return ctx
}

// CidrOf turns the answer of an address echo service (checkip.amazonaws.com: "203.0.113.7\n") into 203.0.113.7/32.
func CidrOf(answer string) (string, error) {
	ip := net.ParseIP(strings.TrimSpace(answer))
	if ip == nil || ip.To4() == nil {
		return "", fmt.Errorf("not an IPv4 address: %q", strings.TrimSpace(answer))
	}
	return ip.String() + "/32", nil
}
