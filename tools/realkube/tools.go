//go:build tools

// Package realkube pins the control-plane commands so that `go mod tidy` keeps their
// dependencies; nothing imports it.
package realkube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
