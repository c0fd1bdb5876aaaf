package testkit

import (
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a /metrics page, read by Prometheus's own parser: what a
// Prometheus server would make of it, not what a test guesses from the text.
type Metrics map[string]*dto.MetricFamily

// ReadMetrics parses the Prometheus text format.
func ReadMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return families, nil
}

// Value returns the value of the series name{labels}, where labels are name, value pairs
// that must be all of the series' labels.
func (m Metrics) Value(name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	family, ok := m[name]
	if !ok {
		return 0, false
	}
	for _, series := range family.GetMetric() {
		if sameLabels(series.GetLabel(), want) {
			return value(series), true
		}
	}
	return 0, false
}

func sameLabels(have []*dto.LabelPair, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for _, l := range have {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

func value(series *dto.Metric) float64 {
	switch {
	case series.Counter != nil:
		return series.Counter.GetValue()
	case series.Gauge != nil:
		return series.Gauge.GetValue()
	default:
		return series.Untyped.GetValue()
	}
}
