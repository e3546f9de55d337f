package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The dagster-cloud CLI is a typer (click) program. Its commands are
// declared here the way click declares them, so that they parse the same
// command lines: an option has several names (--api-token, --user-token,
// -u), a type that checks its value as click's does, and may be required.
// Usage errors exit with status 2 and print click's message; --help prints
// click's layout.

// opt is one option of a dagster-cloud-compatible command.
type opt struct {
	// names as click lists them: long names ("--git-repo-name",
	// "--repo-name") and at most one short name ("-o"). The first long name
	// is the flag's name; the others are aliases.
	names    []string
	metavar  string // TEXT, FLOAT, INTEGER, PATH, [a|b]; "" for a flag
	help     string
	required bool
	hidden   bool
	deflt    string // shown as [default: …]
	value    pflag.Value
	boolp    *bool // for flags (metavar ""): the variable; --no-<name> clears it
}

func (o *opt) long() string {
	for _, n := range o.names {
		if strings.HasPrefix(n, "--") {
			return strings.TrimPrefix(n, "--")
		}
	}
	panic("option without a long name: " + strings.Join(o.names, " "))
}

func (o *opt) short() string {
	for _, n := range o.names {
		if len(n) == 2 && n[0] == '-' {
			return n[1:]
		}
	}
	return ""
}

// hint is click's name for the option in errors: '--a' / '--b'.
func (o *opt) hint() string {
	q := make([]string, len(o.names))
	for i, n := range o.names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, " / ")
}

func strOpt(p *string, metavar, help string, names ...string) *opt {
	return &opt{names: names, metavar: metavar, help: help, value: &stringValue{p: p}}
}

func floatOpt(p *float64, help string, names ...string) *opt {
	return &opt{names: names, metavar: "FLOAT", help: help, value: &floatValue{p: p}}
}

func intOpt(p *int, help string, names ...string) *opt {
	return &opt{names: names, metavar: "INTEGER", help: help, value: &intValue{p: p}}
}

func boolOpt(p *bool, help string, names ...string) *opt {
	return &opt{names: names, help: help, boolp: p}
}

func choiceOpt(p *string, choices []string, help string, names ...string) *opt {
	return &opt{names: names, metavar: "[" + strings.Join(choices, "|") + "]", help: help, value: &choiceValue{p: p, choices: choices}}
}

func pathOpt(p *string, mustExist bool, help string, names ...string) *opt {
	return &opt{names: names, metavar: "PATH", help: help, value: &pathValue{p: p, mustExist: mustExist}}
}

// spec is a dagster-cloud-compatible command: its options, arguments and
// help.
type spec struct {
	args string // usage of the positional arguments, e.g. "[LOCATION]"
	help string // paragraphs separated by blank lines
	opts []*opt
}

// register adds the command's options to cmd: each option is a pflag flag
// under its first long name; its other long names are mapped to it by a
// normalize function. It also installs click's help layout.
func (a *app) register(cmd *cobra.Command, s *spec) {
	a.specs[cmd] = s
	fl := cmd.Flags()
	aliases := map[string]string{}
	for _, o := range s.opts {
		name := o.long()
		if o.boolp != nil {
			// click's --flag/--no-flag pair: the last one given wins.
			fl.VarP(&boolValue{p: o.boolp, to: true}, name, o.short(), o.help)
			fl.Lookup(name).NoOptDefVal = "true"
			fl.Var(&boolValue{p: o.boolp, to: false}, "no-"+name, o.help)
			fl.Lookup("no-" + name).NoOptDefVal = "true"
			_ = fl.MarkHidden("no-" + name)
		} else {
			fl.VarP(o.value, name, o.short(), o.help)
		}
		for _, n := range o.names {
			if alias, ok := strings.CutPrefix(n, "--"); ok && alias != name {
				aliases[alias] = name
			}
		}
	}
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := aliases[name]; ok {
			return pflag.NormalizedName(to)
		}
		return pflag.NormalizedName(name)
	})
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) { a.renderHelp(c.OutOrStdout(), c) })
}

// given reports whether the option was on the command line (under any of
// its names).
func (s *spec) given(cmd *cobra.Command, o *opt) bool {
	return cmd.Flags().Changed(o.long())
}

// checkRequired fails like click for the first required option missing.
func (s *spec) checkRequired(cmd *cobra.Command) error {
	for _, o := range s.opts {
		if o.required && !s.given(cmd, o) {
			return usageErrorf(cmd, "Missing option %s.", o.hint())
		}
	}
	return nil
}

// --- values --------------------------------------------------------------

type stringValue struct{ p *string }

func (v *stringValue) String() string     { return *v.p }
func (v *stringValue) Set(s string) error { *v.p = s; return nil }
func (v *stringValue) Type() string       { return "string" }

// boolValue is one side of a --flag/--no-flag pair: given, it sets *p to
// to.
type boolValue struct {
	p  *bool
	to bool
}

func (v *boolValue) String() string { return "false" }
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%s is not a valid boolean.", pyRepr(s))
	}
	*v.p = b == v.to
	return nil
}
func (v *boolValue) Type() string     { return "bool" }
func (v *boolValue) IsBoolFlag() bool { return true }

type floatValue struct{ p *float64 }

func (v *floatValue) String() string {
	if *v.p == 0 {
		return ""
	}
	return strconv.FormatFloat(*v.p, 'f', -1, 64)
}

func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.ReplaceAll(s, "_", "")), 64)
	if err != nil {
		return fmt.Errorf("%s is not a valid float.", pyRepr(s))
	}
	*v.p = f
	return nil
}
func (v *floatValue) Type() string { return "float" }

type intValue struct{ p *int }

func (v *intValue) String() string { return strconv.Itoa(*v.p) }
func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
	if err != nil {
		return fmt.Errorf("%s is not a valid integer.", pyRepr(s))
	}
	*v.p = n
	return nil
}
func (v *intValue) Type() string { return "int" }

type choiceValue struct {
	p       *string
	choices []string
}

func (v *choiceValue) String() string { return *v.p }
func (v *choiceValue) Set(s string) error {
	for _, c := range v.choices {
		if s == c {
			*v.p = s
			return nil
		}
	}
	q := make([]string, len(v.choices))
	for i, c := range v.choices {
		q[i] = pyRepr(c)
	}
	return fmt.Errorf("%s is not one of %s.", pyRepr(s), strings.Join(q, ", "))
}
func (v *choiceValue) Type() string { return "choice" }

type pathValue struct {
	p         *string
	mustExist bool
}

func (v *pathValue) String() string { return *v.p }
func (v *pathValue) Set(s string) error {
	if v.mustExist {
		if _, err := os.Stat(s); err != nil {
			return fmt.Errorf("Path %s does not exist.", pyRepr(s))
		}
	}
	*v.p = s
	return nil
}
func (v *pathValue) Type() string { return "path" }

// pyRepr quotes s the way Python's repr quotes a str, as click's messages
// show values.
func pyRepr(s string) string {
	quote := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = `"`
	}
	var b strings.Builder
	b.WriteString(quote)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == quote:
			b.WriteString(`\` + quote)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(quote)
	return b.String()
}

// --- usage errors ----------------------------------------------------------

// usageError is a command line click would refuse: it is printed with the
// command's usage, and the process exits with status 2.
type usageError struct {
	cmd      *cobra.Command
	msg      string
	showHelp bool // print the whole help (click's no_args_is_help) before the message
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(cmd *cobra.Command, format string, a ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, a...)}
}

// print writes the error as click does: the usage line, how to get help,
// and the message.
func (a *app) printUsageError(w io.Writer, e *usageError) {
	if e.showHelp {
		a.renderHelp(w, e.cmd)
		if e.msg != "" {
			fmt.Fprintf(w, "\nError: %s\n", e.msg)
		}
		return
	}
	fmt.Fprintf(w, "Usage: %s\nTry '%s -h' for help.\n\nError: %s\n", a.usageLine(e.cmd), e.cmd.CommandPath(), e.msg)
}

// flagError turns pflag's parse errors into click's messages.
func (a *app) flagError(cmd *cobra.Command, err error) error {
	var (
		notExist *pflag.NotExistError
		needsArg *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
	)
	switch {
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		if sh := notExist.GetSpecifiedShortnames(); sh != "" {
			return usageErrorf(cmd, "No such option: -%s", name[:1])
		}
		return usageErrorf(cmd, "No such option: --%s", name)
	case errors.As(err, &needsArg):
		name := "--" + needsArg.GetSpecifiedName()
		if needsArg.GetSpecifiedShortnames() != "" {
			name = "-" + needsArg.GetSpecifiedName()
		}
		return usageErrorf(cmd, "Option '%s' requires an argument.", name)
	case errors.As(err, &invalid):
		hint := "'--" + invalid.GetFlag().Name + "'"
		if o := a.optFor(cmd, invalid.GetFlag().Name); o != nil {
			hint = o.hint()
		}
		return usageErrorf(cmd, "Invalid value for %s: %v", hint, errors.Unwrap(invalid))
	}
	return usageErrorf(cmd, "%s", err)
}

func (a *app) optFor(cmd *cobra.Command, name string) *opt {
	s := a.specs[cmd]
	if s == nil {
		return nil
	}
	for _, o := range s.opts {
		if o.long() == name {
			return o
		}
	}
	return nil
}

// usageLine is click's usage: the command path, [OPTIONS] and the
// arguments.
func (a *app) usageLine(cmd *cobra.Command) string {
	line := cmd.CommandPath() + " [OPTIONS]"
	if s := a.specs[cmd]; s != nil && s.args != "" {
		line += " " + s.args
	} else if cmd.HasAvailableSubCommands() {
		line += " COMMAND [ARGS]..."
	}
	return line
}

// --- help --------------------------------------------------------------------

const helpWidth = 78 // click's width when the output is not a terminal

// renderHelp writes click's help layout for cmd.
func (a *app) renderHelp(w io.Writer, cmd *cobra.Command) {
	s := a.specs[cmd]
	if s == nil {
		s = &spec{}
	}
	fmt.Fprintf(w, "Usage: %s\n", a.usageLine(cmd))
	text := s.help
	if text == "" {
		text = cmd.Long
	}
	if text == "" {
		text = cmd.Short
	}
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		fmt.Fprintln(w)
		for _, line := range wrap(para, helpWidth-2) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	var rows [][2]string
	for _, o := range s.opts {
		if o.hidden {
			continue
		}
		rows = append(rows, [2]string{optionTerm(o), optionHelp(o)})
	}
	rows = append(rows, [2]string{"-h, --help", "Show this message and exit."})
	fmt.Fprintf(w, "\nOptions:\n")
	writeDL(w, rows)
	var cmds [][2]string
	for _, c := range cmd.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		cmds = append(cmds, [2]string{c.Name(), c.Short})
	}
	if len(cmds) > 0 {
		sort.Slice(cmds, func(i, j int) bool { return cmds[i][0] < cmds[j][0] })
		fmt.Fprintf(w, "\nCommands:\n")
		writeDL(w, cmds)
	}
}

// optionTerm is the option's names, short ones first, and its metavar.
func optionTerm(o *opt) string {
	var short, long []string
	for _, n := range o.names {
		if strings.HasPrefix(n, "--") {
			long = append(long, n)
		} else {
			short = append(short, n)
		}
	}
	term := strings.Join(append(short, long...), ", ")
	if o.boolp != nil {
		term += " / --no-" + o.long()
	}
	if o.metavar != "" {
		term += " " + o.metavar
	}
	return term
}

func optionHelp(o *opt) string {
	h := o.help
	var extra []string
	if o.deflt != "" {
		extra = append(extra, "default: "+o.deflt)
	}
	if o.required {
		extra = append(extra, "required")
	}
	if len(extra) > 0 {
		h += "  [" + strings.Join(extra, "; ") + "]"
	}
	return h
}

// writeDL writes a definition list as click's HelpFormatter.write_dl does:
// terms indented by 2, descriptions in a column at most 30 wide plus 2,
// a description on the next line when its term is longer than that.
func writeDL(w io.Writer, rows [][2]string) {
	const indent, colMax, colSpacing = 2, 30, 2
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	first := min(width, colMax) + colSpacing
	textWidth := max(helpWidth-first-2, 10)
	pad := strings.Repeat(" ", indent)
	for _, r := range rows {
		fmt.Fprintf(w, "%s%s", pad, r[0])
		if r[1] == "" {
			fmt.Fprintln(w)
			continue
		}
		if len(r[0]) <= first-colSpacing {
			fmt.Fprint(w, strings.Repeat(" ", first-len(r[0])))
		} else {
			fmt.Fprint(w, "\n"+strings.Repeat(" ", first+indent))
		}
		lines := wrap(r[1], textWidth)
		fmt.Fprintln(w, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", first+indent), l)
		}
	}
}

// wrap breaks text into lines of at most width columns at spaces. Runs of
// spaces inside a line are kept (click writes "help  [required]").
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Split(strings.Join(strings.Fields(strings.ReplaceAll(text, "  [", "\x00[")), " "), " ") {
		word = strings.ReplaceAll(word, "\x00", "  ")
		switch {
		case line == "":
			line = strings.TrimLeft(word, " ")
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = strings.TrimLeft(word, " ")
		}
	}
	return append(lines, line)
}
