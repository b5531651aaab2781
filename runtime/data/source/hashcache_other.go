//go:build !linux

package source

import "os"

// inodeAndCtime: without the change time and inode a record cannot be
// trusted, so other systems always hash.
func inodeAndCtime(os.FileInfo) (uint64, int64, bool) { return 0, 0, false }
