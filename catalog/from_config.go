package catalog

import (
	"maps"
	"slices"

	"faasd/api"
	"faasd/config"
)

// DeploymentFor describes a function of a stack file as the API deploys it: the inverse of
// the spec a Deployment becomes, so that `faasd deploy` runs exactly what `faasd serve`
// would run from the same file. Durations are sent explicitly, with the defaults of the
// file they came from; the build command is the client's business and is not sent.
func DeploymentFor(f *config.Function) api.Deployment {
	d := api.Deployment{
		Service:          f.Name,
		EnvProcess:       f.Fprocess,
		EnvVars:          maps.Clone(f.Env),
		Secrets:          slices.Clone(f.Secrets),
		Labels:           maps.Clone(f.Labels),
		Annotations:      maps.Clone(f.Annotations),
		Command:          slices.Clone(f.Command),
		Workdir:          f.Workdir,
		User:             f.User,
		LockFile:         f.LockFile,
		Hosts:            slices.Clone(f.Hosts),
		Timeout:          f.Timeout.String(),
		ReadinessTimeout: f.ReadinessTimeout.String(),
		HealthInterval:   f.HealthInterval.String(),
		DrainTimeout:     f.DrainTimeout.String(),
		StopGrace:        f.StopGrace.String(),
		Limits:           limitsOf(f.Limits),
		Requests:         resources(f.Requests.Memory, f.Requests.CPU),
	}
	if d.LockFile == config.DefaultLockFile {
		d.LockFile = ""
	}
	return d
}
