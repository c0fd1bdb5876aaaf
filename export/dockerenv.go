package export

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// Reading a Dockerfile's ENV is the one thing import needs of Dockerfiles. Docker's own
// parser does it (the tests check this reader against it), but it brings protobuf along,
// which made every start of the faasd binary, a classic replica's watchdog included,
// about a millisecond slower. This reader covers what ENV lines hold: continuation lines,
// comments, the escape directive, both ENV forms, quotes, escapes, and $VAR and ${VAR}
// of the stage's earlier ENV; other expansions are refused rather than guessed.

// errUnsupported is an ENV value this reader does not expand.
var errUnsupported = errors.New("an expansion other than $VAR or ${VAR}")

// dockerfileEnv is the environment the last stage of a Dockerfile sets; nil when there
// is no Dockerfile.
func dockerfileEnv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	env, err := parseDockerfileEnv(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

func parseDockerfileEnv(text string) (map[string]string, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	escape := '\\'
	// Parser directives come first, before any instruction, comment or blank line.
	for _, l := range lines {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(l), "#"), "=")
		if !strings.HasPrefix(strings.TrimSpace(l), "#") || !ok {
			break
		}
		if strings.EqualFold(strings.TrimSpace(k), "escape") {
			if v = strings.TrimSpace(v); v == "`" {
				escape = '`'
			}
			break
		}
	}
	env := map[string]string{}
	var logical strings.Builder
	inInstruction := false
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" && !inInstruction {
			continue // comments go even inside a continued instruction
		}
		right := strings.TrimRightFunc(l, unicode.IsSpace)
		if strings.HasSuffix(right, string(escape)) && i < len(lines)-1 {
			logical.WriteString(strings.TrimSuffix(right, string(escape)))
			inInstruction = true
			continue
		}
		logical.WriteString(l)
		inInstruction = false
		line := strings.TrimSpace(logical.String())
		logical.Reset()
		instr, args, _ := strings.Cut(line, " ")
		switch strings.ToLower(instr) {
		case "from":
			env = map[string]string{}
		case "env":
			if err := readEnv(strings.TrimSpace(args), escape, env); err != nil {
				return nil, fmt.Errorf("line %d: ENV: %w", i+1, err)
			}
		}
	}
	return env, nil
}

// readEnv applies one ENV instruction's arguments to env: `key=value ...`, or the old
// `key value with spaces`.
func readEnv(args string, escape rune, env map[string]string) error {
	words := splitWords(args, escape)
	if len(words) == 0 {
		return errors.New("no variable")
	}
	if !strings.Contains(words[0], "=") {
		key, rest, _ := strings.Cut(args, " ")
		v, err := expandWord(strings.TrimSpace(rest), escape, env)
		if err != nil {
			return err
		}
		env[key] = v
		return nil
	}
	// Every value sees the variables set before this instruction, not its siblings.
	before := make(map[string]string, len(env))
	for k, v := range env {
		before[k] = v
	}
	for _, w := range words {
		key, raw, ok := strings.Cut(w, "=")
		if !ok || key == "" {
			return fmt.Errorf("%q is not key=value", w)
		}
		v, err := expandWord(raw, escape, before)
		if err != nil {
			return err
		}
		env[key] = v
	}
	return nil
}

// splitWords splits arguments at blanks outside quotes, keeping quotes and escapes.
func splitWords(s string, escape rune) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	escaped, inWord := false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == escape:
			escaped = true
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		}
		cur.WriteRune(r)
		inWord = true
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// expandWord removes a word's quotes and escapes and expands $VAR and ${VAR}, as a
// shell does and Docker does for ENV.
func expandWord(w string, escape rune, env map[string]string) (string, error) {
	var b strings.Builder
	rs := []rune(w)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\'':
			end := indexRune(rs, '\'', i+1)
			if end < 0 {
				return "", errors.New("unterminated single quote")
			}
			b.WriteString(string(rs[i+1 : end]))
			i = end
		case r == '"':
			for i++; ; i++ {
				if i >= len(rs) {
					return "", errors.New("unterminated double quote")
				}
				c := rs[i]
				if c == '"' {
					break
				}
				if c == escape && i+1 < len(rs) && strings.ContainsRune(`"$`+string(escape), rs[i+1]) {
					i++
					b.WriteRune(rs[i])
					continue
				}
				if c == '$' {
					n, err := expandVar(rs, i, env, &b)
					if err != nil {
						return "", err
					}
					i = n
					continue
				}
				b.WriteRune(c)
			}
		case r == escape:
			if i++; i < len(rs) { // a trailing escape goes
				b.WriteRune(rs[i])
			}
		case r == '$':
			n, err := expandVar(rs, i, env, &b)
			if err != nil {
				return "", err
			}
			i = n
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// expandVar writes the value of the variable that starts at rs[i] ('$') and returns the
// index of its last rune.
func expandVar(rs []rune, i int, env map[string]string, b *strings.Builder) (int, error) {
	name := func(from int) int {
		j := from
		for j < len(rs) && (rs[j] == '_' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
			j++
		}
		return j
	}
	if i+1 < len(rs) && rs[i+1] == '{' {
		end := name(i + 2)
		if end >= len(rs) || rs[end] != '}' || end == i+2 {
			return 0, errUnsupported
		}
		b.WriteString(env[string(rs[i+2:end])])
		return end, nil
	}
	if i+1 < len(rs) && strings.ContainsRune("@*#?-$!0123456789", rs[i+1]) {
		// Positional and special parameters: never set in a Dockerfile, so empty. A
		// positional one is all its digits; a special one is one character.
		end := i + 2
		for unicode.IsDigit(rs[i+1]) && end < len(rs) && unicode.IsDigit(rs[end]) {
			end++
		}
		return end - 1, nil
	}
	end := name(i + 1)
	if end == i+1 {
		b.WriteRune('$') // a lone $ stays
		return i, nil
	}
	b.WriteString(env[string(rs[i+1:end])])
	return end - 1, nil
}

func indexRune(rs []rune, r rune, from int) int {
	for j := from; j < len(rs); j++ {
		if rs[j] == r {
			return j
		}
	}
	return -1
}
