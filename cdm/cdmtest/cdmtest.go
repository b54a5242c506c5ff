// Package cdmtest checks lake files against the format, for the tests of
// every package that writes them.
package cdmtest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaJSON is the CDM model.json schema (JSON Schema draft-07).
//
//go:embed modeljsonschema.json
var schemaJSON []byte

const schemaURL = "file:///cdm/modeljsonschema.json"

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat() // partition locations must be URIs
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaURL)
})

// ValidateModel checks model.json bytes against the CDM schema and against
// what LAKE-FORMAT.md adds and the schema can't say: root name "cdm" and
// version "1.0", RFC 3339 times, entities that are unique LocalEntities with
// the lakelink annotations, unique attribute names (case-insensitively)
// starting with Id, SinkCreatedOn, SinkModifiedOn and holding
// versionnumber and IsDelete, a maxLength on every attribute, the argument
// order of is.dataFormat.numeric.shaped, and on every partition exactly
// the documented fileFormatSettings, traits and Athena:PartitionYear with
// an absolute location. The error names the first problem found.
func ValidateModel(data []byte) error {
	sch, err := compiled()
	if err != nil {
		return fmt.Errorf("cdmtest: compile model.json schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("model.json: not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("model.json: schema: %w", err)
	}
	var m model
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("model.json: %w", err)
	}
	return m.check()
}

// MustValidateModel fails the test when ValidateModel reports a problem.
func MustValidateModel(t testing.TB, data []byte) {
	t.Helper()
	if err := ValidateModel(data); err != nil {
		t.Fatalf("invalid model.json: %v", err)
	}
}

// The model as this package reads it: independent of package cdm's types,
// so that a mistake there can't hide here. Pointers tell absent from zero.
type model struct {
	Name         *string  `json:"name"`
	Description  *string  `json:"description"`
	Version      *string  `json:"version"`
	Application  *string  `json:"application"`
	ModifiedTime *string  `json:"modifiedTime"`
	Entities     []entity `json:"entities"`
}

type entity struct {
	Type        string       `json:"$type"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Annotations []annotation `json:"annotations"`
	Attributes  []attribute  `json:"attributes"`
	Partitions  []partition  `json:"partitions"`
}

type annotation struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

type attribute struct {
	Name        string            `json:"name"`
	DataType    string            `json:"dataType"`
	MaxLength   *float64          `json:"maxLength"`
	Traits      []json.RawMessage `json:"cdm:traits"`
	Annotations []annotation      `json:"annotations"`
}

type partition struct {
	Name               string          `json:"name"`
	Location           *string         `json:"location"`
	RefreshTime        *string         `json:"refreshTime"`
	FileFormatSettings json.RawMessage `json:"fileFormatSettings"`
	Traits             json.RawMessage `json:"cdm:traits"`
	Annotations        []annotation    `json:"annotations"`
}

// The JSON every partition carries, compared regardless of key order.
const (
	wantFormatSettings = `{"$type":"CsvFormatSettings","columnHeaders":false,"delimiter":",","quoteStyle":"QuoteStyle.Csv","csvStyle":"CsvStyle.QuoteAlways","encoding":"UTF-8"}`
	wantPartitionTrait = `[{"traitReference":"is.partition.format.CSV","arguments":[{"name":"raggedRight","value":"true"}]}]`
)

func (m *model) check() error {
	str := func(p *string) string {
		if p == nil {
			return "(absent)"
		}
		return *p
	}
	switch {
	case str(m.Name) != "cdm":
		return fmt.Errorf("model.json: name %q, want \"cdm\"", str(m.Name))
	case str(m.Description) != "cdm":
		return fmt.Errorf("model.json: description %q, want \"cdm\"", str(m.Description))
	case str(m.Version) != "1.0":
		return fmt.Errorf("model.json: version %q, want \"1.0\"", str(m.Version))
	case str(m.Application) != "lakelink":
		return fmt.Errorf("model.json: application %q, want \"lakelink\"", str(m.Application))
	}
	if err := checkTime("modifiedTime", m.ModifiedTime); err != nil {
		return fmt.Errorf("model.json: %w", err)
	}
	names := map[string]bool{}
	for i, e := range m.Entities {
		key := strings.ToLower(e.Name)
		if names[key] {
			return fmt.Errorf("model.json: entities[%d] %q: name used twice (case-insensitively)", i, e.Name)
		}
		names[key] = true
		if err := e.check(); err != nil {
			return fmt.Errorf("model.json: entity %q: %w", e.Name, err)
		}
	}
	return nil
}

func checkTime(what string, s *string) error {
	if s == nil {
		return errors.New(what + " absent")
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return fmt.Errorf("%s %q: not RFC 3339", what, *s)
	}
	if _, off := t.Zone(); off != 0 || !strings.HasSuffix(*s, "Z") {
		return fmt.Errorf("%s %q: not UTC", what, *s)
	}
	return nil
}

// stringValue returns an annotation's value if it is a JSON string.
func stringValue(as []annotation, name string) (string, bool, error) {
	for _, a := range as {
		if a.Name != name {
			continue
		}
		var s string
		if err := json.Unmarshal(a.Value, &s); err != nil {
			return "", true, fmt.Errorf("annotation %s: value %s is not a string", name, a.Value)
		}
		return s, true, nil
	}
	return "", false, nil
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

func (e *entity) check() error {
	if e.Type != "LocalEntity" {
		return fmt.Errorf("$type %q, want LocalEntity", e.Type)
	}
	if e.Description != e.Name {
		return fmt.Errorf("description %q, want the entity name", e.Description)
	}
	required := []struct {
		name    string
		allowed []string
	}{
		{"Athena:PartitionGranularity", []string{"Year", "Month", "None"}},
		{"Athena:InitialSyncState", []string{"NotStarted", "InProgress", "Completed", "Failed"}},
		{"lakelink:WriteMode", []string{"InPlaceUpdate", "AppendOnly"}},
	}
	for _, r := range required {
		v, ok, err := stringValue(e.Annotations, r.name)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("annotation %s missing", r.name)
		case !oneOf(v, r.allowed...):
			return fmt.Errorf("annotation %s = %q, want one of %q", r.name, v, r.allowed)
		}
	}
	done, ok, err := stringValue(e.Annotations, "Athena:InitialSyncDataCompletedTime")
	if err != nil {
		return err
	}
	state, _, _ := stringValue(e.Annotations, "Athena:InitialSyncState")
	if ok {
		if state != "Completed" {
			return fmt.Errorf("annotation Athena:InitialSyncDataCompletedTime with state %s", state)
		}
		if _, err := time.Parse("1/2/2006 3:04:05 PM", done); err != nil {
			return fmt.Errorf("annotation Athena:InitialSyncDataCompletedTime = %q: not M/d/yyyy h:mm:ss tt", done)
		}
	}
	if err := e.checkAttributes(); err != nil {
		return err
	}
	parts := map[string]bool{}
	for _, p := range e.Partitions {
		if parts[p.Name] {
			return fmt.Errorf("partition %q listed twice", p.Name)
		}
		parts[p.Name] = true
		if err := p.check(); err != nil {
			return fmt.Errorf("partition %q: %w", p.Name, err)
		}
	}
	return nil
}

func (e *entity) checkAttributes() error {
	seen := map[string]bool{}
	for i, a := range e.Attributes {
		key := strings.ToLower(a.Name)
		if seen[key] {
			return fmt.Errorf("attribute %q used twice (case-insensitively)", a.Name)
		}
		seen[key] = true
		if a.MaxLength == nil {
			return fmt.Errorf("attribute %q: no maxLength", a.Name)
		}
		if ml := *a.MaxLength; ml != float64(int64(ml)) || (ml < 1 && ml != -1) {
			return fmt.Errorf("attribute %q: maxLength %v, want -1 or a positive integer", a.Name, ml)
		}
		want := map[int]string{0: "Id", 1: "SinkCreatedOn", 2: "SinkModifiedOn"}
		if w, ok := want[i]; ok && a.Name != w {
			return fmt.Errorf("attributes[%d] is %q, want %q", i, a.Name, w)
		}
		for _, tr := range a.Traits {
			var t struct {
				TraitReference string `json:"traitReference"`
				Arguments      []struct {
					Name string `json:"name"`
				} `json:"arguments"`
			}
			if err := json.Unmarshal(tr, &t); err != nil || t.TraitReference == "" {
				return fmt.Errorf("attribute %q: trait %s has no traitReference", a.Name, tr)
			}
			var args []string
			for _, arg := range t.Arguments {
				args = append(args, arg.Name)
			}
			got := strings.Join(args, ",")
			switch t.TraitReference {
			case "is.dataFormat.numeric.shaped":
				if got != "precision,scale" {
					return fmt.Errorf("attribute %q: %s arguments %q, want precision,scale", a.Name, t.TraitReference, got)
				}
			case "is.constrained":
				if got != "maximumLength" {
					return fmt.Errorf("attribute %q: %s arguments %q, want maximumLength", a.Name, t.TraitReference, got)
				}
			}
		}
	}
	wantType := map[string]string{"SinkCreatedOn": "dateTime", "SinkModifiedOn": "dateTime", "versionnumber": "int64", "IsDelete": "boolean"}
	for _, a := range e.Attributes {
		if w, ok := wantType[a.Name]; ok {
			if a.DataType != w {
				return fmt.Errorf("attribute %q: dataType %q, want %q", a.Name, a.DataType, w)
			}
			delete(wantType, a.Name)
		}
	}
	for _, name := range []string{"Id", "SinkCreatedOn", "SinkModifiedOn", "versionnumber", "IsDelete"} {
		if !seen[strings.ToLower(name)] {
			return fmt.Errorf("system attribute %q missing", name)
		}
	}
	return nil
}

func (p *partition) check() error {
	if p.Location == nil {
		return errors.New("no location")
	}
	u, err := url.Parse(*p.Location)
	if err != nil || !oneOf(u.Scheme, "https", "http", "s3", "file") || (u.Host == "" && u.Scheme != "file") || !strings.HasSuffix(u.Path, ".csv") {
		return fmt.Errorf("location %q: want an absolute https:// (http:// for an emulator), s3:// or file:/// URI of a .csv file", *p.Location)
	}
	if err := checkTime("refreshTime", p.RefreshTime); err != nil {
		return err
	}
	if got, want := canonical(p.FileFormatSettings), canonical(json.RawMessage(wantFormatSettings)); got != want {
		return fmt.Errorf("fileFormatSettings %s, want %s", got, wantFormatSettings)
	}
	if got, want := canonical(p.Traits), canonical(json.RawMessage(wantPartitionTrait)); got != want {
		return fmt.Errorf("cdm:traits %s, want %s", got, wantPartitionTrait)
	}
	year, ok, err := stringValue(p.Annotations, "Athena:PartitionYear")
	switch {
	case err != nil:
		return err
	case !ok || year == "":
		return errors.New("annotation Athena:PartitionYear missing")
	}
	return nil
}

// canonical returns raw JSON re-encoded with sorted keys and no white
// space, so that key order does not matter, or "(absent)".
func canonical(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(absent)"
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}
