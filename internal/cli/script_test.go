package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/tlsproxy"
)

// The scripts in testdata/script run the real command line: `exec
// dagster-branch-deploy …` runs this test binary as the program (TestMain
// registers it), in a fresh process whose environment is the script's.
// Each script gets its own Dagster+ emulator, reachable at the real
// https://<org>.dagster.cloud through tlsproxy: SSL_CERT_FILE trusts the
// test CA and HTTPS_PROXY routes the requests, so commands run verbatim,
// with --organization and no URL override.
//
// The emulator knows the organization $ORG (acme) and accepts the token
// $TOKEN. Custom commands:
//
//	status N                    check the exit status of the last dagster-branch-deploy run
//	dagster-state [deployment]  print the emulator's state (or one deployment) as JSON
//	dagster-requests [op]       print the requests received: op, host path, deployment header, variables
//	dagster-emu agent-down | fail-location NAME MESSAGE
//	proxy-connects              print the hosts the proxy tunnelled to
//	capture VAR                 set VAR to the last stdout as $(...) would (trailing newlines removed)
//	gitinit                     create a git repository in the current directory
//	gitcommit [-author 'N <e>'] [-date UNIX] -m MSG [FILE...]
//	                            commit FILEs; print the commit's hash

var update = flag.Bool("update", false, "rewrite the cmp golden files of testdata/script")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"dagster-branch-deploy": func() {
			code := Main(context.Background(), os.Args[1:], Default())
			if f := os.Getenv(statusFileEnv); f != "" {
				// For the script's `status` command.
				if err := os.WriteFile(f, []byte(strconv.Itoa(code)), 0o644); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(125)
				}
			}
			os.Exit(code)
		},
	})
}

// statusFileEnv names the file where the program run by a script records
// its exit status.
const statusFileEnv = "CLI_TEST_STATUS_FILE"

type scriptKey string

const (
	emuKey   scriptKey = "emulator"
	proxyKey scriptKey = "proxy"
)

const (
	scriptOrg   = "acme"
	scriptToken = "token-acme-5ecret"
)

func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *update,
		Setup: func(env *testscript.Env) error {
			emu := dagsteremu.New(dagsteremu.WithTokens(scriptToken), dagsteremu.WithOrganization(scriptOrg), dagsteremu.WithLoadPolls(0))
			dir, err := os.MkdirTemp("", "cli-script-ca")
			if err != nil {
				return err
			}
			env.Defer(func() { os.RemoveAll(dir) })
			proxy, err := tlsproxy.Start(emu, dir)
			if err != nil {
				return err
			}
			env.Defer(proxy.Close)
			for _, kv := range proxy.Env() {
				k, v, _ := strings.Cut(kv, "=")
				env.Setenv(k, v)
			}
			env.Setenv(statusFileEnv, filepath.Join(dir, "status"))
			env.Setenv("ORG", scriptOrg)
			env.Setenv("TOKEN", scriptToken)
			env.Values[emuKey] = emu
			env.Values[proxyKey] = proxy
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":           cmdStatus,
			"dagster-state":    cmdDagsterState,
			"dagster-requests": cmdDagsterRequests,
			"dagster-emu":      cmdDagsterEmu,
			"proxy-connects":   cmdProxyConnects,
			"capture":          cmdCapture,
			"gitinit":          cmdGitInit,
			"gitcommit":        cmdGitCommit,
		},
	})
}

func emulatorOf(ts *testscript.TestScript) *dagsteremu.Server {
	return ts.Value(emuKey).(*dagsteremu.Server)
}

func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("unsupported: ! %s", name)
	}
}

func printJSON(ts *testscript.TestScript, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%s\n", b)
}

func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "status")
	if len(args) != 1 {
		ts.Fatalf("usage: status N")
	}
	f := ts.Getenv(statusFileEnv)
	b, err := os.ReadFile(f)
	ts.Check(err)
	ts.Check(os.Remove(f))
	if got := string(b); got != args[0] {
		ts.Fatalf("exit status %s, want %s", got, args[0])
	}
}

func cmdDagsterState(ts *testscript.TestScript, neg bool, args []string) {
	emu := emulatorOf(ts)
	switch len(args) {
	case 0:
		noNeg(ts, neg, "dagster-state")
		b, err := emu.JSON()
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "%s\n", b)
	case 1:
		d, ok := emu.Deployment(args[0])
		if neg {
			if ok {
				ts.Fatalf("deployment %s exists", args[0])
			}
			return
		}
		if !ok {
			ts.Fatalf("no deployment %s", args[0])
		}
		printJSON(ts, d)
	default:
		ts.Fatalf("usage: dagster-state [deployment]")
	}
}

func cmdDagsterRequests(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "dagster-requests")
	for _, r := range emulatorOf(ts).Requests() {
		if len(args) > 0 && r.Operation != args[0] {
			continue
		}
		vars, err := json.Marshal(r.Variables)
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "%s %s deployment-header=%q %s\n", r.Operation, r.Path, r.Headers.Get("Dagster-Cloud-Deployment"), vars)
	}
}

func cmdDagsterEmu(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "dagster-emu")
	emu := emulatorOf(ts)
	switch {
	case len(args) == 1 && args[0] == "agent-down":
		emu.SetAgentRunning(false)
	case len(args) == 3 && args[0] == "fail-location":
		emu.FailLocation(args[1], args[2])
	default:
		ts.Fatalf("usage: dagster-emu agent-down | fail-location NAME MESSAGE")
	}
}

func cmdProxyConnects(ts *testscript.TestScript, neg bool, _ []string) {
	noNeg(ts, neg, "proxy-connects")
	for _, c := range ts.Value(proxyKey).(*tlsproxy.Server).Connects() {
		fmt.Fprintln(ts.Stdout(), c)
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "capture")
	if len(args) != 1 {
		ts.Fatalf("usage: capture VAR")
	}
	ts.Setenv(args[0], strings.TrimRight(ts.ReadFile("stdout"), "\n"))
}

func cmdGitInit(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "gitinit")
	_, err := git.PlainInit(ts.MkAbs("."), false)
	ts.Check(err)
}

func cmdGitCommit(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "gitcommit")
	fs := flag.NewFlagSet("gitcommit", flag.ContinueOnError)
	author := fs.String("author", "Jane Doe <jane@example.com>", "author")
	date := fs.Int64("date", 1700000000, "author and committer time, Unix seconds")
	msg := fs.String("m", "", "message")
	ts.Check(fs.Parse(args))
	addr, err := mail.ParseAddress(*author)
	ts.Check(err)
	repo, err := git.PlainOpen(ts.MkAbs("."))
	ts.Check(err)
	wt, err := repo.Worktree()
	ts.Check(err)
	files := fs.Args()
	sort.Strings(files)
	for _, f := range files {
		_, err := wt.Add(f)
		ts.Check(err)
	}
	sig := &object.Signature{Name: addr.Name, Email: addr.Address, When: time.Unix(*date, 0).UTC()}
	h, err := wt.Commit(strings.ReplaceAll(*msg, `\n`, "\n"), &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	ts.Check(err)
	fmt.Fprintln(ts.Stdout(), h.String())
	ts.Setenv("GIT_COMMIT_TIME", strconv.FormatInt(*date, 10))
}
