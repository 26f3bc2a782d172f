package ops

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAWS is a stub `aws` on PATH: it logs each call's arguments (one line) and answers "<service>_<operation>.out" of
// its folder on stdout, or "<service>_<operation>.fail" on stderr with exit 255, as the CLI does.
type fakeAWS struct {
	dir string
}

// newFake puts a stub aws (and session-manager-plugin, with plugin) alone on PATH.
func newFake(t *testing.T, plugin bool) *fakeAWS {
	dir := t.TempDir()
	f := &fakeAWS{dir: dir}
	script := "#!/bin/sh\nPATH=/usr/bin:/bin\nd='" + dir + "'\n" +
		`printf '%s\n' "$*" >> "$d/calls"` + "\n" +
		`if [ -f "$d/$1_$2.fail" ]; then cat "$d/$1_$2.fail" >&2; exit 255; fi` + "\n" +
		`if [ -f "$d/$1_$2.out" ]; then cat "$d/$1_$2.out"; fi` + "\n"
	f.write(t, "aws", script, 0o755)
	if plugin {
		f.write(t, "session-manager-plugin", "#!/bin/sh\nexit 0\n", 0o755)
	}
	t.Setenv("PATH", dir)
	f.answer(t, "sts_get-caller-identity", `{"Account": "123456789012"}`)
	return f
}

func (f *fakeAWS) write(t *testing.T, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeAWS) answer(t *testing.T, call, stdout string) { f.write(t, call+".out", stdout, 0o644) }
func (f *fakeAWS) fail(t *testing.T, call, stderr string)   { f.write(t, call+".fail", stderr, 0o644) }

// calls are the argument lines of the stub's calls, in order.
func (f *fakeAWS) calls(t *testing.T) []string {
	data, err := os.ReadFile(filepath.Join(f.dir, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	o := &Ops{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, HTTP: httpClient}
	err := o.Run(context.Background(), args)
	return out.String(), err
}

const describeSingle = `{"Stacks": [{"StackName": "AircraftAlice", "StackStatus": "UPDATE_COMPLETE", "Outputs": [
 {"OutputKey": "LogGroupName", "OutputValue": "AircraftAlice-Logs"},
 {"OutputKey": "InstanceId", "OutputValue": "i-0single"},
 {"OutputKey": "ApiUrl", "OutputValue": "@API@"},
 {"OutputKey": "CertificateParameterName", "OutputValue": "/aircraft/AircraftAlice/cert"},
 {"OutputKey": "ReleaseId", "OutputValue": "rel111"},
 {"OutputKey": "AlarmTopicArn", "OutputValue": "arn:aws:sns:eu-west-1:123456789012:AircraftAlice-Alarms"}]}]}`

const describeFleet = `{"Stacks": [{"StackName": "AircraftFleet", "StackStatus": "UPDATE_COMPLETE", "Outputs": [
 {"OutputKey": "LogGroupName", "OutputValue": "AircraftFleet-Logs"},
 {"OutputKey": "AutoScalingGroupName", "OutputValue": "AircraftFleet-Group"},
 {"OutputKey": "ApiUrl", "OutputValue": "@API@"},
 {"OutputKey": "ReleaseId", "OutputValue": "rel222"},
 {"OutputKey": "AlarmTopicArn", "OutputValue": "arn:aws:sns:eu-west-1:123456789012:AircraftFleet-Alarms"}]}]}`

// fleetGroup: i-0a is in service but unhealthy and runs an older launch template version; i-0c and i-0b are healthy.
const fleetGroup = `{"AutoScalingGroups": [{"Instances": [
 {"InstanceId": "i-0c", "LifecycleState": "InService", "HealthStatus": "Healthy", "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "5"}},
 {"InstanceId": "i-0b", "LifecycleState": "InService", "HealthStatus": "Healthy", "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "5"}},
 {"InstanceId": "i-0a", "LifecycleState": "InService", "HealthStatus": "Unhealthy", "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "4"}}]}]}`

func TestUsage(t *testing.T) {
	newFake(t, true)
	for _, args := range [][]string{nil, {"logs"}, {"logs", ""}, {"status", "-x"}, {"tail", "AircraftAlice"}} {
		_, err := run(t, args...)
		var usage *UsageError
		if !errors.As(err, &usage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestMissingAWSCLIIsNamedWithHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, cmd := range []string{"logs", "shell", "status"} {
		_, err := run(t, cmd, "AircraftAlice")
		if err == nil || !strings.Contains(err.Error(), "AWS CLI (aws) is not on PATH") ||
			!strings.Contains(err.Error(), "getting-started-install") {
			t.Errorf("%s: %v, want the missing AWS CLI named with its install page", cmd, err)
		}
	}
}

func TestShellWithoutSessionManagerPluginIsNamed(t *testing.T) {
	f := newFake(t, false)
	_, err := run(t, "shell", "AircraftAlice")
	if err == nil || !strings.Contains(err.Error(), "Session Manager plugin (session-manager-plugin) is not on PATH") ||
		!strings.Contains(err.Error(), "session-manager-working-with-install-plugin") {
		t.Fatalf("%v, want the missing plugin named with its install page", err)
	}
	if calls := f.calls(t); len(calls) != 0 {
		t.Errorf("AWS called before the tools were checked: %q", calls)
	}
}

func TestNoCredentialsIsClearAndStopsThere(t *testing.T) {
	f := newFake(t, true)
	f.fail(t, "sts_get-caller-identity", "Unable to locate credentials. You can configure credentials by running \"aws configure\".")
	for _, cmd := range []string{"logs", "shell", "status"} {
		_, err := run(t, cmd, "AircraftAlice")
		if err == nil || !strings.Contains(err.Error(), "no usable AWS credentials") ||
			!strings.Contains(err.Error(), "Unable to locate credentials") {
			t.Errorf("%s: %v, want no credentials, with the CLI's reason", cmd, err)
		}
	}
	for _, c := range f.calls(t) {
		if c != "sts get-caller-identity --output json" {
			t.Errorf("called %q without credentials", c)
		}
	}
}

func TestUnknownStackNamesIt(t *testing.T) {
	f := newFake(t, true)
	f.fail(t, "cloudformation_describe-stacks", "An error occurred (ValidationError): Stack with id Nope does not exist")
	_, err := run(t, "logs", "Nope")
	if err == nil || !strings.Contains(err.Error(), "stack Nope") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("%v, want the stack named with CloudFormation's reason", err)
	}
}

func TestLogsFollowsTheLogGroup(t *testing.T) {
	f := newFake(t, true)
	f.answer(t, "cloudformation_describe-stacks", describeSingle)
	if _, err := run(t, "logs", "AircraftAlice", "--since", "1h"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sts get-caller-identity --output json",
		"cloudformation describe-stacks --stack-name AircraftAlice --output json",
		"logs tail AircraftAlice-Logs --follow --since 1h",
	}
	if got := f.calls(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLogsPassesTheCLIsExitStatus(t *testing.T) {
	f := newFake(t, true)
	f.answer(t, "cloudformation_describe-stacks", describeSingle)
	f.fail(t, "logs_tail", "AccessDeniedException")
	_, err := run(t, "logs", "AircraftAlice")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 255 {
		t.Fatalf("%v, want exit status 255", err)
	}
}

func TestShellOpensASessionOnTheInstance(t *testing.T) {
	f := newFake(t, true)
	f.answer(t, "cloudformation_describe-stacks", describeSingle)
	if _, err := run(t, "shell", "AircraftAlice"); err != nil {
		t.Fatal(err)
	}
	if got := f.calls(t); got[len(got)-1] != "ssm start-session --target i-0single" {
		t.Errorf("calls %q, want a session on i-0single last", got)
	}
}

func TestShellOpensASessionOnAHealthyFleetInstance(t *testing.T) {
	f := newFake(t, true)
	f.answer(t, "cloudformation_describe-stacks", describeFleet)
	f.answer(t, "autoscaling_describe-auto-scaling-groups", fleetGroup)
	if _, err := run(t, "shell", "AircraftFleet"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sts get-caller-identity --output json",
		"cloudformation describe-stacks --stack-name AircraftFleet --output json",
		"autoscaling describe-auto-scaling-groups --auto-scaling-group-names AircraftFleet-Group --output json",
		"ssm start-session --target i-0b",
	}
	if got := f.calls(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// readyServer is the service's /api/v1/ready over HTTPS with a self-signed certificate; it returns the server and that
// certificate in PEM, as the instance publishes it in SSM.
func readyServer(t *testing.T, status int) (*httptest.Server, string) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/ready" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		state := "ready"
		if status != http.StatusOK {
			state = "unavailable"
		}
		_, _ = w.Write([]byte(`{"status":"` + state + `","checks":{"postgres":"ok","s3":"ok","mongo":"` +
			map[bool]string{true: "ok", false: "unavailable"}[status == http.StatusOK] + `"},"checked_at":"2026-12-07T03:00:00Z"}`))
	}))
	t.Cleanup(srv.Close)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, string(cert)
}

// selfSigned is a self-signed certificate for 127.0.0.1 in PEM (httptest's servers all share one).
func selfSigned(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

const alarmsAnswer = `{"MetricAlarms": [
 {"AlarmName": "AircraftAlice-AlarmsDatabaseCpu-1", "StateValue": "OK", "StateUpdatedTimestamp": "2026-12-06T10:00:00Z",
  "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:AircraftAlice-Alarms"]},
 {"AlarmName": "AircraftAlice-AlarmsServiceServerErrors-2", "StateValue": "@STATE@", "StateReason": "Threshold Crossed: 7 >= 5",
  "StateUpdatedTimestamp": "2026-12-07T02:55:00Z", "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:AircraftAlice-Alarms"]},
 {"AlarmName": "AircraftAlice-Other-3", "StateValue": "ALARM", "StateUpdatedTimestamp": "2026-12-07T01:00:00Z",
  "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:SomeoneElse"]}], "CompositeAlarms": []}`

const sessionNoise = "\r\nStarting session with SessionId: alice-0123\r\nRELEASE=@REL@\r\n\r\nExiting session with sessionId: alice-0123.\r\n"

func TestStatusSingleHealthy(t *testing.T) {
	srv, cert := readyServer(t, http.StatusOK)
	f := newFake(t, true)
	f.answer(t, "cloudformation_describe-stacks", strings.Replace(describeSingle, "@API@", srv.URL, 1))
	f.answer(t, "ssm_get-parameter", cert)
	f.answer(t, "cloudwatch_describe-alarms", strings.Replace(alarmsAnswer, "@STATE@", "OK", 1))
	f.answer(t, "ssm_start-session", strings.Replace(sessionNoise, "@REL@", "rel111", 1))
	out, err := run(t, "status", "AircraftAlice")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []string{
		"sts get-caller-identity --output json",
		"cloudformation describe-stacks --stack-name AircraftAlice --output json",
		"ssm get-parameter --name /aircraft/AircraftAlice/cert --query Parameter.Value --output text",
		"cloudwatch describe-alarms --alarm-name-prefix AircraftAlice- --output json",
		`ssm start-session --target i-0single --document-name AWS-StartNonInteractiveCommand --parameters {"command":["grep -h ^RELEASE= /etc/aircraft/deploy.env"]}`,
	}
	if got := f.calls(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range []string{
		"stack AircraftAlice: UPDATE_COMPLETE",
		"  InstanceId                 i-0single",
		"GET " + srv.URL + "/api/v1/ready: 200 OK: ready",
		"    mongo      ok",
		"  OK                AircraftAlice-AlarmsServiceServerErrors-2 (since 2026-12-07T02:55:00Z)",
		"  i-0single                  rel111 (live)",
		"healthy:",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("status lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "AircraftAlice-Other-3") {
		t.Errorf("status shows an alarm of another topic:\n%s", out)
	}
}

func TestStatusSingleUnhealthySaysWhy(t *testing.T) {
	srv, cert := readyServer(t, http.StatusServiceUnavailable)
	f := newFake(t, true)
	f.answer(t, "cloudformation_describe-stacks", strings.Replace(describeSingle, "@API@", srv.URL, 1))
	f.answer(t, "ssm_get-parameter", cert)
	f.answer(t, "cloudwatch_describe-alarms", strings.Replace(alarmsAnswer, "@STATE@", "ALARM", 1))
	f.answer(t, "ssm_start-session", strings.Replace(sessionNoise, "@REL@", "rel000", 1))
	out, err := run(t, "status", "AircraftAlice")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Fatalf("%v, want exit status 1\n%s", err, out)
	}
	firing := strings.Index(out, "ALARM             AircraftAlice-AlarmsServiceServerErrors-2")
	ok := strings.Index(out, "OK                AircraftAlice-AlarmsDatabaseCpu-1")
	if firing < 0 || ok < 0 || firing > ok {
		t.Errorf("the alarm in ALARM is not listed before the OK one:\n%s", out)
	}
	for _, line := range []string{
		"503 Service Unavailable: unavailable",
		"    mongo      unavailable",
		"Threshold Crossed: 7 >= 5",
		"  i-0single                  rel000 (NOT the deployed release)",
		"NOT HEALTHY: not ready (503 Service Unavailable); 1 alarm(s) in ALARM; 1 instance(s) not on release rel111",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("status lacks %q:\n%s", line, out)
		}
	}
}

func TestStatusRejectsACertificateThatIsNotTheInstances(t *testing.T) {
	srv, _ := readyServer(t, http.StatusOK)
	other := selfSigned(t) // another certificate for the same address: the pin must not trust srv's
	f := newFake(t, true)
	f.answer(t, "cloudformation_describe-stacks", strings.Replace(describeSingle, "@API@", srv.URL, 1))
	f.answer(t, "ssm_get-parameter", other)
	f.answer(t, "cloudwatch_describe-alarms", strings.Replace(alarmsAnswer, "@STATE@", "OK", 1))
	f.answer(t, "ssm_start-session", strings.Replace(sessionNoise, "@REL@", "rel111", 1))
	out, err := run(t, "status", "AircraftAlice")
	if err == nil || !strings.Contains(out, "certificate signed by unknown authority") || !strings.Contains(out, "NOT HEALTHY: not reachable") {
		t.Fatalf("%v, want the service not reachable through a certificate that is not pinned:\n%s", err, out)
	}
}

func TestStatusWithoutPluginStillReportsTheRest(t *testing.T) {
	srv, cert := readyServer(t, http.StatusOK)
	f := newFake(t, false)
	f.answer(t, "cloudformation_describe-stacks", strings.Replace(describeSingle, "@API@", srv.URL, 1))
	f.answer(t, "ssm_get-parameter", cert)
	f.answer(t, "cloudwatch_describe-alarms", strings.Replace(alarmsAnswer, "@STATE@", "OK", 1))
	out, err := run(t, "status", "AircraftAlice")
	if err == nil || !strings.Contains(out, "200 OK: ready") || !strings.Contains(out, "session-manager-plugin) is not on PATH") ||
		!strings.Contains(out, "NOT HEALTHY: release on the instance unknown") {
		t.Fatalf("%v, want ready reported and the release unknown for want of the plugin:\n%s", err, out)
	}
}

func TestStatusFleetReadsTheReleaseOfEachInstance(t *testing.T) {
	srv, _ := readyServer(t, http.StatusOK)
	f := newFake(t, true)
	// The fleet is behind the load balancer's certificate (system roots): the test server's is not among them, so the
	// client is given the test's pool to stand for the roots.
	f.answer(t, "cloudformation_describe-stacks", strings.Replace(describeFleet, "@API@", srv.URL, 1))
	f.answer(t, "cloudwatch_describe-alarms", `{"MetricAlarms": [{"AlarmName": "AircraftFleet-AlarmsFleetNoHealthyInstance-1",
	 "StateValue": "OK", "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:AircraftFleet-Alarms"]}]}`)
	f.answer(t, "autoscaling_describe-auto-scaling-groups", fleetGroup)
	// The user data as infra/fleet/fleetboot/user-data.sh renders it (its "# Release <id>:" line).
	ud := func(rel string) string {
		return base64.StdEncoding.EncodeToString([]byte("#!/bin/bash\n# First boot of an instance of the load-balanced fleet\n" +
			"# Release " + rel + ": every release changes this line, so a release is a new launch template version\nset -uo pipefail\n"))
	}
	f.answer(t, "ec2_describe-launch-template-versions", `{"LaunchTemplateVersions": [
	 {"VersionNumber": 5, "LaunchTemplateData": {"UserData": "`+ud("rel222")+`"}},
	 {"VersionNumber": 4, "LaunchTemplateData": {"UserData": "`+ud("rel111")+`"}}]}`)
	var out bytes.Buffer
	o := &Ops{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, HTTP: func(pem []byte) (*http.Client, error) {
		if len(pem) != 0 {
			t.Errorf("a fleet stack pinned a certificate")
		}
		return srv.Client(), nil
	}}
	err := o.Run(context.Background(), []string{"status", "AircraftFleet"})
	var exit *ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("%v, want a failed status (i-0a on an old release)\n%s", err, out.String())
	}
	calls := f.calls(t)
	if want := "ec2 describe-launch-template-versions --launch-template-id lt-1 --output json --versions 4 5"; calls[len(calls)-1] != want {
		t.Errorf("last call %q, want %q", calls[len(calls)-1], want)
	}
	for _, line := range []string{
		"200 OK: ready",
		"i-0a (InService)           rel111 (NOT the deployed release)",
		"i-0b (InService)           rel222 (live)",
		"i-0c (InService)           rel222 (live)",
		"NOT HEALTHY: 1 instance(s) not on release rel222",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("status lacks %q:\n%s", line, out.String())
		}
	}
}
