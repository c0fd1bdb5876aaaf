package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// faasd export, as a user runs it on a project made with faasd new: one build context
// per template, a stack file faas-cli reads, the guesses on stderr, and an output
// directory it will not write into when it holds someone else's files.
func TestCLIExport(t *testing.T) {
	c := newCLI(t, nil)
	langs := map[string]string{
		"go":      `fprocess="env PORT=8082 http_port=8082 ./handler"`,
		"python3": `fprocess="env PORT=8082 http_port=8082 python3 -u index.py"`,
		"node":    `fprocess="env PORT=8082 http_port=8082 node index.js"`,
		"ruby":    `fprocess="env PORT=8082 http_port=8082 ruby main.rb"`,
		"bash":    `fprocess="./handler.sh"`,
	}
	for lang := range langs {
		c.ok("", "new", "hi-"+lang, "--lang", lang)
	}
	r := c.run("", "export", "-o", "deploy", "--registry", "ghcr.io/acme", "--tag", "v1")
	if r.code != 0 || !strings.Contains(r.stdout, "Wrote deploy") || !strings.Contains(r.stdout, "cd deploy && faas-cli up") {
		t.Fatalf("export: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	stack := c.read("deploy/stack.yml")
	for lang, fprocess := range langs {
		name := "hi-" + lang
		if !strings.Contains(stack, "image: ghcr.io/acme/"+name+":v1") || !strings.Contains(stack, "handler: ./"+name) {
			t.Errorf("stack.yml lacks %s's image or handler:\n%s", name, stack)
		}
		if df := c.read("deploy/" + name + "/Dockerfile"); !strings.Contains(df, fprocess) {
			t.Errorf("%s/Dockerfile does not run %s:\n%s", name, fprocess, df)
		}
		if !strings.Contains(r.stderr, "faasd export: "+name+": guess: a ") {
			t.Errorf("stderr says no guess of %s's image:\n%s", name, r.stderr)
		}
	}
	if info, err := os.Stat(filepath.Join(c.dir, "deploy/hi-bash/handler.sh")); err != nil || info.Mode().Perm()&0o111 == 0 {
		t.Errorf("deploy/hi-bash/handler.sh: %v, %v: want the script, executable", info, err)
	}
	// Again, over its own output: fine.
	c.ok("", "export", "-o", "deploy", "--filter", "hi-go")
	if _, err := os.Stat(filepath.Join(c.dir, "deploy/hi-node")); !os.IsNotExist(err) {
		t.Errorf("deploy/hi-node after exporting hi-go alone: %v, want it removed", err)
	}
	// And back: the export's stack file imports into a faasd.toml that faasd reads.
	out := c.ok("", "import", "deploy/stack.yml", "-f", "back/faasd.toml")
	if !strings.Contains(out, "Added [functions.hi-go] to "+filepath.Join(c.dir, "back/faasd.toml")) {
		t.Errorf("import: %q", out)
	}
	if toml := c.read("back/faasd.toml"); !strings.Contains(toml, `workdir = "../deploy/hi-go"`) || !strings.Contains(toml, `command = ["./handler"]`) {
		t.Errorf("back/faasd.toml:\n%s", toml)
	}
	if r := c.run("", "import", "deploy/stack.yml", "-f", "back/faasd.toml"); r.code != 0 || !strings.Contains(r.stderr, "hi-go: "+filepath.Join(c.dir, "back/faasd.toml")+" already has it") {
		t.Errorf("importing again: exit %d, stderr %q", r.code, r.stderr)
	}
	c.fail("import takes one OpenFaaS stack file", "import")
	c.writeFile("elsewhere/notes.txt", "mine")
	c.fail("not written by faasd export", "export", "-o", "elsewhere")
	c.fail(`--tag "a:b"`, "export", "-o", "other", "--tag", "a:b")
	c.fail("unexpected arguments", "export", "hi-go")
}

func (c *cli) read(rel string) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, rel))
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// Limits go to the cluster as Kubernetes quantities and come back the same; what a stack
// file cannot hold (pids) is said, and a quantity faasd cannot read stops the import.
func TestCLIExportImportLimits(t *testing.T) {
	c := newCLI(t, nil)
	c.writeFile("faasd.toml", `[functions.small]
fprocess = "cat"
limits = { memory = "64Mi", cpu = "0.5", pids = 100 }
requests = { memory = "32Mi", cpu = "100m" }
`)
	r := c.run("", "export", "-o", "deploy")
	if r.code != 0 || !strings.Contains(r.stderr, "faasd export: small: limits pids = 100 not exported: OpenFaaS has no field for it") {
		t.Fatalf("export: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	const resources = "    limits:\n      cpu: 500m\n      memory: 64Mi\n    requests:\n      cpu: 100m\n      memory: 32Mi\n"
	if stack := c.read("deploy/stack.yml"); !strings.Contains(stack, resources) {
		t.Errorf("deploy/stack.yml lacks\n%s\n%s", resources, stack)
	}
	r = c.run("", "import", "deploy/stack.yml", "-f", "back/faasd.toml")
	if r.code != 0 || !strings.Contains(r.stderr, "faasd import: small: requests kept") {
		t.Fatalf("import: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	const tables = "[functions.small.limits]\ncpu = \"500m\"\nmemory = \"64Mi\"\n[functions.small.requests]\ncpu = \"100m\"\nmemory = \"32Mi\"\n"
	if toml := c.read("back/faasd.toml"); !strings.Contains(toml, tables) {
		t.Errorf("back/faasd.toml lacks\n%s\n%s", tables, toml)
	}
	c.editFile("deploy/stack.yml", "memory: 64Mi", "memory: lots")
	c.fail(`deploy/stack.yml: functions.small: limits: memory: "lots" is not a memory quantity such as "128Mi" or "1G"`,
		"import", "deploy/stack.yml", "-f", "bad/faasd.toml")
	if _, err := os.Stat(filepath.Join(c.dir, "bad")); !os.IsNotExist(err) {
		t.Errorf("a failed import left bad/: %v", err)
	}
}
