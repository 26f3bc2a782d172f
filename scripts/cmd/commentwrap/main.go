// Command commentwrap checks that the prose paragraphs of Go // comments are wrapped at 120 columns, and with -w
// rewraps them (make lint, make fmt).
//
//	commentwrap [-w] file.go...
//
// A paragraph (of prose, or one list item) is wrapped when no line is wider than 120 columns (a tab of indentation
// counts 4, as the house's 120-column comments were written) and no line is broken early, that is, the next line's
// first word would have fitted on it: the paragraph is what greedily filling its words into 120 columns gives, a list
// item's lines under its first word. No line is made to start with a word that would turn it into a list item or a
// heading ("-", "1.", "#"). Headings, code blocks and other indented lines, directives (//go:build, //nolint), lines
// with a URL, a drawing or table character or aligned columns, trailing comments on code lines and /* */ comments are
// left as they are, as are generated files. A word is never split, so a single word wider than the room stays as it is.
//
// Without -w it lists each paragraph to rewrap as file:line and exits 1 if there is any; with -w it rewrites the files
// in place.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
)

func main() {
	write := flag.Bool("w", false, "rewrite the files instead of listing the paragraphs to rewrap")
	flag.Parse()
	bad := false
	for _, name := range flag.Args() {
		src, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "commentwrap:", err)
			os.Exit(2)
		}
		out, lines, err := Rewrap(name, src)
		if err != nil {
			fmt.Fprintln(os.Stderr, "commentwrap:", err)
			os.Exit(2)
		}
		if *write {
			if !bytes.Equal(out, src) {
				if err := os.WriteFile(name, out, 0o644); err != nil {
					fmt.Fprintln(os.Stderr, "commentwrap:", err)
					os.Exit(2)
				}
			}
			continue
		}
		for _, l := range lines {
			fmt.Printf("%s:%d: comment not wrapped at %d columns\n", name, l, Width)
			bad = true
		}
	}
	if bad {
		fmt.Fprintln(os.Stderr, "commentwrap: comments above need rewrapping (make fmt)")
		os.Exit(1)
	}
}
