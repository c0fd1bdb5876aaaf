package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scaling labels, named as OpenFaaS names them so that existing stack files carry over.
const (
	LabelScaleMin              = "com.openfaas.scale.min"
	LabelScaleMax              = "com.openfaas.scale.max"
	LabelScaleZero             = "com.openfaas.scale.zero"
	LabelScaleZeroDuration     = "com.openfaas.scale.zero-duration"
	LabelScaleTarget           = "com.openfaas.scale.target"
	LabelScaleType             = "com.openfaas.scale.type"
	LabelScaleTargetProportion = "com.openfaas.scale.target-proportion"
)

// ScaleType is the load a function is scaled on.
type ScaleType string

const (
	// ScaleRPS scales on requests per second.
	ScaleRPS ScaleType = "rps"
	// ScaleCapacity scales on requests in flight.
	ScaleCapacity ScaleType = "capacity"
)

// ScalePolicy is the autoscaling rule of one function, derived from its labels.
type ScalePolicy struct {
	Min              int
	Max              int
	Zero             bool
	ZeroDuration     time.Duration
	Type             ScaleType
	Target           float64 // load per replica
	TargetProportion float64 // scale up once load reaches Target × TargetProportion
}

// DefaultScalePolicy reproduces what OpenFaaS users see: a function scales out once it
// gets more than about 5 req/s per replica.
var DefaultScalePolicy = ScalePolicy{
	Min:              1,
	Max:              5,
	Type:             ScaleRPS,
	Target:           5,
	TargetProportion: 0.9,
	ZeroDuration:     5 * time.Minute,
}

// Autoscaled reports whether the scaler may change the replica count on its own.
func (p ScalePolicy) Autoscaled() bool { return p.Min != p.Max || p.Zero }

// ParseScalePolicy reads the scaling labels over the defaults base (DefaultScalePolicy,
// or what [gateway] scale_defaults made of it; the zero policy stands for the former). An invalid value is an error that names
// the label: a typo must not silently fall back to a default, so an unknown
// com.openfaas.* label is an error too.
func ParseScalePolicy(base ScalePolicy, labels map[string]string) (ScalePolicy, error) {
	p := base
	if p == (ScalePolicy{}) {
		p = DefaultScalePolicy
	}
	maxSet := false
	for _, key := range slices.Sorted(maps.Keys(labels)) {
		v := labels[key]
		var err error
		switch key {
		case LabelScaleMin:
			p.Min, err = parseCount(v)
		case LabelScaleMax:
			p.Max, err = parseCount(v)
			maxSet = true
		case LabelScaleZero:
			p.Zero, err = strconv.ParseBool(v)
		case LabelScaleZeroDuration:
			p.ZeroDuration, err = parseDuration(v)
			if err == nil && p.ZeroDuration <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case LabelScaleTarget:
			p.Target, err = parsePositive(v)
		case LabelScaleTargetProportion:
			p.TargetProportion, err = parsePositive(v)
			if err == nil && p.TargetProportion > 1 {
				err = fmt.Errorf("must be in (0, 1]")
			}
		case LabelScaleType:
			switch ScaleType(v) {
			case ScaleRPS, ScaleCapacity:
				p.Type = ScaleType(v)
			default:
				err = fmt.Errorf("want %q or %q", ScaleRPS, ScaleCapacity)
			}
		default:
			if err := checkOpenFaaSLabel(key); err != nil {
				return p, err
			}
			continue
		}
		if err != nil {
			return p, fmt.Errorf("label %s = %q: %w", key, v, err)
		}
	}
	// A min above the default max raises the max with it, as a user who asks for
	// min = 8 plainly wants at least 8.
	if !maxSet && p.Min > p.Max {
		p.Max = p.Min
	}
	if p.Min > p.Max {
		return p, fmt.Errorf("label %s = %d is above %s = %d", LabelScaleMin, p.Min, LabelScaleMax, p.Max)
	}
	if p.Max < 1 {
		return p, fmt.Errorf("label %s must be at least 1", LabelScaleMax)
	}
	return p, nil
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	if n < 0 || n > 1000 {
		return 0, fmt.Errorf("must be between 0 and 1000")
	}
	return n, nil
}

func parsePositive(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("not a number")
	}
	if f <= 0 {
		return 0, fmt.Errorf("must be positive")
	}
	return f, nil
}

// parseDuration accepts a Go duration ("5m", "90s") or a whole number of seconds.
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not a duration (want e.g. \"90s\", \"5m\" or seconds)")
	}
	return d, nil
}

// KnownLabels are the com.openfaas.* labels faasd reads; any other label of that prefix
// is almost certainly a typo of one of them.
var KnownLabels = []string{
	LabelScaleMin, LabelScaleMax, LabelScaleZero, LabelScaleZeroDuration,
	LabelScaleTarget, LabelScaleType, LabelScaleTargetProportion, LabelQueueMaxInflight,
}

func checkOpenFaaSLabel(key string) error {
	if !strings.HasPrefix(key, "com.openfaas.") || slices.Contains(KnownLabels, key) {
		return nil
	}
	msg := fmt.Sprintf("label %s: unknown com.openfaas label", key)
	if s := suggest(key, KnownLabels); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	} else {
		msg += " (faasd reads " + strings.Join(KnownLabels, ", ") + ")"
	}
	return errors.New(msg)
}

// scaleDefaults reads [gateway] scale_defaults: the scaling labels without their
// com.openfaas.scale. prefix, checked as labels are.
func scaleDefaults(keys map[string]string) (ScalePolicy, error) {
	labels := make(map[string]string, len(keys))
	for k, v := range keys {
		labels["com.openfaas.scale."+k] = v
	}
	p, err := ParseScalePolicy(DefaultScalePolicy, labels)
	if err != nil {
		return p, fmt.Errorf("scale_defaults: %w", err)
	}
	return p, nil
}
