package imagebuild

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/registry"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"google.golang.org/grpc"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
)

// buildSession is a running BuildKit session: the gRPC server the daemon calls back for
// registry credentials, secrets and SSH agents during one build.
type buildSession struct {
	s    *session.Session
	done chan struct{}
}

// openSession starts a session serving attachables over dial (DockerAPI.DialHijack). If the
// session cannot be set up, fail is called with the reason, so that the build can be cancelled
// rather than wait for a session that never comes.
func openSession(ctx context.Context, sharedKey string, dial session.Dialer, fail func(error), attachables ...session.Attachable) (*buildSession, error) {
	s, err := session.NewSession(ctx, sharedKey)
	if err != nil {
		return nil, fmt.Errorf("creating the BuildKit session: %w", err)
	}
	for _, a := range attachables {
		s.Allow(a)
	}
	bs := &buildSession{s: s, done: make(chan struct{})}
	go func() {
		defer close(bs.done)
		if err := s.Run(ctx, dial); err != nil {
			fail(fmt.Errorf("the BuildKit session with the Docker daemon failed: %w", err))
		}
	}()
	return bs, nil
}

// id is the session ID the build request names.
func (bs *buildSession) id() string { return bs.s.ID() }

// close ends the session and waits for it.
func (bs *buildSession) close() {
	_ = bs.s.Close()
	<-bs.done
}

// sessionAttachables returns the services a build's session offers: registry credentials
// (PullAuth), secrets and, if asked for, SSH agents.
func sessionAttachables(s Spec, getenv func(string) string) ([]session.Attachable, error) {
	as := []session.Attachable{
		&authProvider{auths: s.PullAuth},
		// Always offered, so that an optional secret mount without a value is skipped rather
		// than failing for want of a secrets service.
		secretsprovider.FromMap(s.Secrets),
	}
	if len(s.SSH) == 0 {
		return as, nil
	}
	confs, err := sshAgentConfigs(s.SSH, getenv("SSH_AUTH_SOCK"))
	if err != nil {
		return nil, err
	}
	p, err := sshprovider.NewSSHAgentProvider(confs)
	if err != nil {
		return nil, fmt.Errorf("SSH forwarding: %w", err)
	}
	return append(as, p), nil
}

// sshAgentConfigs parses Spec.SSH entries ("default", "<id>", "<id>=<path>[,<path>…]"); an entry
// without paths uses the agent at authSock ($SSH_AUTH_SOCK).
func sshAgentConfigs(specs []string, authSock string) ([]sshprovider.AgentConfig, error) {
	var confs []sshprovider.AgentConfig
	for _, spec := range specs {
		id, paths, _ := strings.Cut(strings.TrimSpace(spec), "=")
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, fmt.Errorf("SSH forwarding %q: want \"default\", \"<id>\" or \"<id>=<agent socket or key file>\"", spec)
		}
		c := sshprovider.AgentConfig{ID: id}
		for _, p := range strings.Split(paths, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.Paths = append(c.Paths, p)
			}
		}
		if len(c.Paths) == 0 {
			if authSock == "" {
				return nil, fmt.Errorf("SSH forwarding %q uses the running ssh-agent, but SSH_AUTH_SOCK is not set: start an agent and add the key first (for example with webfactory/ssh-agent), or give a key file as %s=/path/to/key", spec, id)
			}
			c.Paths = []string{authSock}
		}
		confs = append(confs, c)
	}
	return confs, nil
}

// authProvider answers the daemon's requests for registry credentials (for FROM images and cache
// imports) from Spec.PullAuth. BuildKit ignores the build request's AuthConfigs.
type authProvider struct {
	auth.UnimplementedAuthServer
	auths map[string]registry.AuthConfig
}

// Register implements session.Attachable.
func (p *authProvider) Register(s *grpc.Server) { auth.RegisterAuthServer(s, p) }

// Credentials returns the username and password (or identity token) for req.Host, or empty
// credentials (anonymous access) when PullAuth has none. Newer daemons ask for a token
// authority first; the embedded UnimplementedAuthServer makes them fall back to this.
func (p *authProvider) Credentials(_ context.Context, req *auth.CredentialsRequest) (*auth.CredentialsResponse, error) {
	a := lookupAuth(p.auths, req.GetHost())
	if a.IdentityToken != "" {
		return &auth.CredentialsResponse{Secret: a.IdentityToken}, nil
	}
	user, pass := a.Username, a.Password
	if user == "" && pass == "" && a.Auth != "" {
		user, pass = decodeBasicAuth(a.Auth)
	}
	return &auth.CredentialsResponse{Username: user, Secret: pass}, nil
}

// lookupAuth finds the credentials for a registry host in auths, whose keys may be hosts,
// registryauth.ConfigKey values or URLs ("https://host"); Docker Hub's names are all one host.
func lookupAuth(auths map[string]registry.AuthConfig, host string) registry.AuthConfig {
	if a, ok := auths[host]; ok {
		return a
	}
	if a, ok := auths[registryauth.ConfigKey(host)]; ok {
		return a
	}
	want := displayHost(host)
	keys := make([]string, 0, len(auths))
	for k := range auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if displayHost(k) == want {
			return auths[k]
		}
	}
	return registry.AuthConfig{}
}

// decodeBasicAuth splits a config.json "auth" value (base64 of "user:password").
func decodeBasicAuth(enc string) (user, pass string) {
	dt, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", ""
	}
	user, pass, _ = strings.Cut(string(dt), ":")
	return user, pass
}

// hijackDialer adapts DockerAPI.DialHijack to the session's dialer.
func hijackDialer(d DockerAPI) session.Dialer {
	return func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
		conn, err := d.DialHijack(ctx, "/session", proto, meta)
		if err != nil {
			return nil, fmt.Errorf("POST /session: %w", err)
		}
		return conn, nil
	}
}
