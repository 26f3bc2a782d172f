package awsstack

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/gruntwork-io/terratest/modules/testing"
)

// The stage convention of terratest's test-structure package, which this suite follows without importing it (it pulls
// in terratest's Kubernetes, Terraform, Packer and OPA modules: ~290 packages for two small functions):
//
//   - a stage runs unless SKIP_<stage> is set (test_structure.RunTestStage);
//   - what a stage hands to the next is JSON in <folder>/.test-data/<name>.json (test_structure.SaveTestData,
//     FormatTestDataPath), so that stages of one run can run in separate `go test` invocations.

// SkipStageEnvVarPrefix is test_structure.SkipStageEnvVarPrefix.
const SkipStageEnvVarPrefix = "SKIP_"

// The stages of TestAWS, in order.
const (
	StageDeploy   = "deploy"
	StageValidate = "validate"
	StageTeardown = "teardown"
)

// RunStage runs stage unless SKIP_<name> is set in getenv, as test_structure.RunTestStage does.
func RunStage(t testing.TestingT, getenv func(string) string, name string, stage func()) {
	if v := getenv(SkipStageEnvVarPrefix + name); v != "" {
		logger.Default.Logf(t, "%s%s is set, so skipping stage '%s'.", SkipStageEnvVarPrefix, name, name)
		return
	}
	logger.Default.Logf(t, "%s%s is not set, so executing stage '%s'.", SkipStageEnvVarPrefix, name, name)
	stage()
}

// Lifecycle runs deploy, then validate, with teardown deferred so that it runs whatever happens in them: a failed
// deploy (a half-created stack) is destroyed too. Each stage can be skipped with SKIP_<stage>.
func Lifecycle(t testing.TestingT, getenv func(string) string, deploy, validate, teardown func()) {
	defer RunStage(t, getenv, StageTeardown, teardown)
	RunStage(t, getenv, StageDeploy, deploy)
	RunStage(t, getenv, StageValidate, validate)
}

// TestDataPath is test_structure.FormatTestDataPath(folder, name+".json").
func TestDataPath(folder, name string) string {
	return filepath.Join(folder, ".test-data", name+".json")
}

// SaveTestData writes value as JSON to folder's .test-data/<name>.json.
func SaveTestData(folder, name string, value any) error {
	b, err := json.MarshalIndent(value, "", "  ")
	if err != nil {
		return err
	}
	path := TestDataPath(folder, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadTestData reads folder's .test-data/<name>.json into value. found is false when there is none.
func LoadTestData(folder, name string, value any) (found bool, err error) {
	b, err := os.ReadFile(TestDataPath(folder, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(b, value)
}

// CleanupTestData removes folder's .test-data/<name>.json (done once the stack it describes is gone).
func CleanupTestData(folder, name string) error {
	err := os.Remove(TestDataPath(folder, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
