package main

// Test harness: every test that needs a template synthesizes the real stack in-process (the same code path as `cdk
// synth`), offline, with the context of ../cdk.json, into a temporary folder, and reads the cloud assembly back as
// JSON. jsii's package cache and temporary files stay under infra/.cache, not in the user's home.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/appbuild"
	"github.com/aircraftdata/platform/infra/config"
	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/pipeline"
)

var (
	repo            string // repository root
	testTmp         string // per-run temporary folder under infra/.cache
	testBinaries    = map[string]string{}
	testBuildErrors = map[string]error{}
)

// testEnvMarker is set in the environment of the re-executed test binary (see TestMain).
const testEnvMarker = "AIRCRAFT_INFRA_TEST_ENV"

func TestMain(m *testing.M) {
	var err error
	if repo, err = appbuild.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "infra tests:", err)
		os.Exit(1)
	}
	if os.Getenv(testEnvMarker) == "" {
		// jsii fixes the environment of its Node.js runtime while the CDK packages initialize, before TestMain runs, so
		// setting variables here would be too late: run this test binary again with them set.
		env, err := testEnvironment()
		if err == nil {
			jsii.Close() // removes the runtime's temporary folder, made during initialization
			err = syscall.Exec(os.Args[0], os.Args, env)
		}
		fmt.Fprintln(os.Stderr, "infra tests:", err)
		os.Exit(1)
	}
	testTmp = os.Getenv("TMPDIR")
	code := m.Run()
	jsii.Close()
	os.RemoveAll(testTmp)
	os.Exit(code)
}

// testEnvironment is the environment of the tests: Node 24 of the pinned toolchain first on PATH (when installed; make
// test installs it), and jsii's package cache and all temporary files under infra/.cache, not in the user's home or
// /tmp.
func testEnvironment() ([]string, error) {
	infra := filepath.Join(repo, "infra")
	if err := os.MkdirAll(filepath.Join(infra, ".cache"), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(infra, ".cache"), "test-")
	if err != nil {
		return nil, err
	}
	path := os.Getenv("PATH")
	if bin := filepath.Join(infra, "node_modules", "node", "bin"); isDir(bin) {
		path = bin + string(os.PathListSeparator) + path
	}
	env := []string{}
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "PATH", "TMPDIR", "JSII_RUNTIME_PACKAGE_CACHE_ROOT":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+path, "TMPDIR="+tmp, testEnvMarker+"=1",
		"JSII_RUNTIME_PACKAGE_CACHE_ROOT="+filepath.Join(infra, ".cache", "jsii")), nil
}

func isDir(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

// serviceBinary is the binary the default synths ship: the real build of app/ for arch (as `make synth` does), or
// AIRCRAFTD_BINARY when set.
func serviceBinary(t testing.TB, arch string) string {
	t.Helper()
	if bin, ok := testBinaries[arch]; ok {
		return bin
	}
	if err, ok := testBuildErrors[arch]; ok {
		t.Fatalf("app/ does not build for %s (first error above; AIRCRAFTD_BINARY ships a prebuilt binary): %.200s", arch, err)
	}
	bin, err := host.ServiceBinary(filepath.Join(repo, "app"), filepath.Join(repo, "infra", ".build"), arch)
	if err != nil {
		testBuildErrors[arch] = err
		t.Fatal(err)
	}
	testBinaries[arch] = bin
	return bin
}

var (
	testWorkerCode     string
	testWorkerCodeErr  error
	testWorkerCodeOnce sync.Once
)

// workerCode is the ingest worker's code folder the synths ship: built once per test run, as `make synth` does.
func workerCode(t testing.TB) string {
	t.Helper()
	testWorkerCodeOnce.Do(func() {
		ca, err := host.RDSCABundle()
		if err != nil {
			testWorkerCodeErr = err
			return
		}
		testWorkerCode, testWorkerCodeErr = pipeline.WorkerCode(filepath.Join(repo, "app"), filepath.Join(repo, "infra", ".build", "worker"), ca)
	})
	if testWorkerCodeErr != nil {
		t.Fatalf("the ingest worker does not build: %.300s", testWorkerCodeErr)
	}
	return testWorkerCode
}

// standInWorkerCode is the worker's code of the synths that ship a stand-in binary (fakeBinary): a fixed stand-in
// bootstrap beside the real CA bundle, so that the recorded template does not change with every change of app/.
func standInWorkerCode(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(testTmp, "worker-stand-in")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := host.RDSCABundle()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("bootstrap: stand-in of the ingest worker"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ca)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "rds-ca.pem"), b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// fakeBinary writes a stand-in binary with the given content, for tests about what changes between releases.
func fakeBinary(t testing.TB, content string) string {
	t.Helper()
	dir, err := os.MkdirTemp(testTmp, "bin-")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "aircraftd")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Synth is one synthesized cloud assembly.
type Synth struct {
	Config    config.Config
	Dir       string
	Raw       []byte         // the template file, byte for byte
	Template  map[string]any // the same, parsed
	AssetsRaw []byte         // the asset manifest
	Manifest  map[string]any
	template  assertions.Template
}

// cdkJSONContext is the context of ../cdk.json: the feature flags every synth runs with.
func cdkJSONContext(t testing.TB) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct{ Context map[string]any }
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Context
}

// synth synthesizes the stack with cdk.json's context plus ctx, shipping binary ("" = the real build, and the real
// worker; else a stand-in worker too).
func synth(t testing.TB, ctx map[string]any, binary string) *Synth {
	t.Helper()
	context := cdkJSONContext(t)
	// What the CDK CLI adds to every synth: path and asset metadata, and the CDK version report (AWS::CDK::Metadata).
	context["aws:cdk:enable-path-metadata"] = true
	context["aws:cdk:enable-asset-metadata"] = true
	context["aws:cdk:version-reporting"] = true
	for k, v := range ctx {
		context[k] = v
	}
	dir, err := os.MkdirTemp(testTmp, "cdk.out-")
	if err != nil {
		t.Fatal(err)
	}
	app, cfg, err := newApp(&awscdk.AppProps{Context: &context, Outdir: jsii.String(dir)}, func(arch string) (string, error) {
		if binary == "" {
			return serviceBinary(t, arch), nil
		}
		return binary, nil
	}, func() (string, error) {
		if binary == "" {
			return workerCode(t), nil
		}
		return standInWorkerCode(t), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Synth(nil)

	s := &Synth{Config: cfg, Dir: dir}
	if s.Raw, err = os.ReadFile(filepath.Join(dir, cfg.StackName+".template.json")); err != nil {
		t.Fatal(err)
	}
	if s.AssetsRaw, err = os.ReadFile(filepath.Join(dir, cfg.StackName+".assets.json")); err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, s.Raw, &s.Template)
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, b, &s.Manifest)
	return s
}

var (
	synthMu    sync.Mutex
	synthCache = map[string]*Synth{}
)

// testCertArn is an ACM certificate's ARN, for the load-balanced configurations (nothing is looked up).
const testCertArn = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

// Named configurations of the stack, synthesized once per test run with the real binary.
var configurations = map[string]map[string]any{
	"default":       {},
	"prod":          {"stage": "prod", "stackName": "AircraftProd", "allowedCidr": "203.0.113.0/24"},
	"acme":          {"domainName": "api.aircraft.example.com", "hostedZoneId": "Z0123456789ABCDEFGHIJ", "acmeEmail": "ops@example.com", "allowedCidr": "198.51.100.0/24"},
	"externalMongo": {"mongoUriSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aircraft/mongo-uri-AbCdEf", "mongoCidr": "192.0.2.0/24"},
	"narrow":        {"allowedCidr": "203.0.113.0/24", "bucketName": "aircraft-data-test-bucket", "noncurrentVersionDays": "14", "logRetentionDays": 90},
	// The load-balanced mode: an imported certificate; a DNS-validated one in prod with an external MongoDB.
	// loadBalanced is the context of docs/architecture-loadbalanced.md (infra/Makefile: LOADBALANCED_CONTEXT).
	"loadBalanced": {"instances": "3", "certificateArn": testCertArn},
	"loadBalancedDNS": {"instances": float64(2), "minInstances": "1", "maxInstances": "5", "domainName": "api.aircraft.example.com",
		"allowedCidr":  "198.51.100.0/24",
		"hostedZoneId": "Z0123456789ABCDEFGHIJ", "stage": "prod", "stackName": "AircraftFleet", "accessLogDays": "30",
		"mongoUriSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aircraft/mongo-uri-AbCdEf", "mongoCidr": "192.0.2.0/24"},
}

// stackOf returns the synthesized configuration name (see configurations).
func stackOf(t testing.TB, name string) *Synth {
	t.Helper()
	synthMu.Lock()
	defer synthMu.Unlock()
	if s, ok := synthCache[name]; ok {
		return s
	}
	ctx, ok := configurations[name]
	if !ok {
		t.Fatalf("no configuration %q", name)
	}
	s := synth(t, ctx, "")
	synthCache[name] = s
	return s
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// Assertions returns the CDK assertions view of the template.
func (s *Synth) Assertions() assertions.Template {
	if s.template == nil {
		s.template = assertions.Template_FromJSON(&s.Template, nil)
	}
	return s.template
}

// check runs a CDK assertion, turning its panic into a test failure.
func check(t testing.TB, assertion func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%v", r)
		}
	}()
	assertion()
}

// Resource is one template resource.
type Resource struct {
	ID    string
	Type  string
	Props map[string]any
	Raw   map[string]any
}

// Resources returns the resources of a type, sorted by logical id.
func (s *Synth) Resources(typ string) []Resource {
	var out []Resource
	for id, r := range s.Template["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			props, _ := r["Properties"].(map[string]any)
			out = append(out, Resource{ID: id, Type: typ, Props: props, Raw: r})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// One returns the single resource of a type.
func (s *Synth) One(t testing.TB, typ string) Resource {
	t.Helper()
	rs := s.Resources(typ)
	if len(rs) != 1 {
		t.Fatalf("want one %s, have %d", typ, len(rs))
	}
	return rs[0]
}

// Resource returns a resource by logical id.
func (s *Synth) Resource(t testing.TB, id string) Resource {
	t.Helper()
	r, ok := s.Template["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	props, _ := r["Properties"].(map[string]any)
	return Resource{ID: id, Type: r["Type"].(string), Props: props, Raw: r}
}

// Output returns the value of an output (nil if absent).
func (s *Synth) Output(name string) any {
	o, ok := s.Template["Outputs"].(map[string]any)[name].(map[string]any)
	if !ok {
		return nil
	}
	return o["Value"]
}

// jsonOf renders a value compactly, for comparisons of intrinsics and messages.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// refTo reports whether v is {"Ref": id} or {"Fn::GetAtt": [id, ...]}.
func refTo(v any, id string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if m["Ref"] == id {
		return true
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) > 0 && ga[0] == id {
		return true
	}
	return false
}

// list returns v as a list (a single value becomes a list of one).
func list(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// str returns v as a string if it is one.
func strOf(v any) string { s, _ := v.(string); return s }

// joinedText flattens a {"Fn::Join": ["", [...]]} (or a string) into text, rendering intrinsics as ${...}.
func joinedText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if j, ok := v["Fn::Join"].([]any); ok && len(j) == 2 {
			var b strings.Builder
			for _, part := range j[1].([]any) {
				b.WriteString(joinedText(part))
			}
			return b.String()
		}
		if r, ok := v["Ref"].(string); ok {
			return "${" + r + "}"
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok {
			return "${" + fmt.Sprint(ga[0]) + "." + fmt.Sprint(ga[1]) + "}"
		}
		if b64, ok := v["Fn::Base64"]; ok {
			return joinedText(b64)
		}
	}
	return jsonOf(v)
}
