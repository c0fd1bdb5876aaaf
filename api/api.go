// Package api holds the wire types of the /system API: what faas-cli, the faasd CLI, the
// web UI's scripts and the daemon exchange. OpenFaaS's types first, with faasd's own fields
// beside them. It depends on nothing but the standard library, so that every client can
// import it; turning a deployment into something the daemon runs is the catalog's job.
package api

import "time"

// Namespace is the one OpenFaaS namespace there is; names, metrics and secrets carry it
// for compatibility.
const Namespace = "openfaas-fn"

// UIHeader is the header the web UI sends with every /system call. A page of another
// origin cannot send it without a CORS preflight, which the gateway never grants, so the
// gateway requires it of every /system request that a browser makes.
const UIHeader = "X-Faasd-Ui"

// Deployment is the body of POST and PUT /system/functions: OpenFaaS's FunctionDeployment,
// plus faasd's own fields for HTTP workloads, which stock clients never send.
type Deployment struct {
	Service                string            `json:"service"`
	Image                  string            `json:"image"`
	Namespace              string            `json:"namespace,omitempty"`
	EnvProcess             string            `json:"envProcess,omitempty"`
	EnvVars                map[string]string `json:"envVars,omitempty"`
	Constraints            []string          `json:"constraints,omitempty"`
	Secrets                []string          `json:"secrets,omitempty"`
	Labels                 map[string]string `json:"labels,omitempty"`
	Annotations            map[string]string `json:"annotations,omitempty"`
	Limits                 *Resources        `json:"limits,omitempty"`
	Requests               *Resources        `json:"requests,omitempty"`
	ReadOnlyRootFilesystem bool              `json:"readOnlyRootFilesystem,omitempty"`

	// faasd's extension: an HTTP workload run on the host.
	Command          []string `json:"command,omitempty"`
	Workdir          string   `json:"workdir,omitempty"`
	User             string   `json:"user,omitempty"`
	LockFile         string   `json:"lockFile,omitempty"`
	Hosts            []string `json:"hosts,omitempty"`
	Timeout          string   `json:"timeout,omitempty"`
	ReadinessTimeout string   `json:"readinessTimeout,omitempty"`
	HealthInterval   string   `json:"healthInterval,omitempty"`
	DrainTimeout     string   `json:"drainTimeout,omitempty"`
	StopGrace        string   `json:"stopGrace,omitempty"`
}

// Resources are limits or requests as Kubernetes quantities ("128Mi", "500m").
type Resources struct {
	Memory string `json:"memory,omitempty"`
	CPU    string `json:"cpu,omitempty"`

	Pids int64 `json:"pids,omitempty"` // faasd's extension, limits only: tasks per replica
}

// FunctionStatus is OpenFaaS's FunctionStatus plus faasd's own fields: what the API
// answers for a function.
type FunctionStatus struct {
	Name                   string            `json:"name"`
	Image                  string            `json:"image"`
	Namespace              string            `json:"namespace,omitempty"`
	EnvProcess             string            `json:"envProcess,omitempty"`
	EnvVars                map[string]string `json:"envVars,omitempty"`
	Constraints            []string          `json:"constraints,omitempty"`
	Secrets                []string          `json:"secrets,omitempty"`
	Labels                 map[string]string `json:"labels"`      // always an object
	Annotations            map[string]string `json:"annotations"` // always an object
	Limits                 *Resources        `json:"limits,omitempty"`
	Requests               *Resources        `json:"requests,omitempty"`
	ReadOnlyRootFilesystem bool              `json:"readOnlyRootFilesystem,omitempty"`
	InvocationCount        float64           `json:"invocationCount,omitempty"`
	Replicas               uint64            `json:"replicas,omitempty"`
	AvailableReplicas      uint64            `json:"availableReplicas,omitempty"`
	CreatedAt              time.Time         `json:"createdAt"`

	// Usage is OpenFaaS's field, summed over the replicas; absent until the daemon
	// measures it.
	Usage *Usage `json:"usage,omitempty"`

	Command    []string   `json:"command,omitempty"`
	Workdir    string     `json:"workdir,omitempty"`
	User       string     `json:"user,omitempty"`
	Source     string     `json:"source"`
	Status     string     `json:"status,omitempty"`
	Starting   int        `json:"startingReplicas,omitempty"`
	Failures   int        `json:"failures,omitempty"`
	LastError  string     `json:"lastError,omitempty"`
	ColdStarts uint64     `json:"coldStarts,omitempty"` // requests that waited for a replica, since the daemon started
	Instances  []Instance `json:"instances,omitempty"`  // the replicas, oldest first
	OOMKills   uint64     `json:"oomKills,omitempty"`   // replicas the kernel's OOM killer ended, since the daemon started
}

// Usage is what a function or one replica uses, in OpenFaaS's terms: CPU in millicores,
// memory in bytes.
type Usage struct {
	CPU              float64 `json:"cpu"`
	TotalMemoryBytes float64 `json:"totalMemoryBytes"`
}

// Instance is one replica of a function. ID is what log lines carry as their instance.
type Instance struct {
	ID        string    `json:"id"`
	PID       int       `json:"pid,omitempty"` // 0 until the process has started
	Port      int       `json:"port"`
	State     string    `json:"state"` // starting, ready, unhealthy, leaving
	StartedAt time.Time `json:"startedAt"`
	InFlight  int64     `json:"inFlight"`
	// Optional, present once the daemon reports them.
	Restarts *int   `json:"restarts,omitempty"`
	Usage    *Usage `json:"usage,omitempty"`
}

// History is the answer of GET /system/history for one function: what the autoscaler
// saw at each tick and every change of the replica count, oldest first.
type History struct {
	Name     string        `json:"name"`
	Interval float64       `json:"interval"` // seconds between two samples
	Seq      uint64        `json:"seq"`      // the last tick covered; pass it as since to get what is newer
	Samples  []Sample      `json:"samples"`
	Changes  []ScaleChange `json:"changes"`
}

// Sample is one tick of the autoscaler for one function.
type Sample struct {
	Seq        uint64  `json:"seq"`
	Time       int64   `json:"time"`     // Unix milliseconds
	RPS        float64 `json:"rps"`      // requests per second, smoothed over two ticks
	InFlight   int     `json:"inFlight"` // requests in flight, those waiting for a replica included
	Desired    int     `json:"desired"`
	Ready      int     `json:"ready"`
	P50        float64 `json:"p50,omitempty"` // seconds, of the requests that finished during the tick
	P99        float64 `json:"p99,omitempty"`
	ColdStarts uint64  `json:"coldStarts,omitempty"` // requests that waited for a replica during the tick
}

// ScaleChange is one change of a function's replica count. Reason is load, min,
// stabilized or idle when the autoscaler made it; external for a scale through the API
// or the CLI; wake when a request woke the function from zero.
type ScaleChange struct {
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"` // Unix milliseconds
	From   int    `json:"from"`
	To     int    `json:"to"`
	Reason string `json:"reason"`
}

// LogMessage is one NDJSON line of GET /system/logs.
type LogMessage struct {
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Instance  string    `json:"instance"`
	Timestamp time.Time `json:"timestamp"`
	Text      string    `json:"text"`
}

// Secret is the body of /system/secrets requests and the entries of its list. Values are
// never listed.
type Secret struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Value     string `json:"value,omitempty"`
	RawValue  []byte `json:"rawValue,omitempty"` // base64 in JSON
}

// Info is the answer of GET /system/info: OpenFaaS's GatewayInfo, plus faasd's own
// fields, which stock clients ignore.
type Info struct {
	Provider Provider `json:"provider"`
	Version  Version  `json:"version"`
	Arch     string   `json:"arch"`

	Queue *QueueInfo `json:"queue,omitempty"` // asynchronous invocations; absent when off
	// Config is the daemon's configuration file; absent from a daemon without one.
	Config *ConfigInfo `json:"config,omitempty"`
	// Containment is how replicas and services are contained; absent from a daemon
	// that does not say.
	Containment *Containment `json:"containment,omitempty"`
}

// ConfigInfo is the daemon's configuration file: which one, when what runs was read from
// it, and, until the file is read successfully again, the last reload the daemon refused.
type ConfigInfo struct {
	File     string    `json:"file"`
	LoadedAt time.Time `json:"loadedAt"`
	// ReloadError is set while the file on disk is not what runs: an edit was refused, and
	// the configuration loaded at LoadedAt runs on.
	ReloadError *ReloadError `json:"reloadError,omitempty"`
}

// ReloadError is a reload of the configuration file that the daemon refused.
type ReloadError struct {
	Error string    `json:"error"` // every problem of the file, one a line, with its line number
	File  string    `json:"file"`
	Time  time.Time `json:"time"`
}

// Containment says whether each replica and service process runs in a cgroup of its
// own, which kills whatever it started with it, enforces limits and measures usage.
type Containment struct {
	// Cgroups is "v1" or "v2"; "none" where no hierarchy is writable, and processes
	// run in process groups: a process that calls setsid outlives its replica, limits
	// are not enforced and usage is not measured.
	Cgroups        string   `json:"cgroups"`
	Groups         []string `json:"groups,omitempty"`      // the daemon's groups, one per hierarchy
	Controllers    []string `json:"controllers,omitempty"` // in use
	LimitsEnforced bool     `json:"limitsEnforced"`        // memory, CPU and pids limits
	Warning        string   `json:"warning,omitempty"`     // what is missing, and why
}

// QueueInfo is the state of the queue of asynchronous invocations.
type QueueInfo struct {
	Engine string `json:"engine"` // "nats-embedded" or "nats" (an external server)
	// State is "idle" until the first asynchronous call starts the engine, then
	// "running", or "error" with Error saying why.
	State       string          `json:"state"`
	Error       string          `json:"error,omitempty"`
	Messages    uint64          `json:"messages"` // calls waiting or running
	Bytes       uint64          `json:"bytes"`
	MaxMessages int64           `json:"maxMessages"`
	MaxBytes    int64           `json:"maxBytes"`
	Callbacks   uint64          `json:"callbacks"` // results waiting for their callback
	Failed      uint64          `json:"failed"`    // failures kept for GET /system/queue/failed
	Functions   []QueueFunction `json:"functions,omitempty"`
}

// QueueFunction is one function's share of the queue.
type QueueFunction struct {
	Name          string  `json:"name"`
	Depth         uint64  `json:"depth"` // calls waiting or running
	OldestSeconds float64 `json:"oldestSeconds,omitempty"`
}

// QueueFailure is a call, or its callback, that failed for good.
type QueueFailure struct {
	CallID      string    `json:"callId"`
	Function    string    `json:"function"`
	Stage       string    `json:"stage"` // "function" or "callback"
	Status      int       `json:"status,omitempty"`
	Error       string    `json:"error"`
	Attempts    int       `json:"attempts"`
	CallbackURL string    `json:"callbackUrl,omitempty"`
	EnqueuedAt  time.Time `json:"enqueuedAt"`
	FailedAt    time.Time `json:"failedAt"`
}

// Provider names the implementation behind the gateway.
type Provider struct {
	Provider      string  `json:"provider"`
	Orchestration string  `json:"orchestration"`
	Version       Version `json:"version"`
}

// Version is a release and the commit it was built from.
type Version struct {
	Release string `json:"release"`
	SHA     string `json:"sha"`
}
