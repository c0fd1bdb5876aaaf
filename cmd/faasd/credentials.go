package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The credentials file is faas-cli's, so that `faas-cli login` and `faasd login` share it:
//
//	auths:
//	- gateway: http://127.0.0.1:8080
//	  auth: basic
//	  token: YWRtaW46c2VjcmV0      # base64("admin:secret")
//
// go.mod has no YAML library, and this structure is all there is to read and write, so
// a small reader and writer handle exactly it: a list under "auths" of flat entries, each
// with an optional "options" map of scalars (faas-cli's OAuth entries), in block style
// with any indentation, scalars plain, 'single' or "double" quoted. Anything else is
// refused rather than rewritten, so a file this code does not understand is never lost.

// authEntry is one gateway's credentials. Keys are kept in order, unknown ones included,
// so that a rewrite changes only what login changed.
type authEntry struct {
	fields  []kv // gateway, auth, token and whatever else the entry holds
	options []kv
}

type kv struct{ key, value string }

func (e *authEntry) get(key string) string {
	for _, f := range e.fields {
		if f.key == key {
			return f.value
		}
	}
	return ""
}

func (e *authEntry) set(key, value string) {
	for i, f := range e.fields {
		if f.key == key {
			e.fields[i].value = value
			return
		}
	}
	e.fields = append(e.fields, kv{key, value})
}

// authFile is the whole credentials file.
type authFile struct {
	entries []*authEntry
}

// credentialsPath is where faas-cli keeps its config: $OPENFAAS_CONFIG/config.yml, else
// ./.openfaas/config.yml on CI (CI=true or 1, as faas-cli decides), else
// ~/.openfaas/config.yml.
func credentialsPath(getenv func(string) string) (string, error) {
	if dir := getenv("OPENFAAS_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.yml"), nil
	}
	if ci := getenv("CI"); ci == "true" || ci == "1" {
		return filepath.Join(".openfaas", "config.yml"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("credentials: HOME is not set; set OPENFAAS_CONFIG to a directory")
	}
	return filepath.Join(home, ".openfaas", "config.yml"), nil
}

// readAuthFile reads the credentials file; a missing one is empty.
func readAuthFile(path string) (*authFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &authFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	f, err := parseAuthFile(data)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return f, nil
}

// lookup returns the entry of a gateway, matched exactly as faas-cli matches it.
func (f *authFile) lookup(gateway string) (*authEntry, bool) {
	for _, e := range f.entries {
		if e.get("gateway") == gateway {
			return e, true
		}
	}
	return nil, false
}

// setBasic stores basic-auth credentials for a gateway, replacing its entry.
func (f *authFile) setBasic(gateway, user, password string) {
	token := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	e, ok := f.lookup(gateway)
	if !ok {
		e = &authEntry{fields: []kv{{"gateway", gateway}}}
		f.entries = append(f.entries, e)
	}
	e.set("auth", "basic")
	e.set("token", token)
	e.options = nil
}

// basicAuth decodes a basic entry's token into user and password.
func (e *authEntry) basicAuth() (user, password string, err error) {
	raw, err := base64.StdEncoding.DecodeString(e.get("token"))
	if err != nil {
		return "", "", fmt.Errorf("credentials for %s: token is not base64: %w", e.get("gateway"), err)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("credentials for %s: token is not user:password", e.get("gateway"))
	}
	return user, password, nil
}

// write saves the file with mode 0600 in a 0700 directory, replacing it by a rename so
// that a crash leaves the old or the new file, never half of one.
func (f *authFile) write(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "config.yml.*.tmp")
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("credentials: %w", err)
	}
	if _, err := tmp.Write(f.marshal()); err != nil {
		tmp.Close()
		return fmt.Errorf("credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}

// marshal writes the file the way faas-cli's YAML library does for this structure.
func (f *authFile) marshal() []byte {
	var b strings.Builder
	if len(f.entries) == 0 {
		b.WriteString("auths: []\n")
		return []byte(b.String())
	}
	b.WriteString("auths:\n")
	for _, e := range f.entries {
		// faas-cli's order first, then anything else the entry held.
		fields := make([]kv, 0, len(e.fields))
		for _, k := range []string{"gateway", "auth", "token"} {
			for _, fl := range e.fields {
				if fl.key == k {
					fields = append(fields, fl)
				}
			}
		}
		for _, fl := range e.fields {
			if fl.key != "gateway" && fl.key != "auth" && fl.key != "token" {
				fields = append(fields, fl)
			}
		}
		for i, fl := range fields {
			prefix := "  "
			if i == 0 {
				prefix = "- "
			}
			fmt.Fprintf(&b, "%s%s: %s\n", prefix, yamlKey(fl.key), yamlScalar(fl.value))
		}
		if len(fields) == 0 {
			b.WriteString("- {}\n")
		}
		if len(e.options) > 0 {
			b.WriteString("  options:\n")
			for _, o := range e.options {
				fmt.Fprintf(&b, "    %s: %s\n", yamlKey(o.key), yamlScalar(o.value))
			}
		}
	}
	return []byte(b.String())
}

var (
	plainScalar = regexp.MustCompile(`^[A-Za-z0-9_./+=@%~-][A-Za-z0-9_./+=@%~:?&,;()*!$-]*$`)
	yamlWords   = regexp.MustCompile(`^(?i:true|false|yes|no|on|off|y|n|null|~|[-+]?[0-9][0-9_.eE+-]*|\.inf|\.nan)$`)
)

// yamlScalar writes a string so that YAML reads it back as the same string: plain when
// that is unambiguous, double-quoted otherwise.
func yamlScalar(s string) string {
	if plainScalar.MatchString(s) && !yamlWords.MatchString(s) && !strings.Contains(s, ": ") && !strings.HasSuffix(s, ":") {
		return s
	}
	return strconv.Quote(s)
}

func yamlKey(s string) string { return yamlScalar(s) }

// parseAuthFile reads the structure described above.
func parseAuthFile(data []byte) (*authFile, error) {
	f := &authFile{}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var cur *authEntry
	inAuths := false
	itemIndent := -1 // column of the keys of the current entry
	optionsAt := -1  // column of the "options:" key when its map follows
	optionIndent := -1
	for i, line := range lines {
		n := i + 1
		text := stripComment(line)
		if strings.TrimSpace(text) == "" || strings.TrimSpace(text) == "---" {
			continue
		}
		indent := len(text) - len(strings.TrimLeft(text, " "))
		if strings.HasPrefix(strings.TrimLeft(text, " "), "\t") {
			return nil, fmt.Errorf("line %d: tabs are not allowed for indentation", n)
		}
		body := strings.TrimSpace(text)
		if indent == 0 && !strings.HasPrefix(body, "- ") && body != "-" {
			key, value, err := splitKV(body)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if key != "auths" {
				return nil, fmt.Errorf("line %d: unsupported key %q (only auths is understood)", n, key)
			}
			switch value {
			case "":
				inAuths = true
			case "[]":
				inAuths = false
			default:
				return nil, fmt.Errorf("line %d: auths: want a list", n)
			}
			cur, optionsAt = nil, -1
			continue
		}
		if !inAuths {
			return nil, fmt.Errorf("line %d: unexpected %q outside auths", n, body)
		}
		if optionsAt >= 0 && indent > optionsAt {
			if optionIndent < 0 {
				optionIndent = indent
			}
			if indent != optionIndent {
				return nil, fmt.Errorf("line %d: unexpected indentation in options", n)
			}
			key, value, err := splitKV(body)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			cur.options = append(cur.options, kv{key, value})
			continue
		}
		optionsAt, optionIndent = -1, -1
		if strings.HasPrefix(body, "- ") || body == "-" {
			cur = &authEntry{}
			f.entries = append(f.entries, cur)
			rest := strings.TrimSpace(strings.TrimPrefix(body, "-"))
			itemIndent = indent + (len(body) - len(strings.TrimLeft(body[1:], " ")))
			if rest == "" || rest == "{}" {
				itemIndent = -1 // keys follow on the next lines, at their own column
				continue
			}
			body, indent = rest, itemIndent
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: want a list entry (- gateway: ...)", n)
		}
		if itemIndent < 0 {
			itemIndent = indent
		}
		if indent != itemIndent {
			return nil, fmt.Errorf("line %d: unexpected indentation", n)
		}
		key, value, err := splitKV(body)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if key == "options" {
			if value != "" && value != "{}" {
				return nil, fmt.Errorf("line %d: options: want a map", n)
			}
			if value == "" {
				optionsAt = indent
			}
			continue
		}
		cur.fields = append(cur.fields, kv{key, value})
	}
	return f, nil
}

// splitKV splits "key: value" and unquotes the value.
func splitKV(s string) (string, string, error) {
	key, value, ok := strings.Cut(s, ":")
	if !ok || key == "" {
		return "", "", fmt.Errorf("want key: value, got %q", s)
	}
	k, err := unquote(strings.TrimSpace(key))
	if err != nil {
		return "", "", err
	}
	value = strings.TrimSpace(value)
	if value != "" && !strings.HasPrefix(s[len(key)+1:], " ") {
		return "", "", fmt.Errorf("want a space after %q:", key)
	}
	v, err := unquote(value)
	return k, v, err
}

func unquote(s string) (string, error) {
	switch {
	case s == "~" || s == "null":
		return "", nil
	case strings.HasPrefix(s, `"`):
		v, err := strconv.Unquote(s)
		if err != nil {
			return "", fmt.Errorf("bad double-quoted string %s", s)
		}
		return v, nil
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return "", fmt.Errorf("bad single-quoted string %s", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.HasPrefix(s, "|") || strings.HasPrefix(s, ">") || strings.HasPrefix(s, "&") || strings.HasPrefix(s, "*") || strings.HasPrefix(s, "!"):
		return "", fmt.Errorf("unsupported YAML value %s", s)
	}
	return s, nil
}

// stripComment removes a "# comment" that is not inside quotes.
func stripComment(line string) string {
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			if i == 0 || line[i-1] == ' ' || line[i-1] == ':' {
				quote = c
			}
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}
