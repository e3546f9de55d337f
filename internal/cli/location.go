package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
)

// defaultLoadTimeout is dagster-cloud's DEFAULT_LOCATION_LOAD_TIMEOUT.
const defaultLoadTimeout = 3600

// newLocationGroups returns `deployment` and its hidden alias `workspace`,
// each with add-location and update-location (dagster-cloud's
// commands/workspace, which the CLI also mounts under `deployment`).
func (a *app) newLocationGroups() []*cobra.Command {
	dep := a.group("deployment", "Manage the code locations of a Dagster+ deployment.", false)
	ws := a.group("workspace", "Manage the code locations of a Dagster+ deployment (the old name of `deployment`).", true)
	for _, g := range []*cobra.Command{dep, ws} {
		g.AddCommand(
			a.newAddLocationCmd("add-location", "Add or update a code location's image and wait for it to load."),
			a.newAddLocationCmd("update-location", "Update a code location's image and wait for it to load (as add-location)."),
		)
	}
	return []*cobra.Command{dep, ws}
}

// locationFlags are the flags that describe a code location
// (config_utils.py DEPLOYMENT_METADATA_OPTIONS and LOCATION_FILE_OPTIONS).
type locationFlags struct {
	file, name, image, pythonFile, workingDirectory, packageName, moduleName string
	autoloadDefs, executablePath, attribute, commitHash, gitURL              string
}

// newAddLocationCmd is `dagster-cloud deployment add-location` (and
// update-location, which does the same).
func (a *app) newAddLocationCmd(use, short string) *cobra.Command {
	var (
		c          conn
		url        string
		deployment string
		load       int
		heartbeat  int
		lf         locationFlags
	)
	s := &spec{
		args: "[LOCATION]",
		help: `Add or update a code location in a deployment and wait for the agent to load it.

The location's document is its entry in --location-file (a dagster_cloud.yaml
with several locations, or a file with one), or only the flags when there is
no file. The flags override the file's values; the file's build section is
not sent. LOCATION, or else --location-name, names the location.`,
	}
	s.opts = append(c.opts(),
		&opt{names: []string{"--url"}, metavar: "TEXT", hidden: true, value: &stringValue{p: &url},
			help: "Deprecated: the deployment's URL, https://<organization>.dagster.cloud/<deployment>, used as it is (env " + envURL + ")."},
		strOpt(&deployment, "TEXT", "The deployment to add the location to (env "+envDeployment+").", "--deployment"),
		&opt{names: []string{"--location-load-timeout"}, metavar: "INTEGER", value: &intValue{p: &load}, deflt: strconv.Itoa(defaultLoadTimeout),
			help: "Seconds to wait for the location to load before failing (env " + envLoadTimeout + ")."},
		&opt{names: []string{"--agent-heartbeat-timeout", "--agent-timeout"}, metavar: "INTEGER", value: &intValue{p: &heartbeat},
			help: "Seconds to wait for a running agent before failing; by default there is no such limit (env " + envHeartbeat + ")."},
		pathOpt(&lf.file, true, "A YAML file describing the location: a dagster_cloud.yaml, or one location's document.", "--location-file", "--from"),
		strOpt(&lf.name, "TEXT", "The location's name.", "--location-name"),
		strOpt(&lf.image, "TEXT", "The Docker image to run the location with.", "--image"),
		pathOpt(&lf.pythonFile, false, "The Python file that defines the location's definitions.", "--python-file", "-f"),
		strOpt(&lf.packageName, "TEXT", "The Python package that defines the location's definitions.", "--package-name", "-p"),
		strOpt(&lf.moduleName, "TEXT", "The Python module that defines the location's definitions.", "--module-name", "-m"),
		strOpt(&lf.autoloadDefs, "TEXT", "The Python module to load Definitions from, recursively.", "--autoload-defs-module-name"),
		strOpt(&lf.workingDirectory, "TEXT", "The directory local imports are relative to.", "--working-directory", "-d"),
		strOpt(&lf.executablePath, "TEXT", "The Python executable that loads the location.", "--executable-path"),
		strOpt(&lf.attribute, "TEXT", "The attribute that is the repository, or a function returning it.", "--attribute", "-a"),
		strOpt(&lf.commitHash, "TEXT", "The commit the location was built from, shown in Dagster+.", "--commit-hash"),
		strOpt(&lf.gitURL, "TEXT", "A web address of the location's source code, shown in Dagster+.", "--git-url"),
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf(cmd, "Got unexpected extra argument (%s)", strings.Join(args[1:], " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c.resolve(a.stdio)
			url = orEnv(a.stdio, url, envURL)
			deployment = orEnv(a.stdio, deployment, envDeployment)
			if url == "" && c.organization != "" && deployment != "" {
				url = orgURL(a.stdio, c.organization) + "/" + deployment
			}
			switch {
			case c.apiToken == "":
				return errNoToken
			case url == "" && c.organization == "":
				return errNoOrganization
			case url == "":
				return errNoDeployment
			}
			loadTimeout, err := timeoutSeconds(a.stdio, cmd, "--location-load-timeout", load, envLoadTimeout, defaultLoadTimeout)
			if err != nil {
				return err
			}
			heartbeatTimeout, err := timeoutSeconds(a.stdio, cmd, "--agent-heartbeat-timeout", heartbeat, envHeartbeat, 0)
			if err != nil {
				return err
			}
			base, scope, err := deploymentScope(url, deployment)
			if err != nil {
				return err
			}
			var name string
			if len(args) == 1 {
				name = args[0]
			}
			doc, err := locationDocument(name, lf, func(flag string) bool { return cmd.Flags().Changed(flag) })
			if err != nil {
				return err
			}
			locName, _ := doc["location_name"].(string)
			if locName == "" {
				return fmt.Errorf("the location has no location_name: pass LOCATION or --location-name")
			}

			out := a.stdio.Stdout
			client := newClient(base, c.apiToken, waitLogf(out, a.stdio.Stderr))
			if _, err := client.AddOrUpdateLocation(cmd.Context(), scope, doc); err != nil {
				return err
			}
			fmt.Fprintf(out, "Added or updated location %s.\n", locName)
			fmt.Fprintf(out, "View the status of your locations at %s/locations.\n\n", strings.TrimRight(url, "/"))
			fmt.Fprintf(out, "Waiting for agent to sync changes to %s...\n", locName)
			if loadTimeout <= 0 {
				if heartbeatTimeout <= 0 {
					return nil
				}
				return errors.New("Timed out waiting for location data to update.")
			}
			_, err = client.WaitForLoad(cmd.Context(), scope, []string{locName}, dagster.WaitOptions{
				LocationLoadTimeout: loadTimeout, AgentHeartbeatTimeout: heartbeatTimeout,
			})
			var le *dagster.LoadError
			if errors.As(err, &le) {
				return loadFailure(le)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Agent synced changes to %s. Changes should now be visible in Dagster Cloud.\n", locName)
			return nil
		},
	}
	a.register(cmd, s)
	return cmd
}

// waitLogf routes the client's messages: "Still waiting …", which
// dagster-cloud prints on stdout, goes to out; the client's own start and
// end lines are replaced by dagster-cloud's (printed by the command); the
// rest (retries, maintenance) goes to errOut.
func waitLogf(out, errOut io.Writer) func(string, ...any) {
	return func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		switch {
		case strings.HasPrefix(msg, "Still waiting for agent to sync changes"):
			fmt.Fprintln(out, msg)
		case strings.HasPrefix(msg, "Waiting for the Dagster+ agent to sync"), strings.HasPrefix(msg, "Agent synced changes"):
		default:
			fmt.Fprintln(errOut, msg)
		}
	}
}

// loadFailure is dagster-cloud's message for locations that loaded with an
// error.
func loadFailure(le *dagster.LoadError) error {
	var b strings.Builder
	b.WriteString("Some locations failed to load after being synced by the agent:")
	for _, r := range le.Results {
		if r.Error != "" {
			fmt.Fprintf(&b, "\nError loading %s:\n%s", r.Name, r.Error)
		}
	}
	return errors.New(b.String())
}

// timeoutSeconds is a timeout from its flag, else its environment
// variable, else def (0: none), in whole seconds as dagster-cloud reads it.
func timeoutSeconds(stdio IO, cmd *cobra.Command, flag string, value int, env string, def int) (time.Duration, error) {
	if cmd.Flags().Changed(strings.TrimPrefix(flag, "--")) {
		return time.Duration(max(value, 0)) * time.Second, nil
	}
	v := strings.TrimSpace(stdio.Getenv(env))
	if v == "" {
		return time.Duration(def) * time.Second, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%s is not a whole number of seconds", env, pyRepr(v))
	}
	return time.Duration(max(n, 0)) * time.Second, nil
}

// locationDocument builds the location document as dagster-cloud's
// get_location_document does: the file's entry for the location (or the
// file itself when it describes one location), without `build`, deep-merged
// with the document the flags describe. name is the LOCATION argument;
// changed reports whether a flag was given (a flag given as "" is sent as
// "", one not given is not sent).
func locationDocument(name string, lf locationFlags, changed func(string) bool) (map[string]any, error) {
	if name == "" {
		name = lf.name
	}
	if lf.file == "" && name == "" {
		return nil, errors.New("No location name provided. You must either provide a location file with the `--location-file/--from` flag or specify the location name as an argument.")
	}
	fromFile := map[string]any{}
	if lf.file != "" {
		doc, err := readLocationFile(lf.file)
		if err != nil {
			return nil, err
		}
		if locs, ok := doc["locations"]; ok {
			entry, err := selectLocation(lf.file, locs, name)
			if err != nil {
				return nil, err
			}
			fromFile = entry
		} else {
			if fileName, _ := doc["location_name"].(string); name != "" && fileName != "" && fileName != name {
				return nil, fmt.Errorf("Name provided via argument and in location file does not match, %s =/= %s.", name, fileName)
			}
			fromFile = doc
		}
	}
	delete(fromFile, "build")

	set := func(m map[string]any, key, flag, value string) {
		if changed(flag) {
			m[key] = value
		}
	}
	fromFlags := map[string]any{}
	if name != "" {
		fromFlags["location_name"] = name
	}
	codeSource := map[string]any{}
	if changed("python-file") {
		codeSource["python_file"] = purePath(lf.pythonFile)
	}
	set(codeSource, "module_name", "module-name", lf.moduleName)
	set(codeSource, "package_name", "package-name", lf.packageName)
	set(codeSource, "autoload_defs_module_name", "autoload-defs-module-name", lf.autoloadDefs)
	fromFlags["code_source"] = codeSource
	set(fromFlags, "working_directory", "working-directory", lf.workingDirectory)
	set(fromFlags, "image", "image", lf.image)
	set(fromFlags, "executable_path", "executable-path", lf.executablePath)
	set(fromFlags, "attribute", "attribute", lf.attribute)
	git := map[string]any{}
	set(git, "commit_hash", "commit-hash", lf.commitHash)
	set(git, "url", "git-url", lf.gitURL)
	fromFlags["git"] = git
	return deepMerge(fromFile, fromFlags), nil
}

// readLocationFile reads a YAML file as dagster-cloud's PyYAML does
// (anchors, aliases and merge keys resolved, YAML 1.1 scalars, keys as
// json.dumps writes them), without validating it: add-location sends the
// entry as it is.
func readLocationFile(path string) (map[string]any, error) {
	v, err := config.ReadYAML(path)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a location file must be a mapping (a dagster_cloud.yaml with `locations:`, or one location's keys)", path)
	}
	return m, nil
}

// selectLocation returns the entry of locations called name. Without a
// name, a file with a single location gives that one.
func selectLocation(path string, locations any, name string) (map[string]any, error) {
	list, ok := locations.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: `locations` must be a list of locations", path)
	}
	byName := map[string]map[string]any{}
	var names []string
	for i, l := range list {
		entry, ok := l.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: locations[%d] must be a mapping", path, i)
		}
		n, _ := entry["location_name"].(string)
		if n == "" {
			return nil, fmt.Errorf("%s: locations[%d] has no location_name", path, i)
		}
		if _, dup := byName[n]; !dup {
			names = append(names, n)
		}
		byName[n] = entry // the last entry of a name wins, as in dagster-cloud
	}
	if name == "" {
		if len(names) == 1 {
			return byName[names[0]], nil
		}
		return nil, errors.New("If specifying a file with multiple locations, must specify a location name.")
	}
	entry, ok := byName[name]
	if !ok {
		return nil, fmt.Errorf("No location with name %s defined in location file.", name)
	}
	return entry, nil
}

// deepMerge returns onto with from merged in: mappings are merged key by
// key, anything else in from replaces onto's value (dagster's
// deep_merge_dicts).
func deepMerge(onto, from map[string]any) map[string]any {
	out := make(map[string]any, len(onto)+len(from))
	for k, v := range onto {
		out[k] = v
	}
	for k, v := range from {
		fm, fromIsMap := v.(map[string]any)
		om, ontoIsMap := out[k].(map[string]any)
		if fromIsMap && ontoIsMap {
			out[k] = deepMerge(om, fm)
			continue
		}
		out[k] = v
	}
	return out
}

// purePath renders a path as Python's pathlib does (str(Path(p))): empty
// and "." components dropped, no trailing slash.
func purePath(p string) string {
	if p == "" {
		return "."
	}
	var parts []string
	for _, part := range strings.Split(p, "/") {
		if part != "" && part != "." {
			parts = append(parts, part)
		}
	}
	out := strings.Join(parts, "/")
	if strings.HasPrefix(p, "/") {
		return "/" + out
	}
	if out == "" {
		return "."
	}
	return out
}
