package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// BuildConfigFile is the name of this project's own configuration file,
// next to dagster_cloud.yaml. It holds the build options that upstream
// dagster-cloud does not know, which in dagster_cloud.yaml would make the
// file invalid for dagster-cloud (its models forbid unknown build keys):
//
//	defaults:            # optional, for every location
//	  dockerfile: docker/Dockerfile
//	  target: runtime
//	  platform: linux/amd64
//	  build_args: {A: "1"}
//	  labels: {team: data}
//	  cache: true
//	locations:           # optional, by location_name
//	  etl:
//	    dockerfile: docker/Dockerfile.etl
const BuildConfigFile = "dagster_branch_deploy.yaml"

// BuildConfig is a parsed dagster_branch_deploy.yaml. Only the build-option
// fields of its Builds are set (Dockerfile, Target, Platform, BuildArgs,
// Labels, Cache, DockerfileLine and DockerfileFile).
type BuildConfig struct {
	Path      string
	Defaults  Build            // for every location
	Locations map[string]Build // by location name
	Warnings  []*Error         // problems that do not stop a deploy (duplicate keys)
}

// BuildConfigPath is where the BuildConfig of the dagster_cloud.yaml at
// dagsterCloudYAML is: dagster_branch_deploy.yaml in the same directory.
func BuildConfigPath(dagsterCloudYAML string) string {
	return filepath.Join(filepath.Dir(dagsterCloudYAML), BuildConfigFile)
}

// LoadBuildConfig reads and validates the BuildConfig at path for the
// locations of f (a location name that f does not define is an error; f
// may be nil to skip that check). A missing file is an empty BuildConfig.
// Apply it with f.ApplyBuildConfig.
func LoadBuildConfig(path string, f *File) (*BuildConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &BuildConfig{Path: path}, nil
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ParseBuildConfig(path, data, f)
}

// ParseBuildConfig validates data as the contents of the BuildConfig at
// path (see LoadBuildConfig). Errors are *Error or Errors, with file:line.
func ParseBuildConfig(path string, data []byte, f *File) (*BuildConfig, error) {
	bc := &BuildConfig{Path: path}
	if line, col, ok := invalidUTF8(data); ok {
		return nil, &Error{File: path, Line: line, Msg: fmt.Sprintf("invalid UTF-8 at byte %d of the line; save the file as UTF-8", col)}
	}
	root, perr := decodeSingle(path, data)
	if perr != nil {
		return nil, perr
	}
	if root == nil {
		return bc, nil
	}
	r := newResolver(path)
	root = r.resolve(root)
	if r.bomb != nil {
		return nil, r.bomb
	}
	if len(r.errs) > 0 {
		return nil, dedupe(r.errs)
	}
	bc.Warnings = dedupe(r.warns)
	if isNull(root) {
		return bc, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: path, Line: root.Line, Msg: "the top level must be a mapping with `defaults:` and/or `locations:`"}
	}
	v := validator{file: path}
	load := converter{file: path}
	load.value(root)
	v.errs = append(v.errs, load.errs...)
	v.keys(root, "the top level", []string{"defaults", "locations"}, nil)
	if d := lookup(root, "defaults"); d != nil && !isNull(d) && v.mapping(d, "defaults") {
		v.keys(d, "defaults", buildOptionKeys, nil)
		v.buildOptions(d, "defaults", &bc.Defaults)
		bc.Defaults.DockerfileFile = fileIf(bc.Defaults.Dockerfile, path)
	}
	if ls := lookup(root, "locations"); ls != nil && !isNull(ls) {
		if ls.Kind != yaml.MappingNode {
			v.add(ls.Line, "`locations` must be a mapping of location names to their build options (etl: {dockerfile: ...}), not "+typeName(ls))
		} else {
			bc.Locations = map[string]Build{}
			var have []string
			if f != nil {
				for _, l := range f.Locations {
					have = append(have, l.Name)
				}
			}
			for i := 0; i+1 < len(ls.Content); i += 2 {
				k, val := ls.Content[i], ls.Content[i+1]
				name, ok := v.str(k, "a location name under locations")
				if !ok {
					continue
				}
				if f != nil && !slices.Contains(have, name) {
					v.add(k.Line, fmt.Sprintf("location %q is not defined in %s (it defines %s)", name, filepath.Base(f.Path), strings.Join(have, ", ")))
					continue
				}
				var b Build
				where := "locations." + name
				if !isNull(val) && v.mapping(val, where) {
					v.keys(val, where, buildOptionKeys, nil)
					v.buildOptions(val, where, &b)
					b.DockerfileFile = fileIf(b.Dockerfile, path)
				}
				bc.Locations[name] = b
			}
		}
	}
	if len(v.errs) > 0 {
		return nil, dedupe(v.errs)
	}
	return bc, nil
}

func fileIf(set, path string) string {
	if set == "" {
		return ""
	}
	return path
}

// ApplyBuildConfig sets every location's Build from dagster_cloud.yaml and
// bc (nil: dagster_cloud.yaml alone). Applying another BuildConfig replaces
// the previous one. From the lowest precedence to the highest:
//
//  1. the action's inputs (applied by the action, under Location.Build);
//  2. defaults.build in dagster_cloud.yaml (deprecated for build options);
//  3. defaults in dagster_branch_deploy.yaml;
//  4. the location's build section in dagster_cloud.yaml (deprecated for
//     build options);
//  5. the location's entry in dagster_branch_deploy.yaml.
//
// That is: the more specific setting wins, and between two equally specific
// ones the new file wins. (Putting all of dagster_cloud.yaml under the new
// file's defaults would let a global default silently override a setting
// that a location makes for itself, in the middle of a migration.) Build
// args and labels are merged name by name along the same order.
func (f *File) ApplyBuildConfig(bc *BuildConfig) {
	for i := range f.Locations {
		f.Locations[i].layerBuild(bc)
	}
}

func (l *Location) layerBuild(bc *BuildConfig) {
	b := l.defaultBuild
	if bc != nil {
		b = b.merge(bc.Defaults)
	}
	b = b.merge(l.ownBuild)
	if bc != nil {
		if o, ok := bc.Locations[l.Name]; ok {
			b = b.merge(o)
		}
	}
	if b.Directory == "" {
		b.Directory = "."
	}
	l.Build = b
}
