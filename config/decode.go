package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// document is faasd.toml with every table's keys left undecoded, so that each key is
// decoded on its own: one bad key does not hide the problems of the others, and a type
// error can say in the file's terms what the key wants.
type document struct {
	Gateway   map[string]toml.Primitive            `toml:"gateway"`
	Functions map[string]map[string]toml.Primitive `toml:"functions"`
	Services  map[string]map[string]toml.Primitive `toml:"services"`
	Queue     map[string]toml.Primitive            `toml:"queue"`
	Secrets   map[string]map[string]toml.Primitive `toml:"secrets"`
}

// decoder decodes the tables of one document and collects every problem it meets.
type decoder struct {
	md    toml.MetaData
	loc   locator
	probs *problems
}

// table decodes the keys of one table into dst, a pointer to a raw struct whose fields
// carry toml tags. Unknown keys and values of the wrong type become problems; the
// fields they were meant for keep their zero values. It reports whether every known key
// was read: a table that was not is not validated further, since its zero values would
// only add problems that are not there.
func (d *decoder) table(key []string, keys map[string]toml.Primitive, dst any) bool {
	read := true
	v := reflect.ValueOf(dst).Elem()
	fields := map[string]int{}
	for i := range v.NumField() {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); tag != "" {
			fields[tag] = i
		}
	}
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		full := append(slices.Clip(key), name)
		i, ok := fields[name]
		if !ok {
			d.probs.add(d.loc.unknownKey(full))
			continue
		}
		field := v.Field(i)
		var raw any
		msg := ""
		if err := d.md.PrimitiveDecode(keys[name], &raw); err != nil {
			msg = decodeMessage(err)
		} else if msg = mismatch(raw, field.Type()); msg == "" {
			if err := d.md.PrimitiveDecode(keys[name], field.Addr().Interface()); err != nil {
				msg = decodeMessage(err)
			}
		}
		if msg != "" {
			d.probs.add(d.loc.at(full, msg))
			read = false
		}
	}
	return read
}

// decodeMessage is what is left of a decoder's error once the file, line and key it
// repeats are taken off: the problems carry those themselves.
func decodeMessage(err error) string {
	if pe, ok := err.(toml.ParseError); ok {
		return pe.Message
	}
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if m := typeErr.FindStringSubmatch(msg); m != nil {
		return m[3]
	}
	return msg
}

var unmarshalerType = reflect.TypeFor[toml.Unmarshaler]()

// mismatch says, in the file's terms, why a decoded TOML value cannot go into a field
// of type want, or returns "" when it can. Types that decode themselves (durations) are
// left to their own, more specific, messages.
func mismatch(v any, want reflect.Type) string {
	for want.Kind() == reflect.Pointer {
		if want.Implements(unmarshalerType) {
			return ""
		}
		want = want.Elem()
	}
	if reflect.PointerTo(want).Implements(unmarshalerType) {
		return ""
	}
	if wrongKind(v, want) {
		return fmt.Sprintf("want %s, not %s", describeType(want), describeValue(v))
	}
	switch want.Kind() {
	case reflect.Slice:
		for i, e := range v.([]any) {
			if wrongKind(e, want.Elem()) {
				return fmt.Sprintf("want %s, but element %d is %s", describeType(want), i+1, describeValue(e))
			}
		}
	case reflect.Map:
		m := v.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if wrongKind(m[k], want.Elem()) {
				return fmt.Sprintf("want %s, but %s is %s", describeType(want), quoteKey(k), describeValue(m[k]))
			}
		}
	}
	return ""
}

// wrongKind reports whether a decoded TOML value is of another kind than want; the
// elements of lists and tables are checked by the caller.
func wrongKind(v any, want reflect.Type) bool {
	switch want.Kind() {
	case reflect.String:
		_, ok := v.(string)
		return !ok
	case reflect.Bool:
		_, ok := v.(bool)
		return !ok
	case reflect.Int, reflect.Int64, reflect.Int32:
		_, ok := v.(int64)
		return !ok
	case reflect.Slice:
		_, ok := v.([]any)
		return !ok
	case reflect.Map:
		_, ok := v.(map[string]any)
		return !ok
	}
	return false
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Slice:
		return "a list of " + plural(t.Elem()) + ` such as ["a", "b"]`
	case reflect.Map:
		return "a table of " + plural(t.Elem()) + ` such as { KEY = "value" }`
	}
	return t.String()
}

func plural(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "strings"
	case reflect.Bool:
		return "booleans"
	}
	return "numbers"
}

// describeValue names the kind of a decoded TOML value, with the value itself when it
// is short enough to help.
func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) <= 40 {
			return fmt.Sprintf("the string %q", v)
		}
		return "a string"
	case int64:
		return fmt.Sprintf("the number %d", v)
	case float64:
		return fmt.Sprintf("the number %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

func quoteKey(k string) string {
	if k != "" && !strings.ContainsAny(k, ` ."'=`) {
		return k
	}
	return fmt.Sprintf("%q", k)
}
