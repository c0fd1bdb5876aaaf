// Package cliconfig reads and writes faas-cli's configuration file, so that `faas-cli
// login` and `faasd login` share the logins they store:
//
//	auths:
//	  - gateway: http://127.0.0.1:8080
//	    auth: basic
//	    token: YWRtaW46c2VjcmV0      # base64("admin:secret")
//
// The file is edited as a YAML document (gopkg.in/yaml.v3's Node tree) rather than decoded
// into structs and encoded again: comments, the order of keys, flow-style entries and keys
// this package does not know (faas-cli's OAuth options, settings of later versions) come
// through a login unchanged, and the encoder quotes whatever YAML requires it to.
package cliconfig

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"faasd/internal/atomicfile"
)

// Path is where faas-cli keeps its configuration: $OPENFAAS_CONFIG/config.yml, else
// ./.openfaas/config.yml on CI (CI=true or 1, as faas-cli decides), else
// ~/.openfaas/config.yml.
func Path(getenv func(string) string) (string, error) {
	if dir := getenv("OPENFAAS_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.yml"), nil
	}
	if ci := getenv("CI"); ci == "true" || ci == "1" {
		return filepath.Join(".openfaas", "config.yml"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("faas-cli config: HOME is not set; set OPENFAAS_CONFIG to a directory")
	}
	return filepath.Join(home, ".openfaas", "config.yml"), nil
}

// NormalizeURL lower-cases a gateway URL, drops trailing slashes and adds http:// when
// there is no scheme, as `faas-cli login` does before it stores the URL: logins are found
// by comparing URLs so normalised.
func NormalizeURL(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimRight(s, "/")
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return s
}

// Login is one gateway's entry.
type Login struct {
	Gateway string
	Auth    string // "basic", or "oauth2" for a token faas-cli got elsewhere
	Token   string // basic: base64 of user:password
}

// Basic decodes a basic login's token into user and password.
func (l Login) Basic() (user, password string, err error) {
	raw, err := base64.StdEncoding.DecodeString(l.Token)
	if err != nil {
		return "", "", fmt.Errorf("login for %s: token is not base64: %w", l.Gateway, err)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("login for %s: token is not user:password", l.Gateway)
	}
	return user, password, nil
}

// File is the configuration file, as a YAML document.
type File struct {
	path string
	doc  *yaml.Node // a DocumentNode holding a mapping
}

// Read reads the file at path; a missing or empty file is an empty configuration.
func Read(path string) (*File, error) {
	f := &File{path: path, doc: &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("faas-cli config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("faas-cli config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return f, nil // only comments, or nothing
	}
	if doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("faas-cli config %s: want a mapping with auths, got a %s", path, kindName(doc.Content[0].Kind))
	}
	f.doc = &doc
	if auths := f.auths(false); auths != nil && auths.Kind != yaml.SequenceNode && auths.Tag != "!!null" {
		return nil, fmt.Errorf("faas-cli config %s:%d: auths: want a list, got a %s", path, auths.Line, kindName(auths.Kind))
	}
	return f, nil
}

// Path is where the file is read from and written to.
func (f *File) Path() string { return f.path }

// Login returns the login stored for a gateway, matched exactly as faas-cli matches it.
func (f *File) Login(gateway string) (Login, bool) {
	entry := f.entry(gateway)
	if entry == nil {
		return Login{}, false
	}
	return Login{Gateway: gateway, Auth: scalar(value(entry, "auth")), Token: scalar(value(entry, "token"))}, true
}

// SetBasic stores basic-auth credentials for a gateway, in its entry if it has one (which
// loses options of another kind of login), else in a new entry at the end.
func (f *File) SetBasic(gateway, user, password string) {
	token := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	entry := f.entry(gateway)
	if entry == nil {
		auths := f.auths(true)
		if len(auths.Content) == 0 {
			auths.Style = 0 // "auths: []" grows into a block list, as faas-cli writes it
		}
		entry = &yaml.Node{Kind: yaml.MappingNode}
		set(entry, "gateway", gateway)
		auths.Content = append(auths.Content, entry)
	}
	set(entry, "auth", "basic")
	set(entry, "token", token)
	remove(entry, "options")
}

// Write saves the file with mode 0600 in a directory of mode 0700, replacing it whole.
func (f *File) Write() error {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f.doc); err != nil {
		return fmt.Errorf("faas-cli config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("faas-cli config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("faas-cli config: %w", err)
	}
	if err := atomicfile.Write(f.path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("faas-cli config: %w", err)
	}
	return nil
}

// auths returns the value of the top-level auths key; with create, an empty list is added
// when there is none.
func (f *File) auths(create bool) *yaml.Node {
	root := f.doc.Content[0]
	if n := value(root, "auths"); n != nil {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && create {
			*n = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"} // "auths:" with nothing after
		}
		return n
	}
	if !create {
		return nil
	}
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "auths"}, n)
	return n
}

// entry returns the mapping of a gateway's login, or nil.
func (f *File) entry(gateway string) *yaml.Node {
	auths := f.auths(false)
	if auths == nil || auths.Kind != yaml.SequenceNode {
		return nil
	}
	for _, e := range auths.Content {
		e = resolve(e)
		if e.Kind == yaml.MappingNode && scalar(value(e, "gateway")) == gateway {
			return e
		}
	}
	return nil
}

// value returns the value of key in a mapping node, or nil.
func value(mapping *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return resolve(mapping.Content[i+1])
		}
	}
	return nil
}

// set gives key a string value in a mapping node, in place (keeping the key's position
// and comments) or at the end.
func set(mapping *yaml.Node, key, v string) {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			n := mapping.Content[i+1]
			// Plain style lets the encoder choose quotes where YAML needs them; a value
			// that was quoted stays quoted the same way.
			if n.Kind != yaml.ScalarNode || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				n.Style = 0
			}
			n.Kind, n.Tag, n.Value, n.Alias, n.Content = yaml.ScalarNode, "!!str", v, nil, nil
			return
		}
	}
	mapping.Content = append(mapping.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
}

func remove(mapping *yaml.Node, key string) {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			mapping.Content = append(mapping.Content[:i], mapping.Content[i+2:]...)
			return
		}
	}
}

// scalar is the string a scalar node holds; "" for null and anything else.
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// resolve follows an alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "document"
}
