// Command diagram writes docs/architecture.md: a Mermaid picture of the stack, drawn from the synthesized template in a
// cloud assembly (run `make -C infra diagram`, which synthesizes first). No network, no AWS access.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aircraftdata/platform/infra/diagram"
)

func main() {
	assembly := flag.String("assembly", "cdk.out", "cloud assembly folder (the output of cdk synth)")
	out := flag.String("out", "../docs/architecture.md", "Markdown file to write")
	readme := flag.String("readme", "", "Markdown file whose diagram block to update too (e.g. ../README.md)")
	title := flag.String("title", "Architecture", "title of the page")
	context := flag.String("context", "default context", "the context of the synth, as the page names it")
	flag.Parse()
	if err := run(*assembly, *out, *readme, *title, *context); err != nil {
		fmt.Fprintln(os.Stderr, "diagram:", err)
		os.Exit(1)
	}
}

func run(assembly, out, readme, title, context string) error {
	var manifest struct {
		Artifacts map[string]struct {
			Type       string
			Properties struct{ TemplateFile string }
		}
	}
	if err := readJSON(filepath.Join(assembly, "manifest.json"), &manifest); err != nil {
		return err
	}
	var stacks []string
	for _, a := range manifest.Artifacts {
		if a.Type == "aws:cloudformation:stack" {
			stacks = append(stacks, a.Properties.TemplateFile)
		}
	}
	if len(stacks) != 1 {
		return fmt.Errorf("%s: want one stack, found %d", assembly, len(stacks))
	}
	sort.Strings(stacks)
	var tpl diagram.Template
	if err := readJSON(filepath.Join(assembly, stacks[0]), &tpl); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(diagram.RenderPage(tpl, title, context)), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	if readme == "" {
		return nil
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	updated, err := diagram.Embed(string(doc), diagram.Mermaid(tpl))
	if err != nil {
		return fmt.Errorf("%s: %w", readme, err)
	}
	if err := os.WriteFile(readme, []byte(updated), 0o644); err != nil {
		return err
	}
	fmt.Println("updated", readme)
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
