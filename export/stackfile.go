package export

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"faasd/config"
)

// stackFile writes stack.yml: the provider, the dockerfile template, and per function
// its build context, image, environment, secrets, labels, annotations, limits and
// requests.
func (e *exporter) stackFile(plans []*plan) ([]byte, error) {
	var fns []*yaml.Node
	for _, p := range plans {
		f := p.fn
		key := str(f.Name)
		key.HeadComment = p.stackComment()
		spec := []*yaml.Node{
			str("lang"), str("dockerfile"),
			str("handler"), str("./" + f.Name),
			str("image"), str(e.image(f.Name)),
		}
		spec = appendMap(spec, "environment", p.env)
		if len(f.Secrets) > 0 {
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for _, s := range f.Secrets {
				seq.Content = append(seq.Content, str(s))
			}
			spec = append(spec, str("secrets"), seq)
		}
		spec = appendMap(spec, "labels", f.Labels)
		spec = appendMap(spec, "annotations", f.Annotations)
		spec = appendMap(spec, "limits", quantities(f.Limits.Memory, f.Limits.CPU))
		spec = appendMap(spec, "requests", quantities(f.Requests.Memory, f.Requests.CPU))
		for _, bad := range badLabels(f.Labels) {
			p.note("%s: Kubernetes refuses it as a label", bad)
		}
		fns = append(fns, key, &yaml.Node{Kind: yaml.MappingNode, Content: spec})
	}
	provider := str("provider")
	gateway := str("gateway")
	gateway.HeadComment = "The cluster's OpenFaaS gateway (faas-cli's default, e.g. through\n" +
		"`kubectl port-forward -n openfaas svc/gateway 8080:8080`), not the faasd one;\n" +
		"--gateway, OPENFAAS_URL or `faasd export --gateway URL` override it."
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		str("version"), {Kind: yaml.ScalarNode, Tag: "!!float", Value: "1.0"},
		provider, mapping(str("name"), str("openfaas"), gateway, str(e.opts.Gateway)),
		str("configuration"), mapping(str("templates"), &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{
			mapping(str("name"), str("dockerfile")),
		}}),
		str("functions"), {Kind: yaml.MappingNode, Content: fns},
	}}
	doc.HeadComment = e.stackHeader()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}); err != nil {
		return nil, fmt.Errorf("write stack.yml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write stack.yml: %w", err)
	}
	return escapeEnvsubst(b.Bytes()), nil
}

func (e *exporter) stackHeader() string {
	return strings.Join([]string{
		"Written by `faasd export` from " + filepath.Base(e.cfg.Path) + ": regenerate it rather than edit it.",
		"",
		"Build, push and deploy:  faas-cli up -f stack.yml",
		"Kubernetes resources:    faas-cli generate --api=openfaas.com/v1 -f stack.yml",
		"                         faas-cli generate --api=serving.knative.dev/v1 -f stack.yml",
		"",
		"Each function's folder here is its Docker build context: its files and a Dockerfile",
		"that runs its command behind of-watchdog (the mode and command are in the image).",
		"faas-cli substitutes environment variables in this file, so dollar signs and",
		"backslashes of values are written doubled; they reach the cluster single.",
	}, "\n")
}

// stackComment is what the stack file says above a function: where its guesses are,
// and what the cluster must provide.
func (p *plan) stackComment() string {
	var lines []string
	if len(p.guesses) > 0 {
		lines = append(lines, fmt.Sprintf("%s: %s, listed in %s/Dockerfile.", p.fn.Name, plural(len(p.guesses), "guess", "guesses"), p.fn.Name))
	}
	if len(p.fn.Hosts) > 0 {
		lines = append(lines, "faasd routed the hosts "+strings.Join(p.fn.Hosts, ", ")+" to it: an ingress's work in the cluster.")
	}
	if pids := p.fn.Limits.Pids; pids != config.DefaultPids {
		lines = append(lines, fmt.Sprintf("faasd limited it to %d tasks (pids), which a stack file cannot say: %s.", pids, pidsElsewhere))
	}
	if len(p.fn.DependsOn) > 0 {
		lines = append(lines, "It needs what faasd ran as [services."+strings.Join(p.fn.DependsOn, "], [services.")+"]: see services.md.")
		if keys := localAddresses(p.env); len(keys) > 0 {
			lines = append(lines, "Its environment names this machine ("+strings.Join(keys, ", ")+"): set the address the cluster gives the service.")
		}
	}
	return strings.Join(lines, "\n")
}

// escapeEnvsubst doubles the two characters faas-cli's environment substitution eats
// ($$ → $, \\ → \), so that every value reaches the cluster as written in faasd.toml.
func escapeEnvsubst(b []byte) []byte {
	return []byte(strings.NewReplacer(`$`, `$$`, `\`, `\\`).Replace(string(b)))
}

// quantities writes a memory size and a CPU share as a stack file's limits or requests:
// Kubernetes quantities, as faas-cli passes them on.
func quantities(memory config.Memory, cpu config.CPU) map[string]string {
	r := map[string]string{}
	if !memory.IsZero() {
		r["memory"] = memory.Quantity()
	}
	if !cpu.IsZero() {
		r["cpu"] = cpu.Quantity()
	}
	return r
}

// pidsElsewhere says where a cluster bounds the tasks of a function, which OpenFaaS
// has no field for.
const pidsElsewhere = "Kubernetes bounds a pod's tasks per node (the kubelet's podPidsLimit)"

func str(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

func mapping(kv ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kv} }

// appendMap adds key: {k: v, ...} in key order, when m has entries; values stay strings
// ("1" stays "1", not 1), as the stack schema wants.
func appendMap(spec []*yaml.Node, key string, m map[string]string) []*yaml.Node {
	if len(m) == 0 {
		return spec
	}
	n := mapping()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		n.Content = append(n.Content, str(k), str(m[k]))
	}
	return append(spec, str(key), n)
}

// labelName is a Kubernetes label name and, when not empty, value.
var labelName = lazyRegexp(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// badLabels lists the labels Kubernetes would refuse, which OpenFaaS passes on to it.
func badLabels(labels map[string]string) []string {
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		prefix, name, found := strings.Cut(k, "/")
		if !found {
			prefix, name = "", k
		}
		okKey := len(name) <= 63 && labelName().MatchString(name) && (!found || len(prefix) <= 253 && labelName().MatchString(prefix))
		okValue := v == "" || len(v) <= 63 && labelName().MatchString(v)
		if !okKey || !okValue {
			bad = append(bad, fmt.Sprintf("label %s = %q", k, v))
		}
	}
	return bad
}

// plural writes "1 guess", "2 guesses".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
