// Command appbuild builds the service binary exactly as the CDK app does for the instance: go run ./infra/cmd/appbuild
// -out DIR writes DIR/aircraftd and prints its path (or prints AIRCRAFTD_BINARY's, when set). devstack builds the
// service with it. With -worker it writes DIR/bootstrap, the ingestion worker's Lambda binary (linux/arm64).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/aircraftdata/platform/infra/appbuild"
)

func main() {
	app := flag.String("app", "app", "the app module's directory")
	out := flag.String("out", "", "directory to write aircraftd to")
	goarch := flag.String("goarch", "amd64", "amd64 (t2, t3…) or arm64 (Graviton)")
	worker := flag.Bool("worker", false, "build the ingestion worker's Lambda binary (bootstrap, linux/arm64) instead")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "appbuild: -out is required")
		os.Exit(2)
	}
	build := func() (string, error) { return appbuild.Binary(*app, *out, *goarch) }
	if *worker {
		build = func() (string, error) { return appbuild.BuildWorker(*app, *out) }
	}
	bin, err := build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "appbuild:", err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
