package testkit

import (
	"strconv"
	"strings"
)

// ParseLogLine reads the key=value pairs of a line of the daemon's log (log/slog's text
// format), unquoting quoted values.
func ParseLogLine(line string) map[string]string {
	kv := map[string]string{}
	for {
		line = strings.TrimLeft(line, " ")
		key, rest, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return kv
		}
		var val string
		val, line = cutValue(rest)
		kv[key] = val
	}
}

// cutValue splits a value off the front of s: a quoted string up to its closing quote, or
// a word up to the next space.
func cutValue(s string) (value, rest string) {
	if !strings.HasPrefix(s, `"`) {
		if i := strings.IndexByte(s, ' '); i >= 0 {
			return s[:i], s[i:]
		}
		return s, ""
	}
	end := 1
	for end < len(s) && s[end] != '"' {
		if s[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(s) { // no closing quote: take the rest as it is
		return s[1:], ""
	}
	if v, err := strconv.Unquote(s[:end+1]); err == nil {
		return v, s[end+1:]
	}
	return s[1:end], s[end+1:]
}
