// Package config reads and validates dagster_cloud.yaml (and this project's
// dagster_branch_deploy.yaml) and turns its locations into the location
// documents the Dagster+ API takes.
//
// The file is read as dagster-cloud reads it (PyYAML's yaml.safe_load, YAML
// 1.1): anchors, aliases and `<<` merge keys are resolved, plain scalars such
// as yes, off, 0x1F or 1:30 mean what they mean in YAML 1.1 (yaml11.go), and
// `defaults:` is merged into each location as dagster-cloud's
// DagsterCloudConfigDefaultsMerger does (merger.go). Every problem is
// reported with its file:line.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// Build is a location's build settings: the dagster-cloud keys of its
// build section (directory, registry), and the build options that may
// override the action's build inputs for one location. The options come
// from dagster_branch_deploy.yaml (see BuildConfig) or, deprecated, from the
// build section of dagster_cloud.yaml.
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
	// were set, 0 when they were not. DockerfileFile is the file that set
	// the dockerfile when it is not dagster_cloud.yaml (File.Path), else "".
	DirectoryLine, DockerfileLine int
	DockerfileFile                string
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
		b.DockerfileLine, b.DockerfileFile = o.DockerfileLine, o.DockerfileFile
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

// Location is one entry of `locations:` (or the whole of a single-location
// file).
type Location struct {
	Name  string
	Line  int   // line of the entry in the file
	Build Build // with defaults.build and the BuildConfig applied
	// NeedsBuild is false only for an entry that names a prebuilt `image`
	// and has no `build` section: it is deployed as it is.
	NeedsBuild bool
	Image      string // the image of a location that is not built

	doc       map[string]any // the document, `defaults:` merged in, before image and git
	buildLine int            // line of the location's own build section, 0 without one
	// The build settings of dagster_cloud.yaml: defaults.build and the
	// location's build section, kept apart so that a BuildConfig can be
	// layered between them (see ApplyBuildConfig).
	defaultBuild, ownBuild Build
}

// File is a parsed dagster_cloud.yaml.
type File struct {
	Path      string
	Locations []Location
	// SingleLocation is set for a file that is one location's keys, without
	// a `locations:` list (what `dagster-cloud deployment add-location
	// --location-file` also takes).
	SingleLocation bool
	// Warnings are problems that do not stop a deploy (deprecated keys,
	// duplicate keys), each at its file:line.
	Warnings []*Error
}

// Known keys (dagster-cloud-cli config/models.py; unknown keys are errors).
var (
	topKeys        = []string{"defaults", "locations"}
	defaultsKeys   = []string{"build", "working_directory", "image", "executable_path", "container_context", "agent_queue"}
	locationKeys   = []string{"location_name", "code_source", "build", "working_directory", "image", "executable_path", "attribute", "container_context", "agent_queue"}
	buildKeys      = []string{"directory", "registry"}
	codeSourceKeys = []string{"package_name", "module_name", "python_file", "autoload_defs_module_name"}
	// buildOptionKeys are this project's build options: keys of
	// dagster_branch_deploy.yaml, and deprecated in a build section of
	// dagster_cloud.yaml.
	buildOptionKeys = []string{"dockerfile", "target", "platform", "build_args", "labels", "cache"}
)

// Load reads and validates path. Every problem found is reported, each with
// its file:line.
func Load(path string) (*File, error) {
	return LoadLocationFile(path, "")
}

// LoadLocationFile is Load with the name of a location given outside the
// file, as `dagster-cloud deployment add-location NAME --location-file
// FILE` takes it: a single-location file may then omit `location_name`
// (the location takes name), and one that sets a different name is an
// error. For a file with a `locations:` list, name changes nothing (use
// Select).
func LoadLocationFile(path, name string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: path, Msg: "file not found; in the action, set the inputs project_dir and dagster_cloud_yaml_path to where dagster_cloud.yaml is and check out the repository first (actions/checkout); on the command line, pass --location-file"}
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ParseLocationFile(path, data, name)
}

// Parse validates data as the contents of the file named path.
func Parse(path string, data []byte) (*File, error) {
	return ParseLocationFile(path, data, "")
}

// ParseLocationFile is Parse with a location name given outside the file
// (see LoadLocationFile).
func ParseLocationFile(path string, data []byte, name string) (*File, error) {
	if line, col, ok := invalidUTF8(data); ok {
		return nil, &Error{File: path, Line: line, Msg: fmt.Sprintf("invalid UTF-8 at byte %d of the line; save the file as UTF-8", col)}
	}
	root, perr := decodeSingle(path, data)
	if perr != nil {
		return nil, perr
	}
	if root == nil {
		return nil, &Error{File: path, Msg: "the file is empty; it needs a `locations:` list"}
	}
	r := newResolver(path)
	root = r.resolve(root)
	if r.bomb != nil {
		return nil, r.bomb
	}
	if len(r.errs) > 0 {
		return nil, dedupe(r.errs)
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line, Msg: "the top level must be a mapping with a `locations:` list (or the keys of one location)"}
	}
	v := validator{file: path}
	// What PyYAML could not construct (unknown tags, bad numbers, ...).
	load := converter{file: path}
	load.value(root)
	v.errs = append(v.errs, load.errs...)

	f := &File{Path: path}
	var nodes []*yaml.Node // each location's node
	var defaults defaultsSection
	locs := lookup(root, "locations")
	if locs == nil && (name != "" || hasAnyKey(root, locationKeys)) {
		// A single-location file: dagster-cloud's get_location_document
		// takes a file without a `locations` key as one location.
		f.SingleLocation = true
		if loc, ok := v.location(root, defaults, name); ok {
			f.Locations = append(f.Locations, loc)
			nodes = append(nodes, root)
		}
	} else {
		v.keys(root, "the top level", topKeys, nil)
		if d := lookup(root, "defaults"); d != nil && !isNull(d) {
			defaults = v.defaults(d)
		}
		switch {
		case locs == nil:
			v.add(root.Line, "missing required key `locations` (a list of code locations; or, for a file with one location, its keys such as `location_name` and `code_source` at the top level)")
		case locs.Kind != yaml.SequenceNode:
			v.add(locs.Line, "`locations` must be a list of code locations")
		case len(locs.Content) == 0:
			v.add(locs.Line, "`locations` is empty; add at least one code location")
		default:
			seen := map[string]int{}
			for _, n := range locs.Content {
				loc, ok := v.location(n, defaults, "")
				if !ok {
					continue
				}
				if first, dup := seen[loc.Name]; dup {
					v.add(n.Line, fmt.Sprintf("duplicate location name %q (first defined at line %d)", loc.Name, first))
					continue
				}
				seen[loc.Name] = n.Line
				f.Locations = append(f.Locations, loc)
				nodes = append(nodes, n)
			}
		}
	}
	if len(v.errs) == 0 {
		v.documents(r, f, nodes, defaults)
	}
	if len(v.errs) > 0 {
		return nil, dedupe(v.errs)
	}
	f.Warnings = dedupe(append(r.warns, v.warns...))
	return f, nil
}

// documents computes each location's document: its entry with `defaults:`
// merged in as dagster-cloud's defaults merger does.
func (v *validator) documents(r *resolver, f *File, nodes []*yaml.Node, defaults defaultsSection) {
	// Every location gets a copy of the defaults: bound the total.
	total := size{}
	if defaults.node != nil {
		ds := r.sizeOf(defaults.node)
		total = size{ds.nodes * len(nodes), ds.bytes * len(nodes)}
	}
	for _, n := range nodes {
		total = total.add(r.sizeOf(n))
	}
	if total.nodes > maxDocumentNodes || total.bytes > maxDocumentBytes {
		line := 1
		if defaults.node != nil {
			line = defaults.node.Line
		}
		v.add(line, fmt.Sprintf("the location documents (`defaults:` merged into each of the %d locations) would exceed %d nodes or %d MiB; make `defaults:` smaller", len(nodes), maxDocumentNodes, maxDocumentBytes>>20))
		return
	}
	m := merger{file: v.file, conv: &converter{file: v.file}}
	var dflt *yaml.Node
	if defaults.node != nil {
		dflt = removeNone(defaults.node)
	}
	for i, n := range nodes {
		l := &f.Locations[i]
		// merger.py runs only when the file has `defaults:`; it drops None
		// values everywhere (remove_none_recursively) before merging.
		if dflt != nil {
			n = removeNone(n)
			if len(dflt.Content) > 0 {
				m.where = fmt.Sprintf("location %q", l.Name)
				n = m.mergeMapping("", dflt, n)
			}
		}
		// build is never sent (dagster-cloud deletes it too).
		n = withoutKey(n, "build")
		conv := converter{file: v.file, json: true}
		doc, _ := conv.value(n).(map[string]any)
		v.errs = append(v.errs, conv.errs...)
		l.doc = doc
	}
	v.errs = append(v.errs, m.errs...)
}

// withoutKey is the mapping m without the string key key.
func withoutKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; isStringScalar(k) && k.Value == key {
			cp := *m
			cp.Content = slices.Concat(m.Content[:i], m.Content[i+2:])
			return &cp
		}
	}
	return m
}

func hasAnyKey(m *yaml.Node, keys []string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if isStringScalar(m.Content[i]) && slices.Contains(keys, m.Content[i].Value) {
			return true
		}
	}
	return false
}

// dedupe drops repeated problems (an anchor's content is checked wherever
// an alias uses it) and orders them by line.
func dedupe(es []*Error) Errors {
	type key struct {
		file string
		line int
		msg  string
	}
	seen := map[key]bool{}
	var out Errors
	for _, e := range es {
		k := key{e.File, e.Line, e.Msg}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *Error) int { return a.Line - b.Line })
	return out
}

type validator struct {
	file  string
	errs  Errors
	warns []*Error
}

func (v *validator) add(line int, msg string) {
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Msg: msg})
}

func (v *validator) warn(line int, msg string) {
	v.warns = append(v.warns, &Error{File: v.file, Line: line, Msg: msg})
}

func (v *validator) mapping(n *yaml.Node, what string) bool {
	if n.Kind != yaml.MappingNode {
		v.add(n.Line, fmt.Sprintf("`%s` must be a mapping", what))
		return false
	}
	return true
}

// keys reports keys that are neither allowed nor accepted; the message
// lists only the allowed ones.
func (v *validator) keys(n *yaml.Node, where string, allowed, accepted []string) {
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if !isStringScalar(k) || !slices.Contains(allowed, k.Value) && !slices.Contains(accepted, k.Value) {
			v.add(k.Line, fmt.Sprintf("unknown key %q in %s (allowed: %s)", k.Value, where, strings.Join(allowed, ", ")))
		}
	}
}

// str reads a scalar that must be a string. YAML 1.1 types count: an
// unquoted yes, 123 or 1.5 is not a string to dagster-cloud's pydantic
// models or to the Dagster+ API.
func (v *validator) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		v.add(n.Line, fmt.Sprintf("`%s` must be a string", what))
		return "", false
	}
	if !isStringScalar(n) {
		v.add(n.Line, fmt.Sprintf("`%s` must be a string, but YAML 1.1 (PyYAML, which dagster-cloud uses) reads %s as %s; quote it: %q", what, n.Value, typeName(n), n.Value))
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

// optStr reads an optional string: absent or null is "" (pydantic's
// Optional[str]).
func (v *validator) optStr(n *yaml.Node, what string) (string, bool) {
	if n == nil || isNull(n) {
		return "", true
	}
	return v.str(n, what)
}

// boolean reads a YAML 1.1 boolean (true, false, yes, no, on, off, in
// PyYAML's spellings).
func (v *validator) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && nodeTag(n) == tagBool {
		switch strings.ToLower(n.Value) {
		case "true", "yes", "on":
			return true, true
		case "false", "no", "off":
			return false, true
		}
	}
	v.add(n.Line, fmt.Sprintf("`%s` must be true or false", what))
	return false, false
}

// isControl reports C0 and C1 control characters, and the Unicode line and
// paragraph separators.
func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// build reads a build section of dagster_cloud.yaml: directory and
// registry, and the deprecated build options, each with a warning that
// says where in dagster_branch_deploy.yaml it belongs (under moveTo).
func (v *validator) build(n *yaml.Node, where, keyPrefix, moveTo string) Build {
	var b Build
	if !v.mapping(n, where) {
		return b
	}
	v.keys(n, where, buildKeys, buildOptionKeys)
	if x := lookup(n, "directory"); x != nil && !isNull(x) {
		b.Directory, _ = v.str(x, where+".directory")
		b.DirectoryLine = x.Line
	}
	if r := lookup(n, "registry"); r != nil && !isNull(r) {
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
	v.buildOptions(n, where, &b)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; isStringScalar(k) && slices.Contains(buildOptionKeys, k.Value) {
			v.warn(k.Line, fmt.Sprintf("`%s.%s` in %s is deprecated: upstream dagster-cloud rejects unknown build keys; move it to %s under `%s.%s`",
				keyPrefix, k.Value, filepath.Base(v.file), BuildConfigFile, moveTo, k.Value))
		}
	}
	return b
}

// buildOptions reads the build options (buildOptionKeys) of the mapping n
// into b; what names each as where.key.
func (v *validator) buildOptions(n *yaml.Node, where string, b *Build) {
	for _, f := range []struct {
		key  string
		dst  *string
		line *int
	}{{"dockerfile", &b.Dockerfile, &b.DockerfileLine}, {"target", &b.Target, nil}, {"platform", &b.Platform, nil}} {
		if x := lookup(n, f.key); x != nil && !isNull(x) {
			*f.dst, _ = v.str(x, where+"."+f.key)
			if f.line != nil {
				*f.line = x.Line
			}
		}
	}
	b.BuildArgs = v.stringMap(lookup(n, "build_args"), where+".build_args")
	b.Labels = v.stringMap(lookup(n, "labels"), where+".labels")
	if c := lookup(n, "cache"); c != nil && !isNull(c) {
		if on, ok := v.boolean(c, where+".cache"); ok {
			b.Cache = &on
		}
	}
}

// stringMap reads a mapping of names to scalar values (build_args: {A: 1}).
// A value is taken as written (1.0 stays "1.0", yes stays "yes"); null is "".
func (v *validator) stringMap(n *yaml.Node, what string) map[string]string {
	if n == nil || isNull(n) {
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
		if isNull(val) {
			m[k.Value] = ""
			continue
		}
		m[k.Value] = val.Value
	}
	return m
}

// defaultsSection is `defaults:`: a build section, and document keys that
// every location takes unless it sets them.
type defaultsSection struct {
	node  *yaml.Node // the resolved mapping, nil without defaults
	build Build
	image string
}

func (v *validator) defaults(d *yaml.Node) defaultsSection {
	var ds defaultsSection
	if !v.mapping(d, "defaults") {
		return ds
	}
	ds.node = d
	v.keys(d, "defaults", defaultsKeys, nil)
	for _, k := range []string{"working_directory", "image", "executable_path", "agent_queue"} {
		if val, ok := v.optStr(lookup(d, k), "defaults."+k); ok && k == "image" {
			ds.image = val
		}
	}
	if cc := lookup(d, "container_context"); cc != nil && !isNull(cc) {
		v.mapping(cc, "defaults.container_context")
	}
	if b := lookup(d, "build"); b != nil && !isNull(b) {
		ds.build = v.build(b, "defaults.build", "defaults.build", "defaults")
	}
	return ds
}

// location validates one location. name, when set, is the location's name
// given outside the file (single-location files only).
func (v *validator) location(n *yaml.Node, defaults defaultsSection, name string) (Location, bool) {
	defaultBuild := defaults.build
	loc := Location{Line: n.Line, NeedsBuild: true}
	if !v.mapping(n, "locations[]") {
		return loc, false
	}
	before := len(v.errs)
	nameNode := lookup(n, "location_name")
	where := "location"
	switch {
	case nameNode == nil && name != "":
		loc.Name, where = name, fmt.Sprintf("location %q", name)
	case nameNode == nil:
		v.add(n.Line, "location is missing the required key `location_name`")
	default:
		if s, ok := v.str(nameNode, "location_name"); ok {
			switch {
			case s == "":
				v.add(nameNode.Line, "`location_name` must not be empty")
			case name != "" && s != name:
				v.add(nameNode.Line, fmt.Sprintf("the location name given (%s) and the file's location_name (%s) differ (dagster-cloud: \"Name provided via argument and in location file does not match\")", name, s))
			}
			loc.Name, where = s, fmt.Sprintf("location %q", s)
		}
	}
	v.keys(n, where, locationKeys, nil)

	cs := lookup(n, "code_source")
	if cs == nil || isNull(cs) {
		v.add(n.Line, fmt.Sprintf("%s has no `code_source`; set exactly one of %s", where, strings.Join(codeSourceKeys, ", ")))
	} else if v.mapping(cs, where+" code_source") {
		v.keys(cs, where+" code_source", codeSourceKeys, nil)
		var set []string
		for _, k := range codeSourceKeys {
			if s, ok := v.optStr(lookup(cs, k), "code_source."+k); ok && s != "" {
				set = append(set, k)
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
		if val, ok := v.optStr(lookup(n, k), k); ok && k == "image" {
			loc.Image = val
		}
	}
	if cc := lookup(n, "container_context"); cc != nil && !isNull(cc) {
		v.mapping(cc, where+" container_context")
	}

	b := lookup(n, "build")
	if b != nil && isNull(b) {
		b = nil // build: ~ is no build section (pydantic Optional)
	}
	loc.defaultBuild = defaultBuild
	if b != nil {
		loc.buildLine = b.Line
		moveTo := "locations." + loc.Name
		if loc.Name == "" {
			moveTo = "locations.<location_name>"
		}
		loc.ownBuild = v.build(b, where+" build", "build", moveTo)
	}
	loc.layerBuild(nil)
	// Without a build section of its own, a location with an image (its
	// own, or the defaults' when the defaults name no registry) is
	// deployed as it is.
	if b == nil && (loc.Image != "" || defaults.image != "" && defaultBuild.Registry == "") {
		loc.NeedsBuild = false
		loc.Image = orDefault(loc.Image, defaults.image)
	}
	return loc, len(v.errs) == before
}

// CheckBuildable reports why l cannot be built: a location that is built
// needs a build.registry (its own, or defaults.build.registry) to push to.
// dagster-cloud itself never needs one (a location deployed with an image
// of its own has none), so Parse does not require it; call this for the
// locations you build. It returns nil when l is deployed unbuilt.
func (f *File) CheckBuildable(l Location) error {
	if !l.NeedsBuild || l.Build.Registry != "" {
		return nil
	}
	line := orLine(l.buildLine, l.Line)
	where := fmt.Sprintf("location %q", l.Name)
	return &Error{File: f.Path, Line: line, Msg: fmt.Sprintf("%s has no `build.registry`; set it to the image repository to push to (for example `registry: 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-app` or `docker.io/acme/my-app`), or in `defaults.build.registry`", where)}
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
// with the `defaults:` keys merged in (as dagster-cloud's defaults merger
// does, see merger.go), without `build`, with `image` and `git` set
// (dagster-api.md §3.1). Values are what PyYAML loads (YAML 1.1: `yes` is
// true), as JSON-able Go values; mapping keys are strings, as json.dumps
// writes them. `dagster-cloud ci deploy` and `deployment add-location`
// ignore `defaults:`; applying them is what the file says.
func (l Location) Document(image, commitHash, gitURL string) map[string]any {
	doc := make(map[string]any, len(l.doc)+2)
	for k, v := range l.doc {
		doc[k] = v
	}
	delete(doc, "build")
	if l.Name != "" {
		doc["location_name"] = l.Name
	}
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
