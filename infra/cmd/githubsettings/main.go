// Command githubsettings checks the GitHub settings the CI roles' trust relies on (docs/e2e.md: CI roles):
//
//	GITHUB_TOKEN=… go run ./cmd/githubsettings owner/repo
//
// Without a token it says so and exits 0 (nothing checked); with one, it exits 1 on any missing setting.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aircraftdata/platform/infra/githubsettings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: githubsettings owner/repo (GITHUB_TOKEN: a token that may read the repository's administration settings)")
		os.Exit(2)
	}
	token := os.Getenv("GITHUB_TOKEN")
	if token == "" {
		fmt.Println("githubsettings: GITHUB_TOKEN is not set: nothing checked")
		return
	}
	api := os.Getenv("GITHUB_API_URL")
	if api == "" {
		api = "https://api.github.com"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := githubsettings.Client{HTTP: &http.Client{Timeout: 20 * time.Second}, BaseURL: api, Token: token}
	problems, err := c.Check(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "githubsettings:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "githubsettings:", p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Println("githubsettings: OIDC subject template and environments as docs/e2e.md requires")
}
