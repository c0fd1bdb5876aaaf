package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// dockerfile writes the function's Dockerfile: of-watchdog from its pinned image, the
// runtime's base image, the function's files, and the watchdog's configuration: which
// mode, which command, and for an HTTP workload the port it listens on.
func (p *plan) dockerfile() []byte {
	var d dockerfileWriter
	f := p.fn
	d.comment("Dockerfile of the function %s, written by `faasd export`: regenerate it rather than edit it.", f.Name)
	if p.classic {
		d.comment("A classic function: of-watchdog in streaming mode forks its command once per request,")
		d.comment("the request body on stdin and stdout as the answer, as faasd's classic mode does.")
	} else {
		d.comment("An HTTP workload: of-watchdog in http mode starts the program once and proxies every")
		d.comment("request to it on 127.0.0.1:%d. The program still writes /tmp/.lock when it is ready,", UpstreamPort)
		d.comment("as it did under faasd; of-watchdog writes that file itself too, which does no harm.")
	}
	d.comment("of-watchdog serves OpenFaaS on port 8080 and comes from its image, pinned by tag.")
	if len(p.guesses) > 0 {
		d.comment("")
		d.comment("Guesses made by the export (check them):")
		for _, g := range p.guesses {
			d.comment("%s", wrap("- "+g, "  ", 88))
		}
	}
	d.blank()
	d.line("FROM %s AS watchdog", WatchdogImage)
	d.blank()

	workdir := p.appDir
	switch p.det.runtime {
	case runGo:
		if len(f.Build) == 0 {
			// `go run` and the like: the toolchain is the runtime.
			p.finalStage(&d, p.goImage, workdir, func() { d.copyFiles(p) })
			break
		}
		d.line("FROM %s AS build", p.goImage)
		d.line("WORKDIR %s", workdir)
		d.copyFiles(p)
		if p.goInit != "" {
			d.line("RUN go mod init %s", p.goInit)
			if p.goTidy {
				d.line("RUN go mod tidy")
			}
		}
		d.line("RUN %s", execForm(f.Build))
		d.blank()
		p.finalStage(&d, debianImage, workdir, func() {
			d.line("COPY --from=build %s/ %s/", imageRoot, imageRoot)
		})
	case runRuby:
		if len(p.gemfile) > 0 {
			d.line("FROM %s AS gems", rubyGemsImage)
			if len(p.gemHeaders) > 0 {
				d.aptInstall(p.gemHeaders)
			}
			d.line("WORKDIR %s", workdir)
			d.line("COPY %s ./", strings.Join(p.gemfile, " "))
			d.line("RUN bundle install")
			d.blank()
		}
		p.finalStage(&d, rubyImage, workdir, func() {
			if len(p.gemfile) > 0 {
				d.line("COPY --from=gems /usr/local/bundle /usr/local/bundle")
			}
			d.copyFiles(p)
		})
	case runPython:
		p.finalStage(&d, pythonImage, workdir, func() {
			if p.pyReqs {
				d.line("COPY requirements.txt ./")
				d.line("RUN pip install --no-cache-dir -r requirements.txt")
			}
			d.copyFiles(p)
		})
	case runNode:
		p.finalStage(&d, nodeImage, workdir, func() {
			if len(p.nodePkg) > 0 {
				d.line("COPY %s ./", strings.Join(p.nodePkg, " "))
				if len(p.nodePkg) > 1 {
					d.line("RUN npm ci --omit=dev")
				} else {
					d.line("RUN npm install --omit=dev")
				}
			}
			d.copyFiles(p)
		})
	default:
		p.finalStage(&d, debianImage, workdir, func() { d.copyFiles(p) })
	}
	return d.buf.Bytes()
}

// finalStage writes the stage that runs: the base image, of-watchdog, packages, the
// function's files (by files), its build step when it runs here, the user and the
// watchdog's configuration.
func (p *plan) finalStage(d *dockerfileWriter, base, workdir string, files func()) {
	d.line("FROM %s", base)
	d.line("COPY --from=watchdog /fwatchdog /usr/bin/fwatchdog")
	if pkgs := append(append([]string(nil), p.packages...), p.gemLibs...); len(pkgs) > 0 {
		d.aptInstall(pkgs)
	}
	d.line("WORKDIR %s", workdir)
	files()
	if len(p.fn.Build) > 0 && p.det.runtime != runGo {
		d.line("RUN %s", execForm(p.fn.Build))
	}
	switch user := p.fn.User; user {
	case "root":
		d.comment("faasd ran it as root, as its user = \"root\" asks.")
	case "":
		d.comment("faasd ran it as an unprivileged account of its own: the image uses nobody.")
		d.line("USER nobody")
	case "nobody":
		d.comment("faasd ran it as nobody: so does the image.")
		d.line("USER nobody")
	default:
		d.comment("faasd ran it as %s.", user)
		d.line("RUN useradd --system --no-create-home %s", user)
		d.line("USER %s", user)
	}
	mode := "streaming"
	if !p.classic {
		mode = "http"
	}
	d.line("ENV mode=%s \\", dockerQuote(mode))
	if !p.classic {
		d.line("    upstream_url=%s \\", dockerQuote(fmt.Sprintf("http://127.0.0.1:%d", UpstreamPort)))
	}
	d.line("    fprocess=%s", dockerQuote(p.fprocess()))
	d.line("EXPOSE 8080")
	d.line("HEALTHCHECK --interval=5s CMD [ -e /tmp/.lock ] || exit 1")
	d.line(`CMD ["fwatchdog"]`)
}

type dockerfileWriter struct{ buf bytes.Buffer }

func (d *dockerfileWriter) line(format string, args ...any) {
	fmt.Fprintf(&d.buf, format+"\n", args...)
}

func (d *dockerfileWriter) blank() { d.buf.WriteByte('\n') }

func (d *dockerfileWriter) aptInstall(pkgs []string) {
	d.line("RUN apt-get update && apt-get install -y --no-install-recommends %s \\", strings.Join(pkgs, " "))
	d.line("    && rm -rf /var/lib/apt/lists/*")
}

func (d *dockerfileWriter) comment(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			d.buf.WriteString("#\n")
			continue
		}
		d.buf.WriteString("# " + l + "\n")
	}
}

// copyFiles copies the function's files into the working directory, when it has any.
func (d *dockerfileWriter) copyFiles(p *plan) {
	if len(p.files) > 0 {
		d.line("COPY . .")
	}
}

// execForm writes argv as the JSON array of an exec-form RUN: no shell in between, so
// no quoting to get wrong.
func execForm(argv []string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(argv) // strings always encode
	return strings.ReplaceAll(strings.TrimSpace(b.String()), `","`, `", "`)
}

// dockerQuote writes a value for an ENV instruction: double-quoted, with the three
// characters Docker treats specially inside double quotes escaped.
func dockerQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(s) + `"`
}

// wrap breaks text into lines of at most width runes at spaces, indenting every line
// after the first.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
		case line+1+len(w) > width:
			b.WriteString("\n" + indent)
			line = len(indent)
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}
