package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// DefaultPids bounds the tasks (processes and threads) of one replica or service
// process when its limits name none: enough for any server's thread pools, not for a
// fork bomb. MinPids leaves room for a runtime's own threads.
const (
	DefaultPids = 4096
	MinPids     = 16
)

// Limits bound each replica of a function, or a service's process: the kernel's OOM
// killer acts above Memory, the scheduler throttles above CPU, fork fails above Pids.
// A zero Memory or CPU means no limit.
type Limits struct {
	Memory Memory
	CPU    CPU
	Pids   int64
}

// Requests are what a function asks for. Nothing reserves them on one host; they are
// kept and shown, as the OpenFaaS API carries them.
type Requests struct {
	Memory Memory
	CPU    CPU
}

// Memory is a size in bytes, written as a Kubernetes quantity ("128Mi", "1G").
type Memory struct {
	Bytes int64
	text  string
}

// CPU is a share of CPU time in thousandths of a CPU, written as a Kubernetes quantity
// ("500m", "0.5", "2").
type CPU struct {
	Millis int64
	text   string
}

func (m Memory) String() string { return m.text }
func (c CPU) String() string    { return c.text }

// Quantity writes the size as a Kubernetes quantity in its shortest exact form: "64Mi",
// "1G", or bytes. It is "" for no limit.
func (m Memory) Quantity() string {
	if m.IsZero() {
		return ""
	}
	best, unit := m.Bytes, ""
	for sfx, mult := range suffixes {
		n := mult.Num().Int64()
		if mult.IsInt() && n > 1 && m.Bytes%n == 0 && m.Bytes/n < best {
			best, unit = m.Bytes/n, sfx
		}
	}
	return strconv.FormatInt(best, 10) + unit
}

// Quantity writes the share as a Kubernetes quantity: whole CPUs ("2") or thousandths
// ("500m" for 0.5). It is "" for no limit.
func (c CPU) Quantity() string {
	switch {
	case c.IsZero():
		return ""
	case c.Millis%1000 == 0:
		return strconv.FormatInt(c.Millis/1000, 10)
	}
	return strconv.FormatInt(c.Millis, 10) + "m"
}

// IsZero reports whether no memory size was given.
func (m Memory) IsZero() bool { return m.Bytes == 0 }

// IsZero reports whether no CPU share was given.
func (c CPU) IsZero() bool { return c.Millis == 0 }

// minMemory catches a size written without its unit: "128" is 128 bytes, in which no
// process starts.
const minMemory = 1 << 20

// ParseMemory reads a memory quantity. Fractions of a byte round up, as Kubernetes does.
func ParseMemory(s string) (Memory, error) {
	q, err := parseQuantity(s, "memory", `"128Mi" or "1G"`)
	if err != nil {
		return Memory{}, err
	}
	n, err := ceilInt64(q, s)
	if err != nil {
		return Memory{}, err
	}
	if n < minMemory {
		return Memory{}, fmt.Errorf("%q is %d bytes, below the least a process needs (1Mi): write a unit, such as %q", s, n, s+"Mi")
	}
	return Memory{Bytes: n, text: s}, nil
}

// ParseCPU reads a CPU quantity; below a thousandth of a CPU rounds up to one.
func ParseCPU(s string) (CPU, error) {
	q, err := parseQuantity(s, "cpu", `"500m" or "2"`)
	if err != nil {
		return CPU{}, err
	}
	n, err := ceilInt64(q.Mul(q, big.NewRat(1000, 1)), s)
	if err != nil {
		return CPU{}, err
	}
	return CPU{Millis: n, text: s}, nil
}

// parseQuantity reads Kubernetes' quantity syntax: a decimal number, then a binary
// suffix (Ki Mi Gi Ti Pi Ei), a decimal one (m k M G T P E) or an exponent (e3, E-2).
// The value must be positive.
func parseQuantity(s, what, example string) (*big.Rat, error) {
	bad := fmt.Errorf("%q is not a %s quantity such as %s", s, what, example)
	num, suffix := splitQuantity(s)
	if num == "" || strings.Trim(num, "+-.") == "" {
		return nil, bad
	}
	if strings.HasPrefix(num, "-") {
		return nil, fmt.Errorf("%q: a %s limit must be positive", s, what)
	}
	if strings.HasPrefix(strings.TrimPrefix(num, "+"), ".") {
		num = strings.Replace(num, ".", "0.", 1)
	}
	v, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, bad
	}
	mult, ok := suffixes[suffix]
	if !ok {
		exp, err := strconv.Atoi(strings.TrimLeft(suffix, "eE"))
		if len(suffix) < 2 || (suffix[0] != 'e' && suffix[0] != 'E') || err != nil || exp < -18 || exp > 18 {
			return nil, bad
		}
		mult = pow(10, exp)
	}
	v.Mul(v, mult)
	if v.Sign() <= 0 {
		return nil, fmt.Errorf("%q: a %s limit must be positive", s, what)
	}
	return v, nil
}

// splitQuantity cuts the number from the suffix.
func splitQuantity(s string) (num, suffix string) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	return s[:i], s[i:]
}

var suffixes = map[string]*big.Rat{
	"": pow(10, 0), "m": pow(10, -3), "k": pow(10, 3), "M": pow(10, 6), "G": pow(10, 9),
	"T": pow(10, 12), "P": pow(10, 15), "E": pow(10, 18),
	"Ki": pow(2, 10), "Mi": pow(2, 20), "Gi": pow(2, 30), "Ti": pow(2, 40), "Pi": pow(2, 50), "Ei": pow(2, 60),
}

func pow(base, exp int) *big.Rat {
	n := new(big.Int).Exp(big.NewInt(int64(base)), big.NewInt(int64(abs(exp))), nil)
	if exp < 0 {
		return new(big.Rat).SetFrac(big.NewInt(1), n)
	}
	return new(big.Rat).SetInt(n)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func ceilInt64(q *big.Rat, s string) (int64, error) {
	n, rem := new(big.Int).QuoRem(q.Num(), q.Denom(), new(big.Int))
	if rem.Sign() > 0 {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsInt64() || n.Int64() == math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n.Int64(), nil
}

// validate checks the limits and fills in the default pids limit.
func (l *Limits) validate() error {
	switch {
	case l.Pids == 0:
		l.Pids = DefaultPids
	case l.Pids < MinPids:
		return fmt.Errorf("limits: pids: %d is below %d (every thread of the process counts)", l.Pids, MinPids)
	}
	return nil
}

// rawLimits is `limits = { memory = "128Mi", cpu = "500m", pids = 512 }`.
type rawLimits struct {
	Memory quantity `toml:"memory"`
	CPU    quantity `toml:"cpu"`
	Pids   *int64   `toml:"pids"`
}

// rawRequests is `requests = { memory = "64Mi", cpu = "100m" }`.
type rawRequests struct {
	Memory quantity `toml:"memory"`
	CPU    quantity `toml:"cpu"`
}

// UnmarshalTOML implements toml.Unmarshaler, so that an unknown key inside the table is
// a problem of its own instead of being ignored.
func (r *rawLimits) UnmarshalTOML(v any) error {
	return unmarshalResources(v, rawLimits{}, func(k string, x any) error {
		switch k {
		case "memory":
			return r.Memory.UnmarshalTOML(x)
		case "cpu":
			return r.CPU.UnmarshalTOML(x)
		}
		n, ok := x.(int64)
		if !ok {
			return fmt.Errorf("pids: want a number of tasks such as 512, not %s", describeValue(x))
		}
		r.Pids = &n
		return nil
	})
}

// UnmarshalTOML implements toml.Unmarshaler.
func (r *rawRequests) UnmarshalTOML(v any) error {
	return unmarshalResources(v, rawRequests{}, func(k string, x any) error {
		if k == "memory" {
			return r.Memory.UnmarshalTOML(x)
		}
		return r.CPU.UnmarshalTOML(x)
	})
}

// unmarshalResources checks that v is a table whose keys are those of raw's toml tags,
// and hands each value to set.
func unmarshalResources(v any, raw any, set func(key string, value any) error) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("want a table such as { memory = \"128Mi\", cpu = \"500m\" }, not %s", describeValue(v))
	}
	known := tomlTags(raw)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			msg := k + ": unknown key"
			if s := suggest(k, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return errors.New(msg)
		}
		if err := set(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

func (r *rawLimits) resolve() (Limits, error) {
	if r == nil {
		return Limits{}, nil
	}
	var l Limits
	var err error
	if l.Memory, l.CPU, err = resolveResources("limits", r.Memory, r.CPU); err != nil {
		return l, err
	}
	if r.Pids != nil {
		if *r.Pids <= 0 {
			return l, errors.New("limits: pids: must be positive")
		}
		l.Pids = *r.Pids
	}
	return l, nil
}

func (r *rawRequests) resolve() (Requests, error) {
	if r == nil {
		return Requests{}, nil
	}
	m, c, err := resolveResources("requests", r.Memory, r.CPU)
	return Requests{Memory: m, CPU: c}, err
}

// ParseResources reads the memory and CPU quantities of the API's limits or requests;
// either may be empty.
func ParseResources(memory, cpu string) (Memory, CPU, error) {
	return resolveResources("", quantity(memory), quantity(cpu))
}

func resolveResources(key string, memory, cpu quantity) (Memory, CPU, error) {
	prefix := ""
	if key != "" {
		prefix = key + ": "
	}
	var m Memory
	var c CPU
	var err error
	if memory != "" {
		if m, err = ParseMemory(string(memory)); err != nil {
			return m, c, fmt.Errorf("%smemory: %w", prefix, err)
		}
	}
	if cpu != "" {
		if c, err = ParseCPU(string(cpu)); err != nil {
			return m, c, fmt.Errorf("%scpu: %w", prefix, err)
		}
	}
	return m, c, nil
}

// quantity is a quantity in faasd.toml: a string, or a bare number ("cpu = 2").
type quantity string

// UnmarshalTOML implements toml.Unmarshaler.
func (q *quantity) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*q = quantity(v)
	case int64:
		*q = quantity(strconv.FormatInt(v, 10))
	case float64:
		*q = quantity(strconv.FormatFloat(v, 'f', -1, 64))
	default:
		return fmt.Errorf("want a quantity such as \"128Mi\" or \"500m\", not %s", describeValue(v))
	}
	return nil
}
