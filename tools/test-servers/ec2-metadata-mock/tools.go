//go:build tools

// Package tools pins amazon-ec2-metadata-mock, the IMDS each signalled node's NTH reads.
package tools

import (
	_ "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock"
)
