package serverless

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// The files of a build directory that shape the generated Dockerfile, as the
// dagster-cloud CLI's serverless Dockerfile looks for them.
const (
	RequirementsTxt = "requirements.txt"
	SetupPy         = "setup.py"
	PyprojectToml   = "pyproject.toml"
	// PreInstallHook runs before the Python dependencies are installed,
	// PostInstallHook after (Dagster+ docs, "Serverless runtime
	// environment": lifecycle hooks). Both run as executables, from the
	// root of the build directory.
	PreInstallHook  = "dagster_cloud_pre_install.sh"
	PostInstallHook = "dagster_cloud_post_install.sh"

	// AppDir is where the code goes in the image (WORKDIR).
	AppDir = "/opt/dagster/app"
)

// EnvVar is an environment variable baked into the image.
type EnvVar struct {
	Name  string
	Value string
}

// Layout is what the generated Dockerfile is made of: the base image and the
// dependency files and hooks present in the build directory.
type Layout struct {
	// PythonVersion selects the default base image python:<version>-slim
	// ("" means DefaultPythonVersion). Ignored with BaseImage.
	PythonVersion string
	// BaseImage is a custom base image; "" means python:<version>-slim.
	// Check it with CheckBaseImage first: Dagster+ may not allow one.
	BaseImage string

	RequirementsTxt bool
	SetupPy         bool
	PyprojectToml   bool
	PreInstallHook  bool
	PostInstallHook bool

	// EnvVars are baked into the image with ENV, in order (see
	// ParseEnvVars).
	EnvVars []EnvVar
}

// HasDependencies reports whether the layout installs Python dependencies
// from the build directory.
func (l Layout) HasDependencies() bool {
	return l.RequirementsTxt || l.SetupPy || l.PyprojectToml
}

// Files names the dependency files and hooks the layout uses, for
// messages.
func (l Layout) Files() []string {
	var out []string
	for _, f := range []struct {
		on   bool
		name string
	}{{l.RequirementsTxt, RequirementsTxt}, {l.SetupPy, SetupPy}, {l.PyprojectToml, PyprojectToml}, {l.PreInstallHook, PreInstallHook}, {l.PostInstallHook, PostInstallHook}} {
		if f.on {
			out = append(out, f.name)
		}
	}
	if len(out) == 0 {
		out = append(out, "no dependency files")
	}
	return out
}

// NoDependenciesError is returned by Dockerfile for a build directory with
// neither requirements.txt, setup.py nor pyproject.toml and the default
// base image: nothing would install dagster-cloud, which Dagster+ runs the
// code with. (`dagster-cloud serverless deploy-docker` refuses such a
// directory too; a custom base image may bring the dependencies.)
type NoDependenciesError struct {
	Dir string // the build directory, if known
}

func (e *NoDependenciesError) Error() string {
	where := "the build directory"
	if e.Dir != "" {
		where = "build directory " + e.Dir
	}
	return fmt.Sprintf("%s has no requirements.txt, setup.py or pyproject.toml: list the Python dependencies of the "+
		"code location there (including the dagster-cloud package), add a Dockerfile to build the image yourself, "+
		"or set base_image to an image that has them", where)
}

// DetectLayout reads which dependency files and hooks the build directory
// dir holds. A file excluded by dir/.dockerignore does not count: it is not
// in the build context. Only PythonVersion, BaseImage and EnvVars are left
// for the caller to set.
func DetectLayout(dir string) (Layout, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return Layout{}, fmt.Errorf("reading build directory: %w", err)
	}
	if !fi.IsDir() {
		return Layout{}, fmt.Errorf("build directory %s is not a directory", dir)
	}
	var excludes []string
	if b, err := os.ReadFile(filepath.Join(dir, ".dockerignore")); err == nil {
		if excludes, err = ignorefile.ReadAll(bytes.NewReader(b)); err != nil {
			return Layout{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, ".dockerignore"), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Layout{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, ".dockerignore"), err)
	}
	var pm *patternmatcher.PatternMatcher
	if len(excludes) > 0 {
		if pm, err = patternmatcher.New(excludes); err != nil {
			return Layout{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, ".dockerignore"), err)
		}
	}
	present := func(name string) (bool, error) {
		fi, err := os.Lstat(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("reading build directory: %w", err)
		case fi.IsDir():
			return false, nil
		}
		if pm != nil {
			if ignored, err := pm.MatchesOrParentMatches(name); err != nil || ignored {
				return false, err
			}
		}
		return true, nil
	}
	var l Layout
	for _, f := range []struct {
		name string
		dst  *bool
	}{
		{RequirementsTxt, &l.RequirementsTxt}, {SetupPy, &l.SetupPy}, {PyprojectToml, &l.PyprojectToml},
		{PreInstallHook, &l.PreInstallHook}, {PostInstallHook, &l.PostInstallHook},
	} {
		if *f.dst, err = present(f.name); err != nil {
			return Layout{}, err
		}
	}
	return l, nil
}

// CustomBaseNotAllowedError is returned by CheckBaseImage when a custom base
// image is set but Dagster+ does not allow custom base images for the
// organization (registryAllowCustomBase false or null).
type CustomBaseNotAllowedError struct {
	BaseImage string
}

func (e *CustomBaseNotAllowedError) Error() string {
	return fmt.Sprintf("base_image is %q, but Dagster+ does not allow custom base images for this organization "+
		"(registryAllowCustomBase is false), so nothing was built: remove base_image to build FROM the default "+
		"python:<python_version>-slim, or ask Dagster+ to enable custom base images for the organization",
		e.BaseImage)
}

// CheckBaseImage applies the custom base image rule before any build: a
// custom base image (baseImage != "") needs allowCustomBase
// (registryAllowCustomBase). It also checks that baseImage is an image
// reference.
//
// Upstream does not fail here: `dagster-cloud serverless build` warns
// "Custom base images are not enabled for this organization." and builds
// FROM the default base, and the action's copy_template step prints that it
// is "defaulting to python:3.8-slim". This package stops instead, before any
// build, so that the image is never silently built from a base other than
// the one configured.
func CheckBaseImage(baseImage string, allowCustomBase bool) error {
	if baseImage == "" {
		return nil
	}
	if err := validBaseImage(baseImage); err != nil {
		return err
	}
	if !allowCustomBase {
		return &CustomBaseNotAllowedError{BaseImage: baseImage}
	}
	return nil
}

func validBaseImage(s string) error {
	if strings.TrimSpace(s) != s || s == "" {
		return fmt.Errorf("base_image %q is not an image reference", s)
	}
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return fmt.Errorf("base_image %q is not an image reference: %v", s, err)
	}
	return nil
}

var pythonVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)

// CheckPythonVersion checks a python_version: major.minor, or
// major.minor.patch (python:<version>-slim images exist for both).
func CheckPythonVersion(v string) error {
	if !pythonVersion.MatchString(v) {
		return fmt.Errorf("python_version %q is not a Python version such as %s", v, DefaultPythonVersion)
	}
	return nil
}

// envName is a portable environment variable name, plus "." and "-" that
// Docker accepts too.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

func checkEnvVar(e EnvVar) error {
	if !envName.MatchString(e.Name) {
		return fmt.Errorf("env_vars: %q is not an environment variable name (letters, digits and _, not starting with a digit)", e.Name)
	}
	if strings.ContainsAny(e.Value, "\r\n\x00") {
		// The value is not quoted: it may be a secret.
		return fmt.Errorf("env_vars: the value of %s has a line break or NUL, which a Dockerfile ENV cannot hold", e.Name)
	}
	return nil
}

// ParseEnvVars reads the env_vars input: a JSON object of names to values
// (the dagster-cloud action's env_vars, e.g. `${{ toJson(secrets) }}`), or
// NAME=VALUE lines (one per line, as the dagster-cloud CLI's repeated
// --env; blank lines and lines starting with # are skipped). Order is kept;
// a name given twice keeps its first position and its last value (as a
// Python dict does). JSON strings, numbers and booleans are accepted
// (booleans become true/false, where the action's Python would write
// True/False); null, objects and arrays are errors. Errors never quote
// values: they may be secrets.
func ParseEnvVars(s string) ([]EnvVar, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var vars []EnvVar
	set := func(name, value string) {
		for i := range vars {
			if vars[i].Name == name {
				vars[i].Value = value
				return
			}
		}
		vars = append(vars, EnvVar{Name: name, Value: value})
	}
	if strings.HasPrefix(s, "{") {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if _, err := dec.Token(); err != nil {
			return nil, errors.New("env_vars is not a JSON object")
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, errors.New("env_vars is not a valid JSON object")
			}
			name, _ := tok.(string)
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("env_vars: the value of %q is not valid JSON", name)
			}
			var value string
			switch x := v.(type) {
			case string:
				value = x
			case json.Number:
				value = x.String()
			case bool:
				value = fmt.Sprint(x)
			default:
				return nil, fmt.Errorf("env_vars: the value of %q must be a string, number or boolean", name)
			}
			set(name, value)
		}
		if _, err := dec.Token(); err != nil {
			return nil, errors.New("env_vars is not a valid JSON object")
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("env_vars has more after its JSON object")
		}
	} else {
		for i, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, value, ok := strings.Cut(line, "=")
			if name = strings.TrimSpace(name); !ok || name == "" {
				return nil, fmt.Errorf("env_vars: line %d is not NAME=VALUE (or give a JSON object)", i+1)
			}
			set(name, value)
		}
	}
	for _, e := range vars {
		if err := checkEnvVar(e); err != nil {
			return nil, err
		}
	}
	return vars, nil
}

// Dockerfile generates the Dockerfile of a code location that has none, with
// the layout of the dagster-cloud CLI's serverless Dockerfile
// (commands/serverless/Dockerfile, templated by docker_utils):
//
//  1. FROM python:<version>-slim, or the custom base image;
//  2. the env_vars as ENV, right after FROM, where the dagster-cloud
//     action's copy_template step puts them (so the hooks and pip see
//     them too);
//  3. the pre-install hook and the dependency files copied to / before the
//     code, so that the install layers stay cached until one of them
//     changes; the pre-install hook runs; with setup.py or pyproject.toml,
//     `pip install .` installs the dependencies (upstream copies
//     requirements.txt there too, but installs it only in step 5, so with
//     requirements.txt alone nothing is copied early);
//  4. WORKDIR /opt/dagster/app and COPY of the build directory;
//  5. with requirements.txt, `pip install -r requirements.txt` (after the
//     code, as upstream, so that editable installs such as `-e .` work);
//     then the post-install hook;
//  6. a check that dagster-cloud is installed, which fails the build with
//     an explanation otherwise.
//
// Differences from upstream, on purpose: the steps are generated for the
// files present (upstream's template copies with globs and tests each file
// in the shell), the hooks and `pip install .` run with WORKDIR / set
// explicitly (upstream relies on the base image's working directory, which
// a custom base may change), the hooks are made executable before they run,
// and ENV values are quoted, literally (upstream writes `ENV k=v` raw, so a
// value with a space or a quote breaks the Dockerfile and `$x` is
// expanded).
//
// A layout without dependency files and without a custom base image is
// refused with a *NoDependenciesError.
func Dockerfile(l Layout) ([]byte, error) {
	base := l.BaseImage
	if base == "" {
		v := l.PythonVersion
		if v == "" {
			v = DefaultPythonVersion
		}
		if err := CheckPythonVersion(v); err != nil {
			return nil, err
		}
		if !l.HasDependencies() {
			return nil, &NoDependenciesError{}
		}
		base = "python:" + v + "-slim"
	} else if err := validBaseImage(base); err != nil {
		return nil, err
	}
	for _, e := range l.EnvVars {
		if err := checkEnvVar(e); err != nil {
			return nil, err
		}
	}

	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Generated by dagster-branch-deploy for a Dagster+ Serverless code location without a")
	line("# Dockerfile, in the layout of the dagster-cloud CLI's serverless image. To change the")
	line("# image, add a Dockerfile to the location's build directory.")
	line("FROM %s", base)
	if len(l.EnvVars) > 0 {
		line("")
		for _, e := range l.EnvVars {
			line("ENV %s=%s", e.Name, quoteEnvValue(e.Value))
		}
	}

	if early := l.earlyFiles(); len(early) > 0 {
		line("")
		line("# Dependency files before the code: the install layers stay cached until one of them changes.")
		line("WORKDIR /")
		line("COPY %s /", strings.Join(early, " "))
		if l.PreInstallHook {
			line("RUN chmod +x ./%[1]s && ./%[1]s", PreInstallHook)
		}
		if l.SetupPy || l.PyprojectToml {
			line("RUN pip install .")
		}
	}

	line("")
	line("WORKDIR %s", AppDir)
	line("COPY . %s", AppDir)
	if l.RequirementsTxt {
		line("RUN pip install -r %s", RequirementsTxt)
	}
	if l.PostInstallHook {
		line("RUN chmod +x ./%[1]s && ./%[1]s", PostInstallHook)
	}

	line("")
	line("# Dagster+ runs the code location with dagster-cloud: fail the build here if it is missing.")
	line(`RUN dagster-cloud --version || { echo "dagster-cloud is not installed in this image: add the dagster-cloud package to requirements.txt, setup.py or pyproject.toml (or to the base image)." >&2; exit 1; }`)
	return []byte(b.String()), nil
}

// earlyFiles are the files copied to / before the code: the pre-install
// hook and the files `pip install .` reads, with requirements.txt (a
// setup.py often reads it, and the hook may use it). Nothing is copied early
// when nothing runs before the code is copied: requirements.txt alone is
// installed after the code, as upstream does (an editable `-e .` in it
// needs the code).
func (l Layout) earlyFiles() []string {
	if !l.PreInstallHook && !l.SetupPy && !l.PyprojectToml {
		return nil
	}
	var early []string
	for _, f := range []struct {
		present bool
		name    string
	}{{l.PreInstallHook, PreInstallHook}, {l.SetupPy, SetupPy}, {l.PyprojectToml, PyprojectToml}, {l.RequirementsTxt, RequirementsTxt}} {
		if f.present {
			early = append(early, f.name)
		}
	}
	return early
}

// quoteEnvValue quotes an ENV value for a Dockerfile: in double quotes, with
// \, " and $ escaped, so that the value is taken literally.
func quoteEnvValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`)
	return `"` + r.Replace(v) + `"`
}
