package gitlab

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
)

// MaxDotenvBytes is GitLab's default limit on a dotenv report: the file
// must be smaller than 5 KiB (the instance limit dotenv_size; GitLab
// refuses the whole report, and the job's artifacts, when it is larger).
const MaxDotenvBytes = 5 * 1024

// DotenvNames maps the action's outputs to the variables the dotenv report
// sets, in the order they are written: the small ones first, so that they
// fit even when the images do not.
var DotenvNames = []struct{ Output, Variable string }{
	{"deployment", "DAGSTER_DEPLOYMENT"},
	{"deployment_url", "DAGSTER_DEPLOYMENT_URL"},
	{"status", "DAGSTER_STATUS"},
	{"images", "DAGSTER_IMAGES"},
}

// writeDotenv writes outs as a dotenv report (artifacts:reports:dotenv).
//
// GitLab reads the report line by line as KEY=VALUE, splits at the first
// "=", strips white space around both, and takes quotes literally (no
// unquoting, escapes or expansion); keys are [A-Za-z0-9_]; a line it cannot
// read, or a file of 5 KiB or more, fails the whole report. So values are
// written as they are, unquoted: one with a line break or another control
// character is refused (it would become a second line), white space
// around a value is trimmed (GitLab would drop it anyway), an empty value
// is left out (an unset variable reads the same in a job's shell), and a
// variable that would take the file to the size limit is left out. The
// file is written with what is valid; what was left out is in the error.
func writeDotenv(path string, outs []platform.Output) error {
	values := map[string]string{}
	for _, o := range outs {
		values[o.Name] = o.Value
	}
	var b strings.Builder
	var errs []error
	for _, n := range DotenvNames {
		v, ok := values[n.Output]
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			continue
		case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
			errs = append(errs, fmt.Errorf("%s was left out of the dotenv report: its value has a line break or another control character", n.Variable))
			continue
		}
		line := n.Variable + "=" + v + "\n"
		if b.Len()+len(line) >= MaxDotenvBytes {
			errs = append(errs, fmt.Errorf("%s was left out of the dotenv report: with it the file would reach GitLab's limit of %d bytes", n.Variable, MaxDotenvBytes))
			continue
		}
		b.WriteString(line)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing the dotenv report: %w", err)
	}
	return errors.Join(errs...)
}
