// Command infra is the CDK app of the aircraft data platform. `cdk synth|diff|deploy` run it through cdk.json at the
// repository root (use `make -C infra synth|diff|deploy`); context flags are listed in docs/infra.md.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/aircraftdata/platform/infra/appbuild"
	"github.com/aircraftdata/platform/infra/config"
	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/pipeline"
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
	app, _, err := newApp(nil, buildService, buildWorker)
	if err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}

// newApp assembles the CDK app: its context (props, plus what the CDK CLI passes) checked and read into a Config, the
// stack with the service binary binary returns for the instance's GOARCH and, with the pipeline, the worker's code
// folder worker returns, and cdk-nag. main and the tests both assemble it here, so that a check added here is tested.
func newApp(props *awscdk.AppProps, binary func(arch string) (string, error), worker func() (string, error)) (awscdk.App, config.Config, error) {
	app := awscdk.NewApp(props)
	context, _ := app.Node().GetAllContext(nil).(map[string]any)
	cfg, err := config.FromContext(context)
	if err != nil {
		return nil, cfg, err
	}
	bin, err := binary(host.InstanceArch(cfg.InstanceType))
	if err != nil {
		return nil, cfg, err
	}
	var workerCode string
	if cfg.Pipeline {
		if workerCode, err = worker(); err != nil {
			return nil, cfg, err
		}
	}
	NewAircraftStack(app, cfg.StackName, &AircraftStackProps{Config: cfg, BinaryPath: bin, WorkerCode: workerCode})
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return app, cfg, nil
}

// buildService builds app/ for arch into infra/.build (as `make synth` ships it).
func buildService(arch string) (string, error) {
	root, err := appbuild.RepoRoot()
	if err != nil {
		return "", err
	}
	return host.ServiceBinary(filepath.Join(root, "app"), filepath.Join(root, "infra", ".build"), arch)
}

// buildWorker builds the ingest worker with the RDS CA bundle into infra/.build/worker: the function's code.
func buildWorker() (string, error) {
	root, err := appbuild.RepoRoot()
	if err != nil {
		return "", err
	}
	ca, err := host.RDSCABundle()
	if err != nil {
		return "", err
	}
	return pipeline.WorkerCode(filepath.Join(root, "app"), filepath.Join(root, "infra", ".build", "worker"), ca)
}
