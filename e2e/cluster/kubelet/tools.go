//go:build tools

// Package tools records the command this module builds, so that `go mod tidy` keeps its dependencies. It is
// never compiled: build.sh runs `go build k8s.io/kubernetes/cmd/kubelet` inside this module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kubelet"
)
