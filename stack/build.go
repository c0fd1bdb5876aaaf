package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"faasd/config"
)

// BuildError is a build command that failed: which function, which command, how.
type BuildError struct {
	Function string
	Command  []string
	ExitCode int   // -1 when the command did not run or was killed
	Err      error // what went wrong when ExitCode is -1
}

func (e *BuildError) Error() string {
	cmd := strings.Join(e.Command, " ")
	if e.ExitCode >= 0 {
		return fmt.Sprintf("build %s: `%s` exited with status %d", e.Function, cmd, e.ExitCode)
	}
	return fmt.Sprintf("build %s: `%s`: %v", e.Function, cmd, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// Build runs a function's build command in its workdir, with the caller's environment,
// writing the command's output to out as it comes. A function without one builds
// trivially. A relative program ("./build.sh") resolves against the workdir, as the
// daemon resolves a function's command.
func Build(ctx context.Context, f *config.Function, out io.Writer) error {
	if len(f.Build) == 0 {
		return nil
	}
	prog := f.Build[0]
	if strings.Contains(prog, "/") && !filepath.IsAbs(prog) {
		prog = filepath.Join(f.Workdir, prog)
	}
	cmd := exec.CommandContext(ctx, prog, f.Build[1:]...)
	cmd.Dir = f.Workdir
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	berr := &BuildError{Function: f.Name, Command: f.Build, ExitCode: -1, Err: err}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() >= 0 {
		berr.ExitCode = exit.ExitCode()
	}
	if ctx.Err() != nil {
		berr.Err = ctx.Err()
	}
	return berr
}
