package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// probe finds the strongest isolation this daemon may give replicas by starting `true`
// once in it, and keeps it for the launches to come.
func (st *forkStarter) probe(dir string) (isolation, error) {
	candidates := []isolation{isolateUserNS}
	if os.Geteuid() == 0 {
		candidates = []isolation{isolateMountNS}
	}
	procs := newProcesses(st)
	var errs []error
	for _, iso := range candidates {
		st.iso = iso
		out := &lineBuffer{max: 4096}
		l := &launch{argv: []string{"true"}, dir: "/", env: []string{"PATH=" + defaultPath}, tmp: dir, output: out, log: discard}
		if err := procs.run(context.Background(), l); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %s", iso, err, out))
			continue
		}
		return iso, nil
	}
	st.iso = isolateTmpdir
	return isolateTmpdir, errors.Join(errs...)
}
