package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"faasd/api"
	"faasd/client"
)

// listCmd prints the functions like `faas-cli list`.
type listCmd struct {
	client  clientFlags
	verbose bool
	json    bool
}

func (c *listCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.BoolVar(&c.verbose, "v", false, "verbose: add the command, ready replicas, status and source")
	fs.BoolVar(&c.verbose, "verbose", false, "same as -v")
	fs.BoolVar(&c.json, "json", false, "print the gateway's JSON")
}

func (c *listCmd) run(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: list takes no arguments, got %q", errUsage, args)
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	if c.json {
		var raw json.RawMessage
		if _, err := gw.Call(ctx, http.MethodGet, "/system/functions", nil, &raw); err != nil {
			return err
		}
		return printJSON(env, raw)
	}
	fns, err := gw.Functions(ctx)
	if err != nil {
		return err
	}
	warnRefusedReload(ctx, env, gw)
	slices.SortFunc(fns, func(a, b api.FunctionStatus) int { return strings.Compare(a.Name, b.Name) })
	w := tabwriter.NewWriter(env.stdout, 0, 8, 2, ' ', 0)
	if c.verbose {
		fmt.Fprintln(w, "Function\tCommand\tInvocations\tReplicas\tReady\tStatus\tSource\tLast error")
		for _, f := range fns {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", f.Name, commandOf(f), int64(f.InvocationCount), f.Replicas, f.AvailableReplicas, cmp.Or(f.Status, "-"), cmp.Or(f.Source, "-"), failure(f))
		}
	} else {
		fmt.Fprintln(w, "Function\tInvocations\tReplicas")
		for _, f := range fns {
			fmt.Fprintf(w, "%s\t%d\t%d\n", f.Name, int64(f.InvocationCount), f.Replicas)
		}
	}
	return w.Flush()
}

// failure is why a failing function fails, on one line; "-" for any other.
func failure(f api.FunctionStatus) string {
	if f.Status != "failing" || f.LastError == "" {
		return "-"
	}
	return strings.Join(strings.Fields(f.LastError), " ")
}

// warnRefusedReload tells, on standard error, that the daemon refused to reload its
// configuration file, so that what runs is not what the file says. A gateway that cannot
// tell (an OpenFaaS one, an older faasd) says nothing.
func warnRefusedReload(ctx context.Context, env *environment, gw *client.Gateway) {
	info, err := gw.Info(ctx)
	if err != nil || info.Config == nil || info.Config.ReloadError == nil {
		return
	}
	cfg, refused := info.Config, info.Config.ReloadError
	fmt.Fprintf(env.stderr, "Warning: the daemon refused to reload %s at %s and runs it as loaded at %s:\n",
		refused.File, refused.Time.Local().Format(time.DateTime), cfg.LoadedAt.Local().Format(time.DateTime))
	for line := range strings.Lines(strings.TrimRight(refused.Error, "\n")) {
		fmt.Fprintf(env.stderr, "  %s", line)
	}
	fmt.Fprintln(env.stderr)
}

func printJSON(env *environment, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.stdout, "%s\n", out)
	return err
}

// commandOf is what a function runs, as a user would type it; the image when that is all
// there is (functions deployed by stock OpenFaaS clients report one).
func commandOf(f api.FunctionStatus) string {
	switch {
	case len(f.Command) > 0:
		return strings.Join(f.Command, " ")
	case f.EnvProcess != "":
		return f.EnvProcess
	case f.Image != "":
		return f.Image
	}
	return "-"
}

// describeCmd prints one function's status, like `faas-cli describe`.
type describeCmd struct {
	client clientFlags
	json   bool
}

func (c *describeCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.BoolVar(&c.json, "json", false, "print the gateway's JSON")
}

func (c *describeCmd) run(ctx context.Context, env *environment, args []string) error {
	name, err := oneName("describe", args)
	if err != nil {
		return err
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	if c.json {
		var raw json.RawMessage
		if _, err := gw.Call(ctx, http.MethodGet, client.FunctionPath(name), nil, &raw); err != nil {
			return notFound(err, "function", name)
		}
		return printJSON(env, raw)
	}
	f, err := gw.Function(ctx, name)
	if err != nil {
		return notFound(err, "function", name)
	}
	warnRefusedReload(ctx, env, gw)
	ready := "Not Ready"
	if f.AvailableReplicas > 0 {
		ready = "Ready"
	}
	w := tabwriter.NewWriter(env.stdout, 0, 8, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	row("Name", f.Name)
	row("Status", ready+statusDetail(f))
	row("Replicas", fmt.Sprintf("%d desired, %d ready, %d starting", f.Replicas, f.AvailableReplicas, f.Starting))
	row("Invocations", strconv.FormatInt(int64(f.InvocationCount), 10))
	if f.Limits != nil {
		row("Limits", limitsText(*f.Limits))
	}
	if u := f.Usage; u != nil {
		row("Usage", fmt.Sprintf("%.0fm CPU, %.1f MiB memory", u.CPU, u.TotalMemoryBytes/(1<<20)))
	}
	if f.OOMKills > 0 {
		row("Out of memory", fmt.Sprintf("%d replicas killed", f.OOMKills))
	}
	if f.Source != "" {
		row("Source", f.Source)
	}
	switch {
	case len(f.Command) > 0:
		row("Command", strings.Join(f.Command, " "))
	case f.EnvProcess != "":
		row("Function process", f.EnvProcess)
	}
	if f.Workdir != "" {
		row("Workdir", f.Workdir)
	}
	if f.Image != "" {
		row("Image", f.Image)
	}
	if f.User != "" {
		row("User", f.User)
	}
	row("URL", gw.URL+"/function/"+f.Name)
	row("Labels", pairs(f.Labels))
	row("Annotations", pairs(f.Annotations))
	if len(f.EnvVars) > 0 {
		row("Environment", pairs(f.EnvVars))
	}
	if len(f.Secrets) > 0 {
		row("Secrets", strings.Join(f.Secrets, ", "))
	}
	if f.LastError != "" {
		row("Last error", f.LastError)
	}
	return w.Flush()
}

// limitsText is a function's limits as faasd.toml writes them.
func limitsText(r api.Resources) string {
	var parts []string
	if r.Memory != "" {
		parts = append(parts, "memory "+r.Memory)
	}
	if r.CPU != "" {
		parts = append(parts, "cpu "+r.CPU)
	}
	if r.Pids > 0 {
		parts = append(parts, "pids "+strconv.FormatInt(r.Pids, 10))
	}
	return strings.Join(parts, ", ")
}

func statusDetail(f api.FunctionStatus) string {
	if f.Status == "" || f.Status == "ready" && f.Failures == 0 {
		return ""
	}
	s := " (" + f.Status
	if f.Failures > 0 {
		s += fmt.Sprintf(", %d failures in a row", f.Failures)
	}
	return s + ")"
}

func pairs(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString("\n\t")
		}
		fmt.Fprintf(&b, "%s=%s", k, m[k])
	}
	return b.String()
}

// oneName checks that a command got exactly one function name.
func oneName(cmd string, args []string) (string, error) {
	if len(args) != 1 || args[0] == "" {
		return "", fmt.Errorf("%w: %s takes one function name, got %d arguments", errUsage, cmd, len(args))
	}
	return args[0], nil
}

// scaleCmd sets a function's desired replica count.
type scaleCmd struct {
	client   clientFlags
	replicas int
}

func (c *scaleCmd) flags(fs *flag.FlagSet) {
	c.client.register(fs)
	fs.IntVar(&c.replicas, "replicas", -1, "desired replica count (0 puts the function to sleep until a request wakes it)")
	fs.IntVar(&c.replicas, "r", -1, "same as --replicas")
}

func (c *scaleCmd) run(ctx context.Context, env *environment, args []string) error {
	name, err := oneName("scale", args)
	if err != nil {
		return err
	}
	if c.replicas < 0 {
		return fmt.Errorf("%w: scale needs --replicas N", errUsage)
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	if err := gw.Scale(ctx, name, c.replicas); err != nil {
		return notFound(err, "function", name)
	}
	fmt.Fprintf(env.stdout, "Scaled %s to %d replicas\n", name, c.replicas)
	return nil
}

// removeCmd removes a deployed function.
type removeCmd struct {
	client clientFlags
}

func (c *removeCmd) flags(fs *flag.FlagSet) { c.client.register(fs) }

func (c *removeCmd) run(ctx context.Context, env *environment, args []string) error {
	name, err := oneName("remove", args)
	if err != nil {
		return err
	}
	gw, err := c.client.connect(env)
	if err != nil {
		return err
	}
	err = gw.Delete(ctx, name)
	if client.IsStatus(err, http.StatusConflict) {
		return fmt.Errorf("cannot remove %s: %s", name, strings.TrimPrefix(err.Error(), "409: "))
	}
	if err != nil {
		return notFound(err, "function", name)
	}
	fmt.Fprintf(env.stdout, "Removed %s\n", name)
	return nil
}
