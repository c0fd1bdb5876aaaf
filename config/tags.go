package config

import (
	"reflect"
	"strings"
)

// tomlTags lists the keys a raw table accepts, for "did you mean" suggestions.
func tomlTags(v any) []string {
	t := reflect.TypeOf(v)
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}
