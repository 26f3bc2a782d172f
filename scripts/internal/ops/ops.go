// Package ops is the operator's commands for a deployed stack (make logs|shell|status STACK=…): it finds what it needs
// in the stack's outputs and drives the AWS CLI, so that it uses the operator's own profile, region and credentials
// exactly as `aws` does. Every AWS call goes through the `aws` executable on PATH (the tests put a stub there); the one
// call of its own is GET /api/v1/ready over HTTPS.
package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// Usage is printed when the command line is wrong.
const Usage = `usage: ops logs|shell|status STACK [aws-args…]
  logs    follow the service's log group (aws logs tail --follow; extra args go to it, e.g. --since 1h)
  shell   a shell on the instance, or on one of the fleet's, through Session Manager
  status  the stack's outputs, /api/v1/ready over HTTPS, the alarms (ALARM first), the release on the instance(s)
The AWS CLI's own settings apply: AWS_PROFILE, AWS_REGION (docs/infra.md: Operator commands).`

// Install hints name the tool that is missing and where to get it.
const (
	awsCLIHint = "the AWS CLI (aws) is not on PATH: install AWS CLI v2, " +
		"https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
	pluginHint = "the Session Manager plugin (session-manager-plugin) is not on PATH: install it, " +
		"https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"
)

// UsageError is a wrong command line; the caller prints Usage.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitError carries the exit status of a command that ran to its end but failed (aws logs tail, a session) or of a
// status that found something wrong; its cause was already printed.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Ops runs the commands; the zero value is not usable: see New.
type Ops struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// HTTP returns the client for the API: pinned to pem when it is not empty, the system roots otherwise.
	HTTP func(pem []byte) (*http.Client, error)
}

// New returns Ops on the process's terminal.
func New() *Ops {
	return &Ops{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, HTTP: httpClient}
}

// Run runs one command line (without the program name).
func (o *Ops) Run(ctx context.Context, args []string) error {
	if len(args) < 2 || args[1] == "" || strings.HasPrefix(args[1], "-") {
		return &UsageError{Msg: "name the command and the stack (make logs|shell|status STACK=<name>)"}
	}
	command, stack, extra := args[0], args[1], args[2:]
	switch command {
	case "logs", "shell", "status":
	default:
		return &UsageError{Msg: fmt.Sprintf("unknown command %q", command)}
	}
	if _, err := exec.LookPath("aws"); err != nil {
		return errors.New(awsCLIHint)
	}
	if command == "shell" {
		if _, err := exec.LookPath("session-manager-plugin"); err != nil {
			return errors.New(pluginHint)
		}
	}
	if _, err := o.aws(ctx, "sts", "get-caller-identity", "--output", "json"); err != nil {
		return fmt.Errorf("no usable AWS credentials (%v): sign in (aws sso login, or AWS_PROFILE / "+
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and set the stack's region (AWS_REGION)", err)
	}
	st, err := o.describeStack(ctx, stack)
	if err != nil {
		return err
	}
	switch command {
	case "logs":
		return o.logs(ctx, st, extra)
	case "shell":
		return o.shell(ctx, st)
	default:
		return o.status(ctx, st)
	}
}

// stack is what describe-stacks says of one stack.
type stack struct {
	Name    string
	Status  string
	Outputs map[string]string
}

func (o *Ops) describeStack(ctx context.Context, name string) (stack, error) {
	out, err := o.aws(ctx, "cloudformation", "describe-stacks", "--stack-name", name, "--output", "json")
	if err != nil {
		return stack{}, fmt.Errorf("stack %s: %w", name, err)
	}
	var resp struct {
		Stacks []struct {
			StackName, StackStatus string
			Outputs                []struct{ OutputKey, OutputValue string }
		}
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Stacks) != 1 {
		return stack{}, fmt.Errorf("stack %s: unexpected answer of describe-stacks (%v): %.200s", name, err, out)
	}
	s := stack{Name: resp.Stacks[0].StackName, Status: resp.Stacks[0].StackStatus, Outputs: map[string]string{}}
	for _, kv := range resp.Stacks[0].Outputs {
		s.Outputs[kv.OutputKey] = kv.OutputValue
	}
	return s, nil
}

// output is a required output of the stack.
func (s stack) output(key string) (string, error) {
	v := s.Outputs[key]
	if v == "" {
		return "", fmt.Errorf("stack %s has no output %s (status %s): is it an aircraft stack, fully deployed?", s.Name, key, s.Status)
	}
	return v, nil
}

func (o *Ops) logs(ctx context.Context, st stack, extra []string) error {
	group, err := st.output("LogGroupName")
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stderr, "ops: following %s (Ctrl-C ends)\n", group)
	return o.attach(ctx, append([]string{"logs", "tail", group, "--follow"}, extra...)...)
}

func (o *Ops) shell(ctx context.Context, st stack) error {
	target, err := o.target(ctx, st)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stderr, "ops: Session Manager to %s (exit ends the session)\n", target)
	return o.attach(ctx, "ssm", "start-session", "--target", target)
}

// target is the single instance, or the first (by id) healthy in-service instance of the fleet.
func (o *Ops) target(ctx context.Context, st stack) (string, error) {
	if id := st.Outputs["InstanceId"]; id != "" {
		return id, nil
	}
	if _, err := st.output("AutoScalingGroupName"); err != nil {
		return "", fmt.Errorf("stack %s has neither InstanceId nor AutoScalingGroupName output (status %s)", st.Name, st.Status)
	}
	fleet, err := o.fleet(ctx, st)
	if err != nil {
		return "", err
	}
	for _, in := range fleet {
		if in.LifecycleState == "InService" && in.HealthStatus == "Healthy" {
			return in.InstanceId, nil
		}
	}
	return "", fmt.Errorf("no healthy in-service instance in %s", st.Outputs["AutoScalingGroupName"])
}

// fleetInstance is one instance of the Auto Scaling group.
type fleetInstance struct {
	InstanceId, LifecycleState, HealthStatus string
	LaunchTemplate                           struct{ LaunchTemplateId, Version string }
}

// fleet is the Auto Scaling group's instances, by id.
func (o *Ops) fleet(ctx context.Context, st stack) ([]fleetInstance, error) {
	group := st.Outputs["AutoScalingGroupName"]
	out, err := o.aws(ctx, "autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", group, "--output", "json")
	if err != nil {
		return nil, err
	}
	var resp struct {
		AutoScalingGroups []struct{ Instances []fleetInstance }
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.AutoScalingGroups) != 1 {
		return nil, fmt.Errorf("auto scaling group %s: unexpected answer (%v): %.200s", group, err, out)
	}
	in := resp.AutoScalingGroups[0].Instances
	sort.Slice(in, func(i, j int) bool { return in[i].InstanceId < in[j].InstanceId })
	return in, nil
}

// aws runs the AWS CLI and returns its standard output; a failure carries the last lines of its standard error.
func (o *Ops) aws(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "aws", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 600 {
			msg = "…" + msg[len(msg)-600:]
		}
		return nil, fmt.Errorf("aws %s %s failed: %v: %s", args[0], args[1], err, msg)
	}
	return out, nil
}

// attach runs the AWS CLI on the terminal (stdin, stdout, stderr); Ctrl-C reaches it directly (same process group).
func (o *Ops) attach(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "aws", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &ExitError{Code: exit.ExitCode()}
	}
	return err
}
