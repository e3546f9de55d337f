// Package config reads and validates dagster_cloud.yaml and turns its
// locations into the location documents the Dagster+ API takes.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is a problem in dagster_cloud.yaml at a position.
type Error struct {
	File string
	Line int // 0 when the problem is the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors are all the problems found in one file.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Build is a location's build section. Besides the dagster-cloud keys
// (directory, registry) it may override the action's build inputs for one
// location.
type Build struct {
	Directory string // relative to the project directory; "." by default
	Registry  string // image repository without a tag

	Dockerfile string            // relative to Directory
	Target     string            // build stage
	Platform   string            // e.g. linux/arm64
	BuildArgs  map[string]string // merged over the build_args input
	Labels     map[string]string // merged over the labels input
	Cache      *bool             // overrides the cache input

	// DirectoryLine and DockerfileLine are where directory and dockerfile
	// were set (in the location's build section or in defaults.build), 0
	// when they were not.
	DirectoryLine, DockerfileLine int
}

// merge lays o's set fields over b.
func (b Build) merge(o Build) Build {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&b.Directory, o.Directory}, {&b.Registry, o.Registry}, {&b.Dockerfile, o.Dockerfile},
		{&b.Target, o.Target}, {&b.Platform, o.Platform},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	if o.Directory != "" {
		b.DirectoryLine = o.DirectoryLine
	}
	if o.Dockerfile != "" {
		b.DockerfileLine = o.DockerfileLine
	}
	b.BuildArgs = mergeMaps(b.BuildArgs, o.BuildArgs)
	b.Labels = mergeMaps(b.Labels, o.Labels)
	if o.Cache != nil {
		b.Cache = o.Cache
	}
	return b
}

func mergeMaps(a, b map[string]string) map[string]string {
	if len(b) == 0 {
		return a
	}
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Location is one entry of `locations:`.
type Location struct {
	Name  string
	Line  int   // line of the entry in the file
	Build Build // with defaults.build applied
	// NeedsBuild is false only for an entry that names a prebuilt `image`
	// and has no `build` section: it is deployed as it is.
	NeedsBuild bool
	Image      string // the image of a location that is not built
	raw        map[string]any
	defaults   map[string]any // document keys from `defaults:`
}

// File is a parsed dagster_cloud.yaml.
type File struct {
	Path      string
	Locations []Location
}

// Known keys (dagster-cloud-cli config/models.py; unknown keys are errors).
var (
	topKeys        = []string{"defaults", "locations"}
	defaultsKeys   = []string{"build", "working_directory", "image", "executable_path", "container_context", "agent_queue"}
	locationKeys   = []string{"location_name", "code_source", "build", "working_directory", "image", "executable_path", "attribute", "container_context", "agent_queue"}
	buildKeys      = []string{"directory", "registry", "dockerfile", "target", "platform", "build_args", "labels", "cache"}
	codeSourceKeys = []string{"package_name", "module_name", "python_file", "autoload_defs_module_name"}
)

// Load reads and validates path. Every problem found is reported, each with
// its file:line.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: path, Msg: "file not found; in the action, set the inputs project_dir and dagster_cloud_yaml_path to where dagster_cloud.yaml is and check out the repository first (actions/checkout); on the command line, pass --location-file"}
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse validates data as the contents of the file named path.
func Parse(path string, data []byte) (*File, error) {
	v := validator{file: path}
	if line, col, ok := invalidUTF8(data); ok {
		return nil, &Error{File: path, Line: line, Msg: fmt.Sprintf("invalid UTF-8 at byte %d of the line; save the file as UTF-8", col)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: path, Msg: "the file is empty; it needs a `locations:` list"}
		}
		line, msg := yamlErrorLine(err)
		return nil, &Error{File: path, Line: line, Msg: "invalid YAML: " + msg}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line, Msg: "the top level must be a mapping with a `locations:` list"}
	}
	v.keys(root, "the top level", topKeys)

	var defaults defaultsSection
	if d := lookup(root, "defaults"); d != nil {
		defaults = v.defaults(d)
	}

	f := &File{Path: path}
	locs := lookup(root, "locations")
	switch {
	case locs == nil:
		v.add(root.Line, "missing required key `locations` (a list of code locations)")
	case locs.Kind != yaml.SequenceNode:
		v.add(locs.Line, "`locations` must be a list of code locations")
	case len(locs.Content) == 0:
		v.add(locs.Line, "`locations` is empty; add at least one code location")
	default:
		seen := map[string]int{}
		for _, n := range locs.Content {
			loc, ok := v.location(n, defaults)
			if !ok {
				continue
			}
			if first, dup := seen[loc.Name]; dup {
				v.add(n.Line, fmt.Sprintf("duplicate location name %q (first defined at line %d)", loc.Name, first))
				continue
			}
			seen[loc.Name] = n.Line
			f.Locations = append(f.Locations, loc)
		}
	}
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return f, nil
}

type validator struct {
	file string
	errs Errors
}

func (v *validator) add(line int, msg string) {
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Msg: msg})
}

func (v *validator) mapping(n *yaml.Node, what string) bool {
	if n.Kind != yaml.MappingNode {
		v.add(n.Line, fmt.Sprintf("`%s` must be a mapping", what))
		return false
	}
	return true
}

func (v *validator) keys(n *yaml.Node, where string, allowed []string) {
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			v.add(k.Line, fmt.Sprintf("unknown key %q in %s (allowed: %s)", k.Value, where, strings.Join(allowed, ", ")))
		}
	}
}

func (v *validator) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		v.add(n.Line, fmt.Sprintf("`%s` must be a string", what))
		return "", false
	}
	// Names, paths and images reach the job log, tags and API paths: a
	// control character there is a mistake or an attempt to forge log
	// lines (a newline followed by a workflow command).
	if i := strings.IndexFunc(n.Value, isControl); i >= 0 {
		v.add(n.Line, fmt.Sprintf("`%s` contains the control character %U at position %d; names, paths and images must be a single line of printable characters", what, []rune(n.Value[i:])[0], utf8.RuneCountInString(n.Value[:i])+1))
		return "", false
	}
	return n.Value, true
}

// isControl reports C0 and C1 control characters, and the Unicode line and
// paragraph separators.
func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

func (v *validator) build(n *yaml.Node, where string) Build {
	var b Build
	if !v.mapping(n, where) {
		return b
	}
	v.keys(n, where, buildKeys)
	for _, f := range []struct {
		key  string
		dst  *string
		line *int
	}{{"directory", &b.Directory, &b.DirectoryLine}, {"dockerfile", &b.Dockerfile, &b.DockerfileLine}, {"target", &b.Target, nil}, {"platform", &b.Platform, nil}} {
		if x := lookup(n, f.key); x != nil {
			*f.dst, _ = v.str(x, where+"."+f.key)
			if f.line != nil {
				*f.line = x.Line
			}
		}
	}
	if r := lookup(n, "registry"); r != nil {
		if s, ok := v.str(r, where+".registry"); ok {
			switch {
			case !strings.Contains(s, "/") && strings.ContainsAny(s, ".:"):
				v.add(r.Line, fmt.Sprintf("`%s` %q is a registry host; add the image repository's path, for example %s/team/app", where+".registry", s, s))
			case strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") || strings.Contains(s, "@"):
				v.add(r.Line, fmt.Sprintf("`%s` %q must be an image repository without a tag or digest (the action adds the tag)", where+".registry", s))
			default:
				b.Registry = s
			}
		}
	}
	b.BuildArgs = v.stringMap(lookup(n, "build_args"), where+".build_args")
	b.Labels = v.stringMap(lookup(n, "labels"), where+".labels")
	if c := lookup(n, "cache"); c != nil {
		var on bool
		if c.Kind != yaml.ScalarNode || c.Decode(&on) != nil {
			v.add(c.Line, fmt.Sprintf("`%s.cache` must be true or false", where))
		} else {
			b.Cache = &on
		}
	}
	return b
}

// stringMap reads a mapping of names to scalar values (build_args: {A: 1}).
func (v *validator) stringMap(n *yaml.Node, what string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		v.add(n.Line, fmt.Sprintf("`%s` must be a mapping of names to values", what))
		return nil
	}
	m := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if val.Kind != yaml.ScalarNode {
			v.add(val.Line, fmt.Sprintf("`%s.%s` must be a single value", what, k.Value))
			continue
		}
		m[k.Value] = val.Value
	}
	return m
}

// defaultsSection is `defaults:`: a build section, and document keys that
// a location without its own takes.
type defaultsSection struct {
	build Build
	doc   map[string]any
	image string
}

func (v *validator) defaults(d *yaml.Node) defaultsSection {
	var ds defaultsSection
	if !v.mapping(d, "defaults") {
		return ds
	}
	v.keys(d, "defaults", defaultsKeys)
	for _, k := range []string{"working_directory", "image", "executable_path", "agent_queue"} {
		if n := lookup(d, k); n != nil {
			if val, ok := v.str(n, "defaults."+k); ok && k == "image" {
				ds.image = val
			}
		}
	}
	if cc := lookup(d, "container_context"); cc != nil {
		v.mapping(cc, "defaults.container_context")
	}
	if b := lookup(d, "build"); b != nil {
		ds.build = v.build(b, "defaults.build")
	}
	if err := d.Decode(&ds.doc); err != nil {
		v.add(d.Line, err.Error())
	}
	delete(ds.doc, "build")
	return ds
}

func (v *validator) location(n *yaml.Node, defaults defaultsSection) (Location, bool) {
	defaultBuild := defaults.build
	loc := Location{Line: n.Line, NeedsBuild: true}
	if !v.mapping(n, "locations[]") {
		return loc, false
	}
	before := len(v.errs)
	nameNode := lookup(n, "location_name")
	where := "location"
	if nameNode == nil {
		v.add(n.Line, "location is missing the required key `location_name`")
	} else if s, ok := v.str(nameNode, "location_name"); ok {
		if s == "" {
			v.add(nameNode.Line, "`location_name` must not be empty")
		}
		loc.Name, where = s, fmt.Sprintf("location %q", s)
	}
	v.keys(n, where, locationKeys)

	cs := lookup(n, "code_source")
	if cs == nil {
		v.add(n.Line, fmt.Sprintf("%s has no `code_source`; set exactly one of %s", where, strings.Join(codeSourceKeys, ", ")))
	} else if v.mapping(cs, where+" code_source") {
		v.keys(cs, where+" code_source", codeSourceKeys)
		var set []string
		for _, k := range codeSourceKeys {
			if c := lookup(cs, k); c != nil {
				if s, ok := v.str(c, "code_source."+k); ok && s != "" {
					set = append(set, k)
				}
			}
		}
		switch len(set) {
		case 0:
			v.add(cs.Line, fmt.Sprintf("%s: code_source needs exactly one of %s", where, strings.Join(codeSourceKeys, ", ")))
		case 1:
		default:
			v.add(cs.Line, fmt.Sprintf("%s: code_source sets %s; only one of them may be defined", where, strings.Join(set, " and ")))
		}
	}
	for _, k := range []string{"working_directory", "image", "executable_path", "attribute", "agent_queue"} {
		if s := lookup(n, k); s != nil {
			val, _ := v.str(s, k)
			if k == "image" {
				loc.Image = val
			}
		}
	}
	if cc := lookup(n, "container_context"); cc != nil {
		v.mapping(cc, where+" container_context")
	}

	loc.Build = defaultBuild
	b := lookup(n, "build")
	if b != nil {
		loc.Build = defaultBuild.merge(v.build(b, where+" build"))
	}
	// Without a build section of its own, a location with an image (its
	// own, or the defaults' when the defaults name no registry) is
	// deployed as it is.
	if b == nil && (loc.Image != "" || defaults.image != "" && defaultBuild.Registry == "") {
		loc.NeedsBuild = false
		loc.Image = orDefault(loc.Image, defaults.image)
	}
	loc.defaults = defaults.doc
	if loc.Build.Directory == "" {
		loc.Build.Directory = "."
	}
	if loc.NeedsBuild && loc.Build.Registry == "" && len(v.errs) == before {
		line := n.Line
		if b != nil {
			line = b.Line
		}
		v.add(line, fmt.Sprintf("%s has no `build.registry`; set it to the image repository to push to (for example `registry: 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-app` or `docker.io/acme/my-app`), or in `defaults.build.registry`", where))
	}
	if len(v.errs) > before {
		return loc, false
	}
	if err := n.Decode(&loc.raw); err != nil {
		v.add(n.Line, err.Error())
		return loc, false
	}
	return loc, true
}

// invalidUTF8 finds the first byte that is not valid UTF-8: its line and
// its byte column, both from 1.
func invalidUTF8(data []byte) (line, col int, found bool) {
	if utf8.Valid(data) {
		return 0, 0, false
	}
	line, start := 1, 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line, i - start + 1, true
		}
		if r == '\n' {
			line, start = line+1, i+1
		}
		i += size
	}
	return line, 1, true
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// yamlErrorLine splits a yaml.v3 syntax error ("yaml: line 3: did not
// find ...") into its line number and message.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		_, msg, _ = strings.Cut(msg, ": ")
	}
	return line, msg
}

// Select returns the locations named in names, in the file's order, or all
// of them when names is empty. An unknown name is an error that lists the
// names the file has.
func (f *File) Select(names []string) ([]Location, error) {
	if len(names) == 0 {
		return f.Locations, nil
	}
	var have []string
	for _, l := range f.Locations {
		have = append(have, l.Name)
	}
	var unknown []string
	for _, n := range names {
		if !slices.Contains(have, n) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, &Error{File: f.Path, Msg: fmt.Sprintf("unknown location name(s) %s: the file defines %s (check the input location_names)",
			quoteAll(unknown), strings.Join(have, ", "))}
	}
	var out []Location
	for _, l := range f.Locations {
		if slices.Contains(names, l.Name) {
			out = append(out, l)
		}
	}
	return out, nil
}

// Document is the location document for the Dagster+ API: the file's entry
// over the `defaults:` keys it lacks, without `build`, with `image` and
// `git` set (dagster-api.md §3.1). The dagster-cloud CLI ignores
// `defaults:` here; applying them is what the file says.
func (l Location) Document(image, commitHash, gitURL string) map[string]any {
	doc := make(map[string]any, len(l.raw)+len(l.defaults)+2)
	for k, v := range l.defaults {
		doc[k] = v
	}
	for k, v := range l.raw {
		doc[k] = v
	}
	delete(doc, "build")
	if image != "" {
		doc["image"] = image
	}
	git := map[string]any{}
	if commitHash != "" {
		git["commit_hash"] = commitHash
	}
	if gitURL != "" {
		git["url"] = gitURL
	}
	doc["git"] = git
	return doc
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// SplitList splits an input of names separated by commas or newlines,
// dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
