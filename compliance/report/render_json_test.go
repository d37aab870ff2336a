package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileSchema compiles Schema() with formats asserted. The schema is
// added as a resource under its $id, so nothing is fetched.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("schema.json does not parse: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(noLoader{t})
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatalf("add schema: %v", err)
	}
	sch, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// noLoader fails the test if the compiler tries to fetch anything.
type noLoader struct{ t *testing.T }

func (l noLoader) Load(url string) (any, error) {
	l.t.Errorf("schema compiler tried to load %s", url)
	return nil, jsonschema.LocalizableError("no loading: %s", url)
}

func renderJSON(t *testing.T, r *Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	return buf.Bytes()
}

func TestWriteJSONValidatesAgainstSchema(t *testing.T) {
	sch := compileSchema(t)
	for name, r := range map[string]*Report{"sample": sampleReport(), "empty": emptyReport()} {
		t.Run(name, func(t *testing.T) {
			out := renderJSON(t, r)
			if !bytes.HasSuffix(out, []byte("}\n")) {
				t.Errorf("output does not end with a newline")
			}
			if !bytes.Contains(out, []byte("\n  \"kind\"")) {
				t.Errorf("output is not indented by two spaces")
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Fatalf("output does not validate: %v\n%s", err, out)
			}
		})
	}
}

func TestWriteJSONEmptyListsAndUnchangedReport(t *testing.T) {
	r := emptyReport()
	out := renderJSON(t, r)
	if bytes.Contains(out, []byte("null")) {
		t.Errorf("empty report's JSON holds null:\n%s", out)
	}
	for _, want := range []string{`"sources": []`, `"controls": []`, `"peers": []`, `"by_disposition": []`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	if bytes.Contains(out, []byte(`"capture":`)) {
		t.Errorf("a report without capture writes a capture section")
	}
	if r.Sources != nil || r.Controls != nil || r.Inventory.Peers != nil {
		t.Errorf("WriteJSON changed the caller's report")
	}

	// The sample round-trips to the same report.
	s := sampleReport()
	var back Report
	if err := json.Unmarshal(renderJSON(t, s), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, s) {
		t.Errorf("sample does not round-trip through JSON")
	}
}

func TestWriteJSONFieldOrder(t *testing.T) {
	dec := json.NewDecoder(bytes.NewReader(renderJSON(t, sampleReport())))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	want := jsonFields(reflect.TypeFor[Report]())
	var names []string
	for _, f := range want {
		names = append(names, f.name)
	}
	if !slices.Equal(keys, names) {
		t.Errorf("top-level keys %v, want the struct order %v", keys, names)
	}
}

func TestSchemaRejectsWhatTheModelDoesNot(t *testing.T) {
	sch := compileSchema(t)
	base := renderJSON(t, sampleReport())
	cases := []struct {
		name string
		edit func(m map[string]any)
	}{
		{"unknown top-level field", func(m map[string]any) { m["extra"] = 1 }},
		{"unknown nested field", func(m map[string]any) { m["calls"].(map[string]any)["extra"] = 1 }},
		{"status outside the enum", func(m map[string]any) { control(m)["status"] = "ok" }},
		{"missing required field", func(m map[string]any) { delete(control(m), "evidence") }},
		{"wrong report_version", func(m map[string]any) { m["report_version"] = 2 }},
		{"kind outside the enum", func(m map[string]any) { m["kind"] = "pcap" }},
		{"bad generated time", func(m map[string]any) { m["generated"] = "yesterday" }},
		{"negative uint", func(m map[string]any) { m["media_attacks"].(map[string]any)["replays"] = -1 }},
		{"null list", func(m map[string]any) { m["sources"] = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(base, &m); err != nil {
				t.Fatal(err)
			}
			tc.edit(m)
			b, _ := json.Marshal(m)
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err == nil {
				t.Errorf("schema accepted %s", tc.name)
			}
		})
	}
}

func control(m map[string]any) map[string]any {
	return m["controls"].([]any)[0].(map[string]any)
}

// jsonField is a struct field as encoding/json names it.
type jsonField struct {
	name      string
	omitempty bool
	typ       reflect.Type
}

func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, omitempty: strings.Contains(opts, "omitempty"), typ: f.Type})
	}
	return out
}

// TestSchemaMatchesModel fails when the model and schema.json drift apart:
// every field of every struct must be in the schema with its JSON type,
// required exactly when it is not omitempty, and the schema must list no
// property or definition the model lacks.
func TestSchemaMatchesModel(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", root["$schema"])
	}
	if root["$id"] != SchemaID {
		t.Errorf("$id = %v, want %s", root["$id"], SchemaID)
	}
	defs, _ := root["$defs"].(map[string]any)
	w := &schemaWalker{t: t, defs: defs, seen: map[string]bool{}}
	w.object(root, reflect.TypeFor[Report](), "$")
	for name := range defs {
		if !w.seen[name] {
			t.Errorf("$defs/%s is not used by the model", name)
		}
	}
	rv := defs["Report"].(map[string]any)["properties"].(map[string]any)["report_version"].(map[string]any)
	if rv["const"] != float64(Version) {
		t.Errorf("report_version const = %v, want %d", rv["const"], Version)
	}
}

type schemaWalker struct {
	t    *testing.T
	defs map[string]any
	seen map[string]bool
}

// resolve follows a node's $ref into $defs.
func (w *schemaWalker) resolve(node map[string]any, path string) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		w.t.Errorf("%s: $ref %q is not local", path, ref)
		return node
	}
	def, ok := w.defs[name].(map[string]any)
	if !ok {
		w.t.Errorf("%s: $ref %q names no definition", path, ref)
		return map[string]any{}
	}
	w.seen[name] = true
	return def
}

func (w *schemaWalker) object(node map[string]any, typ reflect.Type, path string) {
	node = w.resolve(node, path)
	if node["type"] != "object" {
		w.t.Errorf("%s: type %v, want object", path, node["type"])
	}
	if node["additionalProperties"] != false {
		w.t.Errorf("%s: additionalProperties is not false", path)
	}
	props, _ := node["properties"].(map[string]any)
	var required []string
	reqList, ok := node["required"].([]any)
	if !ok {
		w.t.Errorf("%s: required is not a list", path)
	}
	for _, r := range reqList {
		s, _ := r.(string)
		required = append(required, s)
	}
	var wantRequired []string
	fields := map[string]bool{}
	for _, f := range jsonFields(typ) {
		fields[f.name] = true
		if !f.omitempty {
			wantRequired = append(wantRequired, f.name)
		}
		p, ok := props[f.name].(map[string]any)
		if !ok {
			w.t.Errorf("%s.%s: in the model, not in the schema", path, f.name)
			continue
		}
		w.value(p, f.typ, path+"."+f.name)
	}
	for name := range props {
		if !fields[name] {
			w.t.Errorf("%s.%s: in the schema, not in the model", path, name)
		}
	}
	sort.Strings(required)
	sort.Strings(wantRequired)
	if !slices.Equal(required, wantRequired) {
		w.t.Errorf("%s: required %v, want %v (the fields without omitempty)", path, required, wantRequired)
	}
}

func (w *schemaWalker) value(node map[string]any, typ reflect.Type, path string) {
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := ""
	switch typ.Kind() {
	case reflect.String:
		want = "string"
	case reflect.Bool:
		want = "boolean"
	case reflect.Int, reflect.Int64:
		want = "integer"
	case reflect.Uint8, reflect.Uint32, reflect.Uint64:
		want = "integer"
		if node["minimum"] != float64(0) {
			w.t.Errorf("%s: unsigned without minimum 0", path)
		}
	case reflect.Slice:
		if node["type"] != "array" {
			w.t.Errorf("%s: type %v, want array", path, node["type"])
		}
		items, _ := node["items"].(map[string]any)
		w.value(items, typ.Elem(), path+"[]")
		return
	case reflect.Struct:
		if typ == reflect.TypeFor[time.Time]() {
			if node["type"] != "string" || node["format"] != "date-time" {
				w.t.Errorf("%s: a time, want string with format date-time", path)
			}
			return
		}
		w.object(node, typ, path)
		return
	default:
		w.t.Errorf("%s: Go kind %s has no schema mapping in this test", path, typ.Kind())
		return
	}
	if node["type"] != want {
		w.t.Errorf("%s: type %v, want %s", path, node["type"], want)
	}
}

func TestSchemaEnums(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	defs := root["$defs"].(map[string]any)
	enum := func(def, field string) []string {
		p := defs[def].(map[string]any)["properties"].(map[string]any)[field].(map[string]any)
		var out []string
		for _, v := range p["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	cases := []struct {
		def, field string
		want       []string
	}{
		{"Report", "kind", []string{KindLog, KindCapture}},
		{"ControlResult", "status", []string{StatusSatisfied, StatusNeedsAttention, StatusNotApplicable}},
		{"Verification", "signatures", []string{SignaturesVerified, SignaturesNotChecked, SignaturesFailed, SignaturesNone}},
		{"Issue", "kind", []string{WeakTLSVersion, WeakNoTLS, WeakPlainRTP, WeakSuite, WeakNoCert, WeakBadCert}},
		{"Flow", "class", []string{FlowRTP, FlowSRTP, FlowUnknown}},
	}
	for _, tc := range cases {
		got := enum(tc.def, tc.field)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s.%s enum %v, want %v", tc.def, tc.field, got, tc.want)
		}
	}
}

func TestSchemaReturnsACopy(t *testing.T) {
	a := Schema()
	a[0] = 'X'
	if Schema()[0] != '{' {
		t.Errorf("Schema returned its embedded bytes, not a copy")
	}
}

// TestSampleFillsTheModel keeps the sample report honest as the model
// grows: every list and every optional section is filled at least once, so
// the renderers and the schema are tested on all of it.
func TestSampleFillsTheModel(t *testing.T) {
	filled := map[string]bool{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if _, ok := filled[path]; !ok {
				filled[path] = false
			}
			if !v.IsNil() {
				filled[path] = true
				walk(v.Elem(), path)
			}
		case reflect.Slice:
			if _, ok := filled[path]; !ok {
				filled[path] = false
			}
			if v.Len() > 0 {
				filled[path] = true
			}
			for i := range v.Len() {
				walk(v.Index(i), path+"[]")
			}
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				return
			}
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if !f.IsExported() {
					continue
				}
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				walk(v.Field(i), path+"."+name)
			}
		default: // scalars: nothing to fill
		}
	}
	walk(reflect.ValueOf(sampleReport()).Elem(), "$")
	for path, ok := range filled {
		if !ok {
			t.Errorf("the sample leaves %s empty", path)
		}
	}
	if len(filled) < 20 {
		t.Errorf("walked only %d lists and pointers", len(filled))
	}
}

// TestDocsNameEveryJSONField keeps docs/reports.md in step with the schema:
// every property the JSON can carry is named there, in backquotes.
func TestDocsNameEveryJSONField(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "reports.md"))
	if err != nil {
		t.Fatal(err)
	}
	var schema any
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for name := range props {
					names[name] = true
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(schema)
	if len(names) < 50 {
		t.Fatalf("only %d properties found in the schema", len(names))
	}
	for name := range names {
		if !bytes.Contains(doc, []byte("`"+name+"`")) && !bytes.Contains(doc, []byte("`"+name+"[]`")) {
			t.Errorf("docs/reports.md does not name the JSON field %q", name)
		}
	}
}
