package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"faasd/internal/atomicfile"
	"faasd/systemd"
)

// installCmd makes the daemon a systemd service: the binary in /usr/local/bin, the unit,
// a configuration if there is none, the state directory, then systemd told to start it.
// Run again with a newer binary, it upgrades: the binary and unit are replaced and the
// service restarted, the configuration and state kept.
type installCmd struct {
	print bool
	root  string
}

func (c *installCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.print, "print", false, "print the unit and change nothing")
	fs.StringVar(&c.root, "root", "", "write below this directory instead of / (for packages), and leave systemd alone")
}

func (c *installCmd) run(ctx context.Context, env *environment, _ []string) error {
	unit := systemd.Unit(systemd.BinaryPath, systemd.ConfigPath)
	if c.print {
		_, err := io.WriteString(env.stdout, unit)
		return err
	}
	at := func(p string) string { return filepath.Join(c.root, p) }
	say := func(format string, a ...any) { fmt.Fprintf(env.stdout, format+"\n", a...) }

	if err := installBinary(at(systemd.BinaryPath)); err != nil {
		return err
	}
	say("installed %s", at(systemd.BinaryPath))
	if err := writeFileAtomic(at(systemd.UnitPath), []byte(unit), 0o644); err != nil {
		return fmt.Errorf("write unit: %w", err)
	}
	say("wrote %s", at(systemd.UnitPath))
	if err := os.MkdirAll(at(systemd.ConfigDir), 0o755); err != nil {
		return fmt.Errorf("config dir: %w", err)
	}
	switch err := writeNew(at(systemd.ConfigPath), []byte(systemd.DefaultConfig), 0o644); {
	case errors.Is(err, fs.ErrExist):
		say("kept %s", at(systemd.ConfigPath))
	case err != nil:
		return fmt.Errorf("write config: %w", err)
	default:
		say("wrote %s", at(systemd.ConfigPath))
	}
	if err := os.MkdirAll(at(systemd.StateDir), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	switch {
	case c.root != "" && filepath.Clean(c.root) != "/":
		say("systemd left alone (--root); on the machine: systemctl daemon-reload && systemctl enable --now %s", systemd.UnitName)
		return nil
	case !systemdRuns(c.root):
		say("systemd does not run here: start the daemon with %s serve -f %s", systemd.BinaryPath, systemd.ConfigPath)
		return nil
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", systemd.UnitName}, {"restart", systemd.UnitName}} {
		if err := systemctl(ctx, env, args...); err != nil {
			return err
		}
	}
	say("faasd runs: systemctl status faasd; logs: journalctl -u faasd")
	return nil
}

// systemdRuns reports whether systemd is the init system here (sd_booted(3)) and the
// install is for this machine.
func systemdRuns(root string) bool {
	if root != "" && filepath.Clean(root) != "/" {
		return false
	}
	if fi, err := os.Stat("/run/systemd/system"); err != nil || !fi.IsDir() {
		return false
	}
	_, err := exec.LookPath("systemctl")
	return err == nil
}

func systemctl(ctx context.Context, env *environment, args ...string) error {
	fmt.Fprintf(env.stdout, "systemctl %s\n", joinArgs(args))
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	cmd.Stdout, cmd.Stderr = env.stdout, env.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl %s: %w", joinArgs(args), err)
	}
	return nil
}

func joinArgs(args []string) string { return strings.Join(args, " ") }

// installBinary copies the running binary to dst, unless it is dst.
func installBinary(dst string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the faasd binary: %w", err)
	}
	src, err := os.Stat(exe)
	if err != nil {
		return fmt.Errorf("find the faasd binary: %w", err)
	}
	if cur, err := os.Stat(dst); err == nil && os.SameFile(src, cur) {
		return nil
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return fmt.Errorf("read the faasd binary: %w", err)
	}
	if err := writeFileAtomic(dst, data, 0o755); err != nil {
		return fmt.Errorf("install binary: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path, so that a running binary or a reading systemd never
// sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}

// writeNew creates path with data, or fails with fs.ErrExist.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// uninstallCmd reverses install. The configuration and the state (deployed functions,
// secrets, credentials, services' data) stay unless --purge.
type uninstallCmd struct {
	purge bool
	root  string
}

func (c *uninstallCmd) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.purge, "purge", false, "also remove "+systemd.ConfigDir+" and "+systemd.StateDir)
	fs.StringVar(&c.root, "root", "", "remove below this directory instead of /, and leave systemd alone")
}

func (c *uninstallCmd) run(ctx context.Context, env *environment, _ []string) error {
	at := func(p string) string { return filepath.Join(c.root, p) }
	say := func(format string, a ...any) { fmt.Fprintf(env.stdout, format+"\n", a...) }
	runs := systemdRuns(c.root)
	if runs {
		// A unit that is not loaded any more is not an error: uninstall finishes the job.
		if err := systemctl(ctx, env, "disable", "--now", systemd.UnitName); err != nil {
			fmt.Fprintln(env.stderr, "faasd:", err)
		}
	}
	for _, p := range []string{systemd.UnitPath, systemd.BinaryPath} {
		switch err := os.Remove(at(p)); {
		case err == nil:
			say("removed %s", at(p))
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	if runs {
		if err := systemctl(ctx, env, "daemon-reload"); err != nil {
			return err
		}
	}
	for _, dir := range []string{systemd.ConfigDir, systemd.StateDir} {
		if _, err := os.Stat(at(dir)); err != nil {
			continue
		}
		if !c.purge {
			say("kept %s (faasd uninstall --purge removes it)", at(dir))
			continue
		}
		if err := os.RemoveAll(at(dir)); err != nil {
			return err
		}
		say("removed %s", at(dir))
	}
	return nil
}
