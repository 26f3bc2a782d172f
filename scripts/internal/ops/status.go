package ops

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// readyTimeout bounds the GET of /api/v1/ready.
const readyTimeout = 10 * time.Second

// status prints the stack's outputs, its readiness, its alarms and the release on its instance(s). Each part that
// cannot be read says why and the others still print; it fails (exit 1) when the service is not ready, an alarm is in
// ALARM, a release differs from ReleaseId, or a part could not be read.
func (o *Ops) status(ctx context.Context, st stack) error {
	var problems []string
	fmt.Fprintf(o.Stdout, "stack %s: %s\n\noutputs:\n", st.Name, st.Status)
	keys := make([]string, 0, len(st.Outputs))
	for k := range st.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(o.Stdout, "  %-26s %s\n", k, st.Outputs[k])
	}

	fmt.Fprintln(o.Stdout, "\nready:")
	if p := o.ready(ctx, st); p != "" {
		problems = append(problems, p)
	}
	fmt.Fprintln(o.Stdout, "\nalarms:")
	if p := o.alarms(ctx, st); p != "" {
		problems = append(problems, p)
	}
	fmt.Fprintln(o.Stdout, "\nrelease:")
	if p := o.release(ctx, st); p != "" {
		problems = append(problems, p)
	}

	fmt.Fprintln(o.Stdout)
	if len(problems) > 0 {
		fmt.Fprintf(o.Stdout, "NOT HEALTHY: %s\n", strings.Join(problems, "; "))
		return &ExitError{Code: 1}
	}
	fmt.Fprintln(o.Stdout, "healthy: ready, no alarm in ALARM, the deployed release is live")
	return nil
}

// ready prints GET ApiUrl/api/v1/ready: over the pinned self-signed certificate (CertificateParameterName) when the
// stack has one, the system roots otherwise (ACME, the load balancer's ACM certificate). It returns the problem.
func (o *Ops) ready(ctx context.Context, st stack) string {
	api, err := st.output("ApiUrl")
	if err != nil {
		fmt.Fprintf(o.Stdout, "  %v\n", err)
		return "readiness unknown"
	}
	var pem []byte
	if param := st.Outputs["CertificateParameterName"]; param != "" {
		out, err := o.aws(ctx, "ssm", "get-parameter", "--name", param, "--query", "Parameter.Value", "--output", "text")
		if err != nil {
			fmt.Fprintf(o.Stdout, "  the pinned certificate: %v\n", err)
			return "readiness unknown"
		}
		pem = out
	}
	client, err := o.HTTP(pem)
	if err != nil {
		fmt.Fprintf(o.Stdout, "  the pinned certificate (%s): %v\n", st.Outputs["CertificateParameterName"], err)
		return "readiness unknown"
	}
	url := strings.TrimRight(api, "/") + "/api/v1/ready"
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(o.Stdout, "  %v\n", err)
		return "readiness unknown"
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(o.Stdout, "  GET %s: %v\n", url, err)
		return "not reachable"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r struct {
		Status    string            `json:"status"`
		Checks    map[string]string `json:"checks"`
		CheckedAt *string           `json:"checked_at"`
	}
	if json.Unmarshal(body, &r) != nil {
		fmt.Fprintf(o.Stdout, "  GET %s: %s: %.200s\n", url, resp.Status, body)
	} else {
		fmt.Fprintf(o.Stdout, "  GET %s: %s: %s\n", url, resp.Status, r.Status)
		names := make([]string, 0, len(r.Checks))
		for k := range r.Checks {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(o.Stdout, "    %-10s %s\n", k, r.Checks[k])
		}
		if r.CheckedAt != nil {
			fmt.Fprintf(o.Stdout, "    checked at %s\n", *r.CheckedAt)
		}
	}
	if resp.StatusCode != http.StatusOK {
		return "not ready (" + resp.Status + ")"
	}
	return ""
}

// alarm is one CloudWatch alarm, metric or composite.
type alarm struct {
	AlarmName, StateValue, StateReason, StateUpdatedTimestamp string
	AlarmActions                                              []string
}

// stateOrder puts ALARM first, then missing data, then OK.
var stateOrder = map[string]int{"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}

// alarms prints the stack's alarms (named "<stack>-…" by CloudFormation and notifying AlarmTopicArn), ALARM first.
func (o *Ops) alarms(ctx context.Context, st stack) string {
	out, err := o.aws(ctx, "cloudwatch", "describe-alarms", "--alarm-name-prefix", st.Name+"-", "--output", "json")
	if err != nil {
		fmt.Fprintf(o.Stdout, "  %v\n", err)
		return "alarms unknown"
	}
	var resp struct{ MetricAlarms, CompositeAlarms []alarm }
	if err := json.Unmarshal(out, &resp); err != nil {
		fmt.Fprintf(o.Stdout, "  unexpected answer of describe-alarms: %v\n", err)
		return "alarms unknown"
	}
	topic := st.Outputs["AlarmTopicArn"]
	var list []alarm
	for _, a := range append(resp.MetricAlarms, resp.CompositeAlarms...) {
		if topic == "" || slices.Contains(a.AlarmActions, topic) {
			list = append(list, a)
		}
	}
	sort.SliceStable(list, func(i, j int) bool {
		if stateOrder[list[i].StateValue] != stateOrder[list[j].StateValue] {
			return stateOrder[list[i].StateValue] < stateOrder[list[j].StateValue]
		}
		return list[i].AlarmName < list[j].AlarmName
	})
	firing := 0
	for _, a := range list {
		fmt.Fprintf(o.Stdout, "  %-17s %s (since %s)\n", a.StateValue, a.AlarmName, a.StateUpdatedTimestamp)
		if a.StateValue == "ALARM" {
			firing++
			fmt.Fprintf(o.Stdout, "                    %s\n", a.StateReason)
		}
	}
	if len(list) == 0 {
		fmt.Fprintln(o.Stdout, "  none found")
		return "no alarms found"
	}
	if firing > 0 {
		return fmt.Sprintf("%d alarm(s) in ALARM", firing)
	}
	return ""
}

// release prints the release each instance runs against the ReleaseId output. The single instance is asked through
// Session Manager (AWS-StartNonInteractiveCommand: one command, no shell; the instance role allows sessions and not Run
// Command): /etc/aircraft/deploy.env names the release installed, which aircraft-apply puts back to the last good one
// when a release fails its gate. A fleet instance runs the release of the launch template version it was started from,
// named in its user data ("# Release <id>:", infra/fleet/fleetboot/user-data.sh): read from EC2, no session.
func (o *Ops) release(ctx context.Context, st stack) string {
	want := st.Outputs["ReleaseId"]
	fmt.Fprintf(o.Stdout, "  %-26s %s\n", "deployed (ReleaseId)", want)
	live := map[string]string{} // instance id -> release
	if id := st.Outputs["InstanceId"]; id != "" {
		r, err := o.instanceRelease(ctx, id)
		if err != nil {
			fmt.Fprintf(o.Stdout, "  %-26s unknown: %v\n", id, err)
			return "release on the instance unknown"
		}
		live[id] = r
	} else if st.Outputs["AutoScalingGroupName"] != "" {
		rs, err := o.fleetReleases(ctx, st)
		if err != nil {
			fmt.Fprintf(o.Stdout, "  fleet: unknown: %v\n", err)
			return "release on the fleet unknown"
		}
		live = rs
	} else {
		fmt.Fprintln(o.Stdout, "  no InstanceId nor AutoScalingGroupName output")
		return "release on the instance unknown"
	}
	ids := make([]string, 0, len(live))
	for id := range live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	stale := 0
	for _, id := range ids {
		mark := "live"
		if live[id] != want {
			mark, stale = "NOT the deployed release", stale+1
		}
		fmt.Fprintf(o.Stdout, "  %-26s %s (%s)\n", id, live[id], mark)
	}
	if len(ids) == 0 {
		fmt.Fprintln(o.Stdout, "  no instance")
		return "no instance"
	}
	if stale > 0 {
		return fmt.Sprintf("%d instance(s) not on release %s", stale, want)
	}
	return ""
}

// releaseLine finds RELEASE=<id> in the answer of the session (between the plugin's own lines).
var releaseLine = regexp.MustCompile(`(?m)^RELEASE=["']?([^"'\s]+)`)

func (o *Ops) instanceRelease(ctx context.Context, id string) (string, error) {
	if _, err := exec.LookPath("session-manager-plugin"); err != nil {
		return "", errors.New(pluginHint)
	}
	params := `{"command":["grep -h ^RELEASE= /etc/aircraft/deploy.env"]}`
	out, err := o.aws(ctx, "ssm", "start-session", "--target", id, "--document-name", "AWS-StartNonInteractiveCommand",
		"--parameters", params)
	if err != nil {
		return "", err
	}
	m := releaseLine.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no RELEASE= in /etc/aircraft/deploy.env: %.200q", out)
	}
	return string(m[1]), nil
}

// userDataRelease finds the release in a fleet instance's user data.
var userDataRelease = regexp.MustCompile(`(?m)^# Release ([^:\s]+):`)

func (o *Ops) fleetReleases(ctx context.Context, st stack) (map[string]string, error) {
	fleet, err := o.fleet(ctx, st)
	if err != nil {
		return nil, err
	}
	byTemplate := map[string][]string{} // launch template id -> versions in use
	for _, in := range fleet {
		lt := in.LaunchTemplate
		if lt.LaunchTemplateId == "" || lt.Version == "" {
			return nil, fmt.Errorf("instance %s has no launch template version", in.InstanceId)
		}
		if !slices.Contains(byTemplate[lt.LaunchTemplateId], lt.Version) {
			byTemplate[lt.LaunchTemplateId] = append(byTemplate[lt.LaunchTemplateId], lt.Version)
		}
	}
	release := map[string]string{} // "<template>/<version>" -> release
	for template, versions := range byTemplate {
		out, err := o.aws(ctx, append([]string{"ec2", "describe-launch-template-versions", "--launch-template-id", template,
			"--output", "json", "--versions"}, versions...)...)
		if err != nil {
			return nil, err
		}
		var resp struct {
			LaunchTemplateVersions []struct {
				VersionNumber      int
				LaunchTemplateData struct{ UserData string }
			}
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			return nil, fmt.Errorf("unexpected answer of describe-launch-template-versions: %v", err)
		}
		for _, v := range resp.LaunchTemplateVersions {
			data, err := base64.StdEncoding.DecodeString(v.LaunchTemplateData.UserData)
			m := userDataRelease.FindSubmatch(data)
			if err != nil || m == nil {
				return nil, fmt.Errorf("launch template %s version %d: no release in its user data", template, v.VersionNumber)
			}
			release[fmt.Sprintf("%s/%d", template, v.VersionNumber)] = string(m[1])
		}
	}
	live := map[string]string{}
	for _, in := range fleet {
		r, ok := release[in.LaunchTemplate.LaunchTemplateId+"/"+in.LaunchTemplate.Version]
		if !ok {
			return nil, fmt.Errorf("launch template %s version %s not found", in.LaunchTemplate.LaunchTemplateId, in.LaunchTemplate.Version)
		}
		live[in.InstanceId+" ("+in.LifecycleState+")"] = r
	}
	return live, nil
}

// httpClient trusts only the certificates of pemBytes, or the system roots when it is empty.
func httpClient(pemBytes []byte) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(pemBytes) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, errors.New("no PEM certificate in it (has the instance written it yet?)")
		}
		tc.RootCAs = pool
	}
	return &http.Client{Timeout: readyTimeout, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}
