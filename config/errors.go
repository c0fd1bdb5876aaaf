package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// decodeError turns an error of the TOML decoder into an Error with the file and line.
func decodeError(path string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	}
	// Type mismatches come back as plain errors of the form
	// `toml: line 7 (last key "functions.x.command"): incompatible types: ...`.
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if m := typeErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Key: m[2], Msg: m[3]}
	}
	return &Error{File: path, Msg: msg}
}

var typeErr = regexp.MustCompile(`^line (\d+) \(last key "([^"]*)"\): (.*)$`)

// locator finds the line of a key for errors found after decoding (unknown keys, invalid
// values). The decoder keeps key positions to itself, so this looks for the table header
// and then for the key's assignment below it; when that fails the error still names the
// key, only without a line.
type locator struct {
	path string
	text string
}

func (l locator) unknownKey(key toml.Key) error {
	msg := "unknown key"
	if len(key) > 1 && !slices.Contains(knownKeys(nil), key[0]) {
		// An unknown table: suggest the table, with the rest of the key.
		if s := suggest(key[0], knownKeys(nil)); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", append(toml.Key{s}, key[1:]...))
		}
	} else if s := suggest(key[len(key)-1], knownKeys(key[:len(key)-1])); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return &Error{File: l.path, Line: l.line(key), Key: key.String(), Msg: msg}
}

// at is a problem of the value of key.
func (l locator) at(key []string, msg string) error {
	return &Error{File: l.path, Line: l.lineOf(key), Key: toml.Key(key).String(), Msg: msg}
}

// lineOf is the line of key, or else of the nearest table above it that has one.
func (l locator) lineOf(key []string) int {
	for n := len(key); n > 0; n-- {
		if line := l.line(key[:n]); line > 0 {
			return line
		}
	}
	return 0
}

// report adds the validation errors of the table at key to probs, one for each problem
// of a joined error. Messages start with the offending key when there is one
// ("labels: ..."), which is used to find its line.
func (l locator) report(probs *problems, table []string, err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			l.report(probs, table, e)
		}
		return
	}
	full := table
	if k, _, ok := strings.Cut(err.Error(), ":"); ok && !strings.ContainsAny(k, " \"") {
		full = append(slices.Clip(table), k)
	}
	line := l.line(full)
	if line == 0 {
		line = l.line(table)
	}
	probs.add(&Error{File: l.path, Line: line, Key: toml.Key(table).String(), Msg: err.Error()})
}

// unknownTables reports the top-level keys that are none of faasd.toml's tables, each
// at the first of its keys that has a line ([service.db] is found at "service.db").
func (d *decoder) unknownTables() {
	known := knownKeys(nil)
	seen := map[string]bool{}
	for _, k := range d.md.Undecoded() {
		if slices.Contains(known, k[0]) || seen[k[0]] {
			continue
		}
		if d.loc.line(k) == 0 {
			continue // an implicit table, or a key the next loop reports
		}
		seen[k[0]] = true
		d.probs.add(d.loc.unknownKey(k))
	}
	for _, k := range d.md.Undecoded() {
		if !slices.Contains(known, k[0]) && !seen[k[0]] {
			seen[k[0]] = true
			d.probs.add(d.loc.unknownKey(k[:1]))
		}
	}
}

// problems collects the errors of one file.
type problems struct{ list []*Error }

func (p *problems) add(err error) {
	e, ok := err.(*Error)
	if !ok {
		e = &Error{Msg: err.Error()}
	}
	p.list = append(p.list, e)
}

// err returns nil, the one problem, or all of them in the order of their lines.
func (p *problems) err() error {
	switch len(p.list) {
	case 0:
		return nil
	case 1:
		return p.list[0]
	}
	// Problems without a line go last.
	line := func(e *Error) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line
	}
	slices.SortStableFunc(p.list, func(a, b *Error) int { return cmp.Compare(line(a), line(b)) })
	return Errors(p.list)
}

// Errors are all the problems of one file, in the order of their lines, one per line
// of the message.
type Errors []*Error

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the first *Error.
func (e Errors) Unwrap() []error {
	out := make([]error, len(e))
	for i, err := range e {
		out[i] = err
	}
	return out
}

// line returns the 1-based line that defines key, or 0.
func (l locator) line(key []string) int {
	if len(key) == 0 {
		return 0
	}
	lines := strings.Split(l.text, "\n")
	// Find the header of the deepest table that is a prefix of key.
	start, depth := 0, 0
	for i, s := range lines {
		s = strings.TrimSpace(s)
		if !strings.HasPrefix(s, "[") || strings.HasPrefix(s, "[[") {
			continue
		}
		end := strings.IndexByte(s, ']')
		if end < 0 {
			continue
		}
		hdr := splitKey(s[1:end])
		if len(hdr) > depth && len(hdr) <= len(key) && equalKeys(hdr, key[:len(hdr)]) {
			start, depth = i, len(hdr)
			if depth == len(key) {
				return i + 1
			}
		}
	}
	if depth == 0 && len(key) > 1 {
		return 0
	}
	want := key[depth:]
	for i := start; i < len(lines); i++ {
		s := strings.TrimSpace(lines[i])
		if i > start && strings.HasPrefix(s, "[") {
			break
		}
		k, _, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		got := splitKey(k)
		if got[0] == want[0] {
			return i + 1
		}
	}
	if depth > 0 {
		return start + 1
	}
	return 0
}

// splitKey splits a dotted TOML key, honouring quotes.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

func equalKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func knownKeys(table toml.Key) []string {
	switch {
	case len(table) == 0:
		return []string{"gateway", "queue", "functions", "services", "secrets"}
	case table[0] == "gateway":
		return tomlTags(rawGateway{})
	case table[0] == "queue":
		return tomlTags(rawQueue{})
	case table[0] == "functions" && len(table) == 2:
		return tomlTags(rawFunction{})
	case table[0] == "services" && len(table) == 2:
		return tomlTags(rawService{})
	case table[0] == "secrets" && len(table) == 2:
		return tomlTags(rawSecret{})
	}
	return nil
}

// suggest returns the known key closest to typo, if it is close enough to be a typo.
func suggest(typo string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(typo, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
