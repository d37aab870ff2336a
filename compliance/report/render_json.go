package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"time"
)

//go:embed schema.json
var schemaJSON []byte

// SchemaID is the $id of the report's JSON Schema. It names the schema; no
// one fetches it.
const SchemaID = "https://parapet-sbc.example/schema/report-v1.json"

// Schema returns the JSON Schema (draft 2020-12) of the report's JSON form,
// as WriteJSON writes it. The caller may keep or change the returned slice.
func Schema() []byte {
	return append([]byte(nil), schemaJSON...)
}

// WriteJSON writes the report as indented JSON, fields in the order of the
// model's structs, followed by a newline. Lists the model always carries are
// written as [] when empty, never null, so that the output validates against
// Schema. The report itself is not modified.
func WriteJSON(w io.Writer, r *Report) error {
	if r == nil {
		return fmt.Errorf("write json report: no report")
	}
	out := withEmptySlices(reflect.ValueOf(*r)).Interface().(Report)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

// withEmptySlices returns a copy of v in which every nil slice, at any
// depth, is an empty one. Slices and pointers are copied, not shared, so
// the caller's value is left as it was.
func withEmptySlices(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(withEmptySlices(v.Elem()))
		return p
	case reflect.Slice:
		if v.IsNil() {
			return reflect.MakeSlice(v.Type(), 0, 0)
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(withEmptySlices(v.Index(i)))
		}
		return s
	case reflect.Struct:
		if v.Type() == timeType {
			return v
		}
		s := reflect.New(v.Type()).Elem()
		s.Set(v)
		for i := range v.NumField() {
			if s.Field(i).CanSet() {
				s.Field(i).Set(withEmptySlices(v.Field(i)))
			}
		}
		return s
	default: // scalars, maps and the rest hold no slice this model uses
		return v
	}
}
