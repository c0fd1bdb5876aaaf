package config

import (
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"128Mi", 128 << 20, ""},
		{"1Gi", 1 << 30, ""},
		{"0.5Gi", 512 << 20, ""},
		{"1G", 1_000_000_000, ""},
		{"1500k", 1_500_000, ""},
		{"134217728", 134217728, ""},
		{"1e9", 1_000_000_000, ""},
		{"2E6", 2_000_000, ""},
		{"+64Mi", 64 << 20, ""},
		{"1048576.5", 1048577, ""},       // a fraction of a byte rounds up
		{"128974848000m", 128974848, ""}, // Kubernetes allows milli-bytes
		{"1Ei", 1 << 60, ""},
		{"128", 0, `"128" is 128 bytes, below the least a process needs (1Mi): write a unit, such as "128Mi"`},
		{"128MB", 0, `"128MB" is not a memory quantity such as "128Mi" or "1G"`},
		{"Mi", 0, "is not a memory quantity"},
		{"", 0, "is not a memory quantity"},
		{"1.2.3Mi", 0, "is not a memory quantity"},
		{"12 Mi", 0, "is not a memory quantity"},
		{"-1Gi", 0, `"-1Gi": a memory limit must be positive`},
		{"0", 0, "must be positive"},
		{"1e99", 0, "is not a memory quantity"},
		{"9Ei", 0, `"9Ei" is too large`},
	} {
		got, err := ParseMemory(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMemory(%q) = %v, %v; want error %q", tc.in, got.Bytes, err, tc.err)
			}
			continue
		}
		if err != nil || got.Bytes != tc.want || got.String() != tc.in {
			t.Errorf("ParseMemory(%q) = %d %q, %v; want %d", tc.in, got.Bytes, got, err, tc.want)
		}
	}
}

func TestParseCPU(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"500m", 500, ""},
		{"0.5", 500, ""},
		{".25", 250, ""},
		{"2", 2000, ""},
		{"1.5", 1500, ""},
		{"100m", 100, ""},
		{"0.0001", 1, ""}, // below 1m rounds up
		{"1k", 1_000_000, ""},
		{"fast", 0, `"fast" is not a cpu quantity such as "500m" or "2"`},
		{"500 m", 0, "is not a cpu quantity"},
		{"0m", 0, `"0m": a cpu limit must be positive`},
		{"-2", 0, "must be positive"},
		{"1P", 1e18, ""}, // absurd, but a valid quantity
		{"1E", 0, "is too large"},
	} {
		got, err := ParseCPU(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseCPU(%q) = %v, %v; want error %q", tc.in, got.Millis, err, tc.err)
			}
			continue
		}
		if err != nil || (tc.want != 0 && got.Millis != tc.want) {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", tc.in, got.Millis, err, tc.want)
		}
	}
}

// A quantity written back is the shortest exact one, and reads as the same amount.
func TestQuantity(t *testing.T) {
	memory := func(s string) (int64, string, error) {
		m, err := ParseMemory(s)
		return m.Bytes, m.Quantity(), err
	}
	cpu := func(s string) (int64, string, error) {
		c, err := ParseCPU(s)
		return c.Millis, c.Quantity(), err
	}
	for _, tc := range []struct {
		parse    func(string) (int64, string, error)
		in, want string
	}{
		{memory, "64Mi", "64Mi"},
		{memory, "0.5Gi", "512Mi"},
		{memory, "1024Ki", "1Mi"},
		{memory, "1G", "1G"},
		{memory, "2e9", "2G"}, // also 1953125Ki: the shorter wins
		{memory, "1500k", "1500k"},
		{memory, "1048576.5", "1048577"},
		{memory, "134217728", "128Mi"},
		{memory, "1Ei", "1Ei"},
		{cpu, "0.5", "500m"},
		{cpu, "500m", "500m"},
		{cpu, ".25", "250m"},
		{cpu, "2", "2"},
		{cpu, "2000m", "2"},
		{cpu, "1.5", "1500m"},
		{cpu, "0.0001", "1m"},
		{cpu, "1k", "1000"},
	} {
		n, q, err := tc.parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := tc.parse(q)
		if q != tc.want || err != nil || back != n {
			t.Errorf("%q: Quantity() = %q (reads back as %d, %v), want %q", tc.in, q, back, err, tc.want)
		}
	}
	if (Memory{}).Quantity() != "" || (CPU{}).Quantity() != "" {
		t.Error("no limit is written as a quantity")
	}
}

func TestLimitsInTheFile(t *testing.T) {
	cfg, err := Parse("/x/f.toml", []byte(`
[functions.a]
command = ["x"]
limits = { memory = "128Mi", cpu = "500m", pids = 256 }
requests = { memory = "64Mi", cpu = 0.1 }

[functions.b]
command = ["x"]
limits = { cpu = 2 }

[functions.c]
command = ["x"]

[services.db]
command = ["mariadbd"]
limits = { memory = "1Gi" }
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := cfg.Functions["a"], cfg.Functions["b"], cfg.Functions["c"]
	if a.Limits.Memory.Bytes != 128<<20 || a.Limits.Memory.String() != "128Mi" || a.Limits.CPU.Millis != 500 || a.Limits.Pids != 256 {
		t.Errorf("a limits %+v", a.Limits)
	}
	if a.Requests.Memory.Bytes != 64<<20 || a.Requests.CPU.Millis != 100 {
		t.Errorf("a requests %+v", a.Requests)
	}
	if b.Limits.CPU.Millis != 2000 || !b.Limits.Memory.IsZero() || b.Limits.Pids != DefaultPids {
		t.Errorf("b limits %+v", b.Limits)
	}
	if c.Limits != (Limits{Pids: DefaultPids}) {
		t.Errorf("c limits %+v", c.Limits)
	}
	if db := cfg.Services["db"]; db.Limits.Memory.Bytes != 1<<30 || db.Limits.Pids != DefaultPids {
		t.Errorf("db limits %+v", db.Limits)
	}
	other := *a
	other.Limits.Memory, _ = ParseMemory("256Mi")
	if a.Equal(&other) {
		t.Error("a change of limits must roll replicas over")
	}
}

func TestEveryBadLimitIsReported(t *testing.T) {
	_, err := Parse("/x/f.toml", []byte("[functions.a]\ncommand = [\"x\"]\nlimits = { memory = \"lots\" }\n\n[functions.b]\ncommand = [\"x\"]\nlimits = { cpu = \"fast\" }\n"))
	if err == nil || !strings.Contains(err.Error(), "f.toml:3: functions.a: limits: memory:") || !strings.Contains(err.Error(), "f.toml:7: functions.b: limits: cpu:") {
		t.Errorf("error = %v, want both functions' problems", err)
	}
}

func TestLimitErrorsPointAtTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"bad memory", "[functions.a]\ncommand = [\"x\"]\n\nlimits = { memory = \"lots\" }\n",
			`/x/f.toml:4: functions.a: limits: memory: "lots" is not a memory quantity such as "128Mi" or "1G"`},
		{"unit forgotten", "[functions.a]\ncommand = [\"x\"]\nlimits = { memory = 128 }\n",
			`/x/f.toml:3: functions.a: limits: memory: "128" is 128 bytes`},
		{"bad cpu", "[functions.a]\ncommand = [\"x\"]\nlimits = { cpu = \"-1\" }\n",
			`/x/f.toml:3: functions.a: limits: cpu: "-1": a cpu limit must be positive`},
		{"bad request", "[functions.a]\ncommand = [\"x\"]\nrequests = { cpu = \"half\" }\n",
			`/x/f.toml:3: functions.a: requests: cpu: "half" is not a cpu quantity`},
		{"few pids", "[functions.a]\ncommand = [\"x\"]\nlimits = { pids = 4 }\n",
			"/x/f.toml:3: functions.a: limits: pids: 4 is below 16"},
		{"unknown limit", "[functions.a]\ncommand = [\"x\"]\nlimits = { memroy = \"1Gi\" }\n",
			"/x/f.toml:3: functions.a.limits: memroy: unknown key (did you mean memory?)"},
		{"pids is no request", "[functions.a]\ncommand = [\"x\"]\nrequests = { pids = 5 }\n",
			"/x/f.toml:3: functions.a.requests: pids: unknown key"},
		{"service", "[services.db]\ncommand = [\"x\"]\nlimits = { memory = \"1GB\" }\n",
			`/x/f.toml:3: services.db: limits: memory: "1GB" is not a memory quantity`},
		{"wrong type", "[functions.a]\ncommand = [\"x\"]\nlimits = { memory = true }\n",
			"/x/f.toml:3: functions.a.limits: want a quantity such as \"128Mi\" or \"500m\", not true"},
		{"not a table", "[functions.a]\ncommand = [\"x\"]\nlimits = \"128Mi\"\n",
			`/x/f.toml:3: functions.a.limits: want a table such as { memory = "128Mi", cpu = "500m" }, not the string "128Mi"`},
		{"pids as text", "[functions.a]\ncommand = [\"x\"]\nlimits = { pids = \"many\" }\n",
			"pids: want a number of tasks such as 512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/x/f.toml", []byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
