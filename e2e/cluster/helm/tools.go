//go:build tools

// Package tools records the command this module builds, so that `go mod tidy` keeps its dependencies. It is
// never compiled: build-helm.sh runs `go build helm.sh/helm/v4/cmd/helm` inside this module.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
