package benchbin

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCached asks the kernel to drop the file's pages from the page cache, so
// that the next run reads them from disk as any installed binary is read.
func dropCached(f *os.File) error {
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
