package main

// `cdk diff` in pull requests must show only real changes: two synths of the same commit give byte-identical templates
// and asset manifests, and the contract's build of app/ gives byte-identical binaries.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aircraftdata/platform/infra/appbuild"
	"github.com/aircraftdata/platform/infra/host"
)

func TestTwoSynthsAreByteIdentical(t *testing.T) {
	first := stackOf(t, "default")
	second := synth(t, nil, "")
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Errorf("templates differ:\n%s", firstDifference(first.Raw, second.Raw))
	}
	if !bytes.Equal(first.AssetsRaw, second.AssetsRaw) {
		t.Errorf("asset manifests differ:\n%s", firstDifference(first.AssetsRaw, second.AssetsRaw))
	}
	for _, s := range []*Synth{first, second} {
		for _, dir := range []string{repo, testTmp, s.Dir} {
			if bytes.Contains(s.Raw, []byte(dir)) {
				t.Errorf("the template names the local path %s", dir)
			}
		}
	}
}

func TestContractBuildIsReproducible(t *testing.T) {
	if os.Getenv(appbuild.BinaryOverrideEnv) != "" {
		t.Skipf("%s is set: app/ is not built", appbuild.BinaryOverrideEnv)
	}
	app := filepath.Join(repo, "app")
	a, err := appbuild.Build(app, filepath.Join(testTmp, "build-a"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	b, err := appbuild.Build(app, filepath.Join(testTmp, "build-b", "elsewhere"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	ha, _ := host.FileSHA256(a)
	hb, _ := host.FileSHA256(b)
	if ha != hb {
		t.Errorf("two builds differ: %s %s", ha, hb)
	}
	bin, _ := os.ReadFile(a)
	modcache, _ := exec.Command("go", "env", "GOMODCACHE").Output()
	for _, leak := range []string{repo + "/", string(bytes.TrimSpace(modcache)) + "/"} {
		if len(leak) > 1 && bytes.Contains(bin, []byte(leak)) {
			t.Errorf("the binary contains the path %s (want -trimpath)", leak)
		}
	}
}

func firstDifference(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-200)
	return "first:  ..." + string(a[lo:min(len(a), i+200)]) + "\nsecond: ..." + string(b[lo:min(len(b), i+200)])
}
