//go:build tools

// Package tools pins Karpenter's KWOK cloud provider (the real Karpenter controllers with a
// fake cloud whose instances are Nodes), for the e2e suite's Karpenter scenarios.
package tools

import (
	_ "sigs.k8s.io/karpenter/kwok"
)
