//go:build tools

// Temporary: pins the modules the registry and BuildKit work needs while it
// is written in parallel, so that go.mod is not edited concurrently.
package main

import (
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	_ "github.com/aws/aws-sdk-go-v2/service/ecr"
	_ "github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	_ "github.com/aws/aws-sdk-go-v2/service/sts"
	_ "github.com/moby/buildkit/api/services/control"
	_ "github.com/moby/buildkit/session"
	_ "github.com/moby/buildkit/session/auth"
	_ "github.com/moby/buildkit/session/secrets/secretsprovider"
	_ "github.com/moby/buildkit/session/sshforward/sshprovider"
	_ "github.com/rhysd/actionlint"
	_ "golang.org/x/oauth2/google"
)
