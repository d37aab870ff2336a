//go:build !unix

package main

import "os"

// lockFile is a no-op where flock(2) does not exist: run one parapet per
// state directory and compliance log there.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
