package dagsteremu

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// This file validates location documents the way Dagster+ does: against a
// strict Dagster config schema (the agent's LOCATION_CONFIG_SCHEMA), with
// Dagster-style error messages.

type cfgKind int

const (
	cfgString cfgKind = iota
	cfgFloat
	cfgShape      // a dict with the listed fields only
	cfgSelector   // a dict with exactly one of the listed fields
	cfgMap        // a dict with string keys and values of elem
	cfgPermissive // any dict
)

type cfgType struct {
	kind     cfgKind
	noneable bool
	fields   map[string]cfgField
	elem     *cfgType
}

type cfgField struct {
	t        *cfgType
	required bool
}

var (
	cfgStr     = &cfgType{kind: cfgString}
	cfgNoneStr = &cfgType{kind: cfgString, noneable: true}
)

func shape(fields map[string]cfgField) *cfgType { return &cfgType{kind: cfgShape, fields: fields} }

func opt(t *cfgType) cfgField { return cfgField{t: t} }
func req(t *cfgType) cfgField { return cfgField{t: t, required: true} }

// locationSchema mirrors the server-side location config schema.
var locationSchema = shape(map[string]cfgField{
	"location_name": req(cfgStr),
	"image":         opt(cfgNoneStr),
	"pex_metadata": opt(shape(map[string]cfgField{
		"pex_tag":        req(cfgStr),
		"python_version": opt(cfgStr),
	})),
	"code_source": req(&cfgType{kind: cfgSelector, fields: map[string]cfgField{
		"python_file":               opt(cfgStr),
		"package_name":              opt(cfgStr),
		"module_name":               opt(cfgStr),
		"autoload_defs_module_name": opt(cfgStr),
	}}),
	"working_directory": opt(cfgStr),
	"executable_path":   opt(cfgStr),
	"attribute":         opt(cfgStr),
	"git": opt(shape(map[string]cfgField{
		"commit_hash": opt(cfgStr),
		"url":         opt(cfgStr),
	})),
	"container_context": opt(shape(map[string]cfgField{
		"k8s":    opt(&cfgType{kind: cfgPermissive}),
		"docker": opt(&cfgType{kind: cfgPermissive}),
		"ecs":    opt(&cfgType{kind: cfgPermissive}),
	})),
	"agent_queue": opt(cfgStr),
	"defs_state_info": opt(shape(map[string]cfgField{
		"info_mapping": req(&cfgType{kind: cfgMap, elem: &cfgType{kind: cfgShape, noneable: true, fields: map[string]cfgField{
			"version":          req(cfgStr),
			"create_timestamp": req(&cfgType{kind: cfgFloat}),
		}}}),
	})),
})

// pathMsg renders a config path the way Dagster does.
func pathMsg(path string) string {
	if path == "root" {
		return "at the root"
	}
	return "at path " + path
}

// pyTypeName renders the Python type of a JSON value.
func pyTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "<class 'NoneType'>"
	case string:
		return "<class 'str'>"
	case bool:
		return "<class 'bool'>"
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return "<class 'int'>"
		}
		return "<class 'float'>"
	case []any:
		return "<class 'list'>"
	case map[string]any:
		return "<class 'dict'>"
	}
	return fmt.Sprintf("<class '%T'>", v)
}

func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func pyList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func validateConfig(t *cfgType, v any, path string) []string {
	if v == nil {
		if t.noneable {
			return nil
		}
		return []string{fmt.Sprintf("Value %s must not be None.", pathMsg(path))}
	}
	switch t.kind {
	case cfgString:
		if _, ok := v.(string); !ok {
			return []string{fmt.Sprintf("Invalid scalar %s. Value \"%s\" of type \"%s\" is not valid for expected type \"String\".",
				pathMsg(path), pyRepr(v), pyTypeName(v))}
		}
		return nil
	case cfgFloat:
		if _, ok := v.(float64); !ok {
			return []string{fmt.Sprintf("Invalid scalar %s. Value \"%s\" of type \"%s\" is not valid for expected type \"Float\".",
				pathMsg(path), pyRepr(v), pyTypeName(v))}
		}
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("Value %s must be dict. Got %s of type \"%s\".", pathMsg(path), pyRepr(v), pyTypeName(v))}
	}
	var errs []string
	switch t.kind {
	case cfgPermissive:
		return nil
	case cfgMap:
		for _, k := range sortedKeys(m) {
			errs = append(errs, validateConfig(t.elem, m[k], path+":"+k)...)
		}
		return errs
	case cfgSelector:
		var given []string
		for _, k := range sortedKeys(m) {
			if _, known := t.fields[k]; !known {
				errs = append(errs, fmt.Sprintf("Received unexpected config entry \"%s\" %s.", k, pathMsg(path)))
				continue
			}
			given = append(given, k)
		}
		if len(errs) > 0 {
			return errs
		}
		switch len(given) {
		case 0:
			return []string{fmt.Sprintf("Must specify a field %s if more than one field is defined. Defined fields: %s.",
				pathMsg(path), pyList(sortedKeys(t.fields)))}
		case 1:
			return validateConfig(t.fields[given[0]].t, m[given[0]], path+":"+given[0])
		default:
			return []string{fmt.Sprintf("You can only specify a single field %s. You specified %s. The available fields are %s.",
				pathMsg(path), pyList(given), pyList(sortedKeys(t.fields)))}
		}
	}
	// cfgShape
	for _, k := range sortedKeys(m) {
		if _, known := t.fields[k]; !known {
			errs = append(errs, fmt.Sprintf("Received unexpected config entry \"%s\" %s.", k, pathMsg(path)))
		}
	}
	for _, k := range sortedKeys(t.fields) {
		f := t.fields[k]
		fv, present := m[k]
		if !present {
			if f.required {
				errs = append(errs, fmt.Sprintf("Missing required config entry \"%s\" %s.", k, pathMsg(path)))
			}
			continue
		}
		errs = append(errs, validateConfig(f.t, fv, path+":"+k)...)
	}
	return errs
}

// validateLocation validates one location document.
func validateLocation(doc any, path string) []string {
	errs := validateConfig(locationSchema, doc, path)
	if len(errs) == 0 {
		if name, _ := doc.(map[string]any)["location_name"].(string); strings.TrimSpace(name) == "" {
			errs = append(errs, fmt.Sprintf("Invalid location name %q %s: location names must not be empty.", name, pathMsg(path+":location_name")))
		}
	}
	return errs
}

// codeSourceKeys are the keys of the legacy location form that move into
// code_source.
var codeSourceKeys = []string{"python_file", "package_name", "module_name", "autoload_defs_module_name"}

// locationsFromDocument validates a multi-location document,
// {"locations": [doc, ...]}, also accepting the legacy form
// {"locations": {"name": {package_name: ..., ...}}}. It returns the location
// documents, or the validation errors.
func locationsFromDocument(doc any) ([]map[string]any, []string) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, []string{fmt.Sprintf("Value at the root must be dict. Got %s of type \"%s\".", pyRepr(doc), pyTypeName(doc))}
	}
	var errs []string
	for _, k := range sortedKeys(m) {
		if k != "locations" {
			errs = append(errs, fmt.Sprintf("Received unexpected config entry \"%s\" at the root.", k))
		}
	}
	raw, present := m["locations"]
	if !present {
		return nil, append(errs, "Missing required config entry \"locations\" at the root.")
	}
	var items []any
	switch l := raw.(type) {
	case []any:
		items = l
	case map[string]any:
		for _, name := range sortedKeys(l) {
			items = append(items, legacyLocation(name, l[name]))
		}
	default:
		return nil, append(errs, fmt.Sprintf("Value at path root:locations must be list. Got %s of type \"%s\".",
			pyRepr(raw), pyTypeName(raw)))
	}
	docs := make([]map[string]any, 0, len(items))
	seen := map[string]bool{}
	for i, item := range items {
		path := fmt.Sprintf("root:locations[%d]", i)
		if itemErrs := validateLocation(item, path); len(itemErrs) > 0 {
			errs = append(errs, itemErrs...)
			continue
		}
		loc := item.(map[string]any)
		name := loc["location_name"].(string)
		if seen[name] {
			errs = append(errs, fmt.Sprintf("Duplicate location name \"%s\" %s.", name, pathMsg(path)))
			continue
		}
		seen[name] = true
		docs = append(docs, loc)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return docs, nil
}

// legacyLocation converts a legacy {"name": {package_name: ...}} entry to
// the list form.
func legacyLocation(name string, v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{"location_name": name}
	source := map[string]any{}
	for k, val := range m {
		out[k] = val
	}
	for _, k := range codeSourceKeys {
		if val, ok := out[k]; ok {
			source[k] = val
			delete(out, k)
		}
	}
	if _, has := out["code_source"]; !has {
		out["code_source"] = source
	}
	return out
}
