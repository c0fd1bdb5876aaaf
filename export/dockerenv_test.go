package export

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// The ENV reader agrees with Docker's own parser and expansion on every form an ENV
// takes, and on the Dockerfiles export writes.
func TestDockerfileEnvAgreesWithDocker(t *testing.T) {
	cases := map[string]string{
		"key=value pairs":                     "FROM a\nENV a=b c=\"d e\" f='g h'\n",
		"continuations":                       "FROM a\nENV a=1 \\\n    b=\"two words\" \\\n  # a comment inside\n  c=3\n",
		"old form":                            "FROM a\nENV GREETING hello   world\n",
		"lower case":                          "from a\nenv a=1\n",
		"expansion":                           "FROM a\nENV A=x\nENV B=$A C=${A}y D=\"$A-q\" E='$A' F=$A.$A G=\"${A}\"\n",
		"siblings see the instruction before": "FROM a\nENV A=1\nENV A=2 B=$A\n",
		"escapes":                             "FROM a\nENV P=\"a\\\"b\" Q=a\\ b R=\"x \\$y\" S=c:\\\\path T=\"back\\slash\" U=\\$HOME\n",
		"special parameters":                  "FROM a\nENV X=$5 Y=$$ Z=\"$@\" W=cost$12x V=$ U=\"a $ b\"\n",
		"last stage only":                     "FROM a AS one\nENV A=1\nFROM b\nENV B=2\n",
		"escape directive":                    "# escape=`\nFROM a\nENV A=\"x`\"y\" B=1 `\n C=c:\\path\n",
		"unset variable":                      "FROM a\nENV A=\"[$NOPE]\" B=${NOPE}\n",
	}
	for _, name := range []string{"frank-says", "guestbook", "hello-go", "stronghash", "wordcount"} {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", name, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		cases["exported "+name] = string(data)
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			want := dockerEnv(t, text)
			got, err := parseDockerfileEnv(text)
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if !maps.Equal(got, want) {
				t.Errorf("got  %q\nwant %q (Docker)\n%s", got, want, text)
			}
		})
	}
}

func TestDockerfileEnvRefusesWhatItCannotExpand(t *testing.T) {
	for _, text := range []string{"FROM a\nENV A=${B:-x}\n", "FROM a\nENV A=\"${B%x}\"\n"} {
		if _, err := parseDockerfileEnv(text); !errors.Is(err, errUnsupported) {
			t.Errorf("%q: %v, want errUnsupported", text, err)
		}
	}
}

// dockerEnv is what Docker makes of the last stage's ENV instructions: each expanded
// with the variables set before it.
func dockerEnv(t *testing.T, text string) map[string]string {
	t.Helper()
	ast, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	lex := shell.NewLex(ast.EscapeToken)
	for _, c := range stages[len(stages)-1].Commands {
		e, ok := c.(*instructions.EnvCommand)
		if !ok {
			continue
		}
		var before []string
		for k, v := range env {
			before = append(before, k+"="+v)
		}
		if err := e.Expand(func(word string) (string, error) {
			s, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(before))
			return s, err
		}); err != nil {
			t.Fatal(err)
		}
		for _, kv := range e.Env {
			env[kv.Key] = kv.Value
		}
	}
	return env
}
