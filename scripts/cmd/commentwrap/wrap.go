package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Width is the house width of a comment line, in columns.
const Width = 120

// TabWidth is the number of columns a tab in a line's indentation counts for.
const TabWidth = 4

// A fix is one paragraph to rewrite: bytes [start, end) of the file become text.
type fix struct {
	line       int // first line of the paragraph, for the report
	start, end int
	text       string
}

// Rewrap returns src with every prose paragraph of its // comments rewrapped at Width columns, and the first line of
// each paragraph it changed (none when src is already wrapped). Generated files are returned unchanged.
func Rewrap(filename string, src []byte) ([]byte, []int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, nil, err
	}
	if ast.IsGenerated(f) {
		return src, nil, nil
	}
	var fixes []fix
	for _, g := range f.Comments {
		fixes = append(fixes, groupFixes(fset, src, g)...)
	}
	if len(fixes) == 0 {
		return src, nil, nil
	}
	var out bytes.Buffer
	var lines []int
	last := 0
	for _, fx := range fixes {
		out.Write(src[last:fx.start])
		out.WriteString(fx.text)
		last = fx.end
		lines = append(lines, fx.line)
	}
	out.Write(src[last:])
	return out.Bytes(), lines, nil
}

// A commentLine is one // comment alone on its line.
type commentLine struct {
	line       int
	indent     string // what precedes the // on its line
	text       string // what follows the //
	start, end int    // byte offsets of the comment
}

// A paragraph is consecutive comment lines of prose, or one list item: first is what precedes the words on its first
// line (after the //: " " for prose, "   - " for an item), rest on the others (" ", or as many spaces as first has
// columns).
type paragraph struct {
	lines       []commentLine
	first, rest string
}

// groupFixes returns the rewrites of the paragraphs of one comment group. A group that starts after code on its line (a
// trailing comment, and the lines aligned under it) is left alone, and so is any /* */ comment.
func groupFixes(fset *token.FileSet, src []byte, g *ast.CommentGroup) []fix {
	var p paragraph
	var fixes []fix
	flush := func() {
		if fx, ok := rewrap(p); ok {
			fixes = append(fixes, fx)
		}
		p = paragraph{}
	}
	for _, c := range g.List {
		start := fset.Position(c.Pos()).Offset
		lineStart := bytes.LastIndexByte(src[:start], '\n') + 1
		indent := string(src[lineStart:start])
		if strings.Trim(indent, " \t") != "" || strings.HasPrefix(c.Text, "/*") {
			if len(fixes) == 0 && p.lines == nil {
				return nil // a trailing comment, or a /* */ block: the whole group is left alone
			}
			break
		}
		cl := commentLine{fset.Position(c.Pos()).Line, indent, c.Text[2:], start, fset.Position(c.End()).Offset}
		follows := len(p.lines) > 0 && cl.indent == p.lines[0].indent && cl.line == p.lines[len(p.lines)-1].line+1
		switch first, ok := lead(cl.text); {
		case ok && first == " " && follows && p.first == " ":
			p.lines = append(p.lines, cl) // the next line of a prose paragraph
		case ok:
			flush() // a prose paragraph or a list item starts
			p = paragraph{[]commentLine{cl}, first, " "}
			if first != " " {
				p.rest = strings.Repeat(" ", len(first))
			}
		case follows && p.first != " " && strings.HasPrefix(cl.text, p.rest) && isPlain(cl.text[len(p.rest):]):
			p.lines = append(p.lines, cl) // the next line of a list item
		default:
			flush()
		}
	}
	flush()
	return fixes
}

// lead returns what precedes the words of text (what follows a //) if it starts a paragraph: " " for a line of prose,
// the indentation, marker and space for a list item ("   - ", " 1. "). Not a paragraph: blank lines, directives
// (//go:build, //nolint), other indented lines (code blocks, list continuations), headings, lines with a URL, a drawing
// or table character, or a run of spaces (aligned columns).
func lead(text string) (string, bool) {
	body := strings.TrimLeft(text, " ")
	n := len(text) - len(body)
	marker, rest, _ := strings.Cut(body, " ")
	switch {
	case n == 0 || !isPlain(body):
		return "", false
	case looksLikeMarker(marker) && marker != "#" && rest != "" && isPlain(rest):
		return text[:n+len(marker)+1], true
	case n == 1 && !looksLikeMarker(marker):
		return " ", true
	}
	return "", false
}

// rewrap fills the words of p greedily into lines of at most Width columns and returns the rewrite, if it differs from
// p.
func rewrap(p paragraph) (fix, bool) {
	if len(p.lines) == 0 {
		return fix{}, false
	}
	indent := p.lines[0].indent
	room := Width - columns(indent) - len("//") - len(p.first)
	var words []string
	for i, cl := range p.lines {
		prefix := p.rest
		if i == 0 {
			prefix = p.first
		}
		words = append(words, strings.Fields(cl.text[len(prefix):])...)
	}
	var lines []string
	var cur []string
	n := 0 // columns in cur
	for i, w := range words {
		wn := utf8.RuneCountInString(w)
		if len(cur) > 0 && n+1+wn > room {
			switch {
			case looksLikeMarker(w) && len(cur) == 1:
				// A line starting with "-", "1." or "#" would turn into a list item or a heading, and there is no word
				// before to take along: the marker stays on this line, over the width.
				cur = append(cur, w)
				n += 1 + wn
				continue
			case looksLikeMarker(w):
				// Take the word before along.
				lines = append(lines, strings.Join(cur[:len(cur)-1], " "))
				cur = []string{words[i-1]}
				n = utf8.RuneCountInString(words[i-1])
			default:
				lines = append(lines, strings.Join(cur, " "))
				cur, n = nil, 0
			}
		}
		if len(cur) > 0 {
			n++
		}
		cur = append(cur, w)
		n += wn
	}
	lines = append(lines, strings.Join(cur, " "))

	var b strings.Builder
	for i, l := range lines {
		if i == 0 {
			b.WriteString("//" + p.first + l)
		} else {
			b.WriteString("\n" + indent + "//" + p.rest + l)
		}
	}
	text := b.String()
	if text == string(srcOf(p)) {
		return fix{}, false
	}
	return fix{line: p.lines[0].line, start: p.lines[0].start, end: p.lines[len(p.lines)-1].end, text: text}, true
}

// srcOf is the text of p as it stands.
func srcOf(p paragraph) string {
	var b strings.Builder
	for i, cl := range p.lines {
		if i > 0 {
			b.WriteString("\n" + cl.indent)
		}
		b.WriteString("//" + cl.text)
	}
	return b.String()
}

// columns returns the width of an indentation, a tab counting TabWidth columns.
func columns(indent string) int {
	return utf8.RuneCountInString(indent) + strings.Count(indent, "\t")*(TabWidth-1)
}

var (
	marker = regexp.MustCompile(`^([-*+•#]|[0-9]+[.)])$`)
	// Box-drawing, block and geometric characters, vertical arrows and ASCII rules ("---", "===", "+--+") mark a
	// drawing; a pipe standing alone marks a table. Horizontal arrows ("a → b", "->") and pipes inside a word
	// ("synth|diff") are prose.
	drawing = regexp.MustCompile(`[\x{2191}\x{2193}\x{2195}\x{21A5}\x{21A7}\x{2500}-\x{25FF}]|(^|\s)\|(\s|$)|-{3,}|={3,}|\+-+\+`)
)

// looksLikeMarker reports whether a word starting a line would make it a list item or a heading.
func looksLikeMarker(word string) bool {
	return marker.MatchString(word)
}

// isPlain reports whether words of prose can be refilled: no URL, drawing or table character, tab or run of spaces
// (aligned columns).
func isPlain(s string) bool {
	s = strings.TrimRight(s, " ")
	return s != "" && s[0] != ' ' && !strings.Contains(s, "://") && !strings.Contains(s, "  ") &&
		!strings.Contains(s, "\t") && !drawing.MatchString(s)
}
