//go:build tools

// Package tools records the etcd commands this module builds, so that
// `go mod tidy` keeps their dependencies. It is never compiled: build.sh runs
// `go build go.etcd.io/etcd/server/v3` inside this module.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
