package awsstack

import (
	"os"
	"path/filepath"

	"github.com/gruntwork-io/terratest/modules/shell"
)

// CDK runs the repository's pinned CDK CLI (infra/package.json: aws-cdk and Node.js, installed into infra/node_modules
// by `make -C infra toolchain`) from the repository root, with the environment infra/Makefile gives it.
type CDK struct {
	Root string
}

// Toolchain is the command that installs the pinned CLI when it is missing (npm ci).
func (c CDK) Toolchain() shell.Command {
	return shell.Command{Command: "make", Args: []string{"-C", filepath.Join(c.Root, "infra"), "toolchain"}, WorkingDir: c.Root}
}

// Command is `cdk --no-notices <args>`.
func (c CDK) Command(args ...string) shell.Command {
	infra := filepath.Join(c.Root, "infra")
	return shell.Command{
		Command:    filepath.Join(infra, "node_modules", ".bin", "cdk"),
		Args:       append([]string{"--no-notices"}, args...),
		WorkingDir: c.Root,
		Env: map[string]string{
			"PATH":                                       filepath.Join(infra, "node_modules", "node", "bin") + string(os.PathListSeparator) + os.Getenv("PATH"),
			"JSII_RUNTIME_PACKAGE_CACHE_ROOT":            filepath.Join(infra, ".cache", "jsii"),
			"CDK_DISABLE_VERSION_CHECK":                  "1",
			"CDK_DISABLE_CLI_TELEMETRY":                  "true",
			"JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
		},
	}
}

// contextArgs turns key=value pairs into -c flags.
func contextArgs(ctx []string) []string {
	args := make([]string, 0, 2*len(ctx))
	for _, kv := range ctx {
		args = append(args, "-c", kv)
	}
	return args
}

// DeployArgs deploys one stack without prompting and writes its outputs to outputsFile.
func DeployArgs(stack string, ctx []string, outputsFile string) []string {
	return append([]string{"deploy", stack, "--require-approval", "never", "--outputs-file", outputsFile,
		"--progress", "events"}, contextArgs(ctx)...)
}

// DestroyArgs destroys one stack without prompting. The context is the deploy's: destroy synthesizes the app too.
func DestroyArgs(stack string, ctx []string) []string {
	return append([]string{"destroy", stack, "--force"}, contextArgs(ctx)...)
}
