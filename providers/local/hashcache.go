package local

import "path/filepath"

// hashCacheDir is where a plan records file datasets' digests with the
// files' stat data, so that an unchanged file is not read again on every
// plan (runtime/data/source's hash cache). Apply always hashes the bytes it
// reads, so a wrong record could only make the apply stop as stale.
func hashCacheDir(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, "filehash")
}
