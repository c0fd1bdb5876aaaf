package supervisor

import (
	"maps"
	"os"
	"slices"
)

const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// environ is the whole environment of a program we start, replica or service. Nothing
// leaks from the daemon's own environment but PATH and the locale. In order: PATH, the
// defaults, the locale, the account (USER, LOGNAME), the user's env, which may override
// what came before, and last the fixed values, which the user's env must not override
// (PORT, DATA_DIR, ...): when a name repeats, the last one counts.
func environ(c credentials, defaults []string, user map[string]string, fixed ...string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := append([]string{"PATH=" + path}, defaults...)
	for _, k := range []string{"LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if c.set {
		env = append(env, "USER="+c.name, "LOGNAME="+c.name)
	}
	for _, k := range slices.Sorted(maps.Keys(user)) {
		env = append(env, k+"="+user[k])
	}
	return append(env, fixed...)
}
