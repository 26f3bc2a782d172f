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
	app := awscdk.NewApp(nil)
	cfg, err := ParseConfig(func(key string) any { return app.Node().TryGetContext(jsii.String(key)) })
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	binary, err := ServiceBinary(filepath.Join(root, "app"), filepath.Join(root, "infra", ".build"), instanceArch(cfg.InstanceType))
	if err != nil {
		return err
	}
	NewAircraftStack(app, cfg.StackName, &AircraftStackProps{Config: cfg, BinaryPath: binary})
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	app.Synth(nil)
	return nil
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
