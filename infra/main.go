// Command infra is the CDK app of the aircraft data platform. `cdk synth|diff|deploy` run it through cdk.json at the
// repository root (use `make -C infra synth|diff|deploy`); context flags are listed in docs/infra.md.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/aircraftdata/platform/infra/host"
)

func main() {
	defer jsii.Close()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		jsii.Close()
		os.Exit(1)
	}
}

func run() error {
	app, _, err := newApp(nil, buildService)
	if err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}

// newApp assembles the CDK app: its context (props, plus what the CDK CLI passes) checked and read into a Config,
// the stack with the service binary binary returns for the instance's GOARCH, and cdk-nag. main and the tests both
// assemble it here, so that a check added here is tested.
func newApp(props *awscdk.AppProps, binary func(arch string) (string, error)) (awscdk.App, Config, error) {
	app := awscdk.NewApp(props)
	context, _ := app.Node().GetAllContext(nil).(map[string]any)
	if err := checkKeys(context); err != nil {
		return nil, Config{}, err
	}
	cfg, err := ParseConfig(func(key string) any { return app.Node().TryGetContext(jsii.String(key)) })
	if err != nil {
		return nil, cfg, err
	}
	bin, err := binary(instanceArch(cfg.InstanceType))
	if err != nil {
		return nil, cfg, err
	}
	NewAircraftStack(app, cfg.StackName, &AircraftStackProps{Config: cfg, BinaryPath: bin})
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return app, cfg, nil
}

// buildService builds app/ for arch into infra/.build (as `make synth` ships it).
func buildService(arch string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return host.ServiceBinary(filepath.Join(root, "app"), filepath.Join(root, "infra", ".build"), arch)
}

// instanceArch is the GOARCH of an EC2 instance type: arm64 for Graviton, amd64 otherwise.
func instanceArch(instanceType string) string {
	if awsec2.NewInstanceType(jsii.String(instanceType)).Architecture() == awsec2.InstanceArchitecture_ARM_64 {
		return "arm64"
	}
	return "amd64"
}

// repoRoot is the repository root (the folder of cdk.json and go.work): the CLI runs the app from there, the tests
// from infra/.
func repoRoot() (string, error) {
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
