package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
)

// The hash cache skips hashing a file list again when no file changed, the
// way git's index skips re-reading files: a record holds each file's size,
// modification time and change time (nanoseconds) and inode, with the
// digest; a plan whose files all stat the same reuses the digest. The
// change time moves on any write or metadata change, even when a tool
// restores the modification time.
//
// A file modified in the same clock tick as the record was written could
// change again within that tick without its times moving ("racy git"). As
// git does with its index's time, a record is trusted only for files whose
// modification time is before the record file's own: a file as new as the
// record is hashed again (and recorded anew, now older than the record).

// fileStat is what must not change for a recorded digest to hold.
type fileStat struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	CtimeNS int64  `json:"ctime_ns"`
	Inode   uint64 `json:"inode"`
}

type hashRecord struct {
	Files  []fileStat `json:"files"`
	Digest string     `json:"digest"`
}

func statFile(path string) (fileStat, bool) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return fileStat{}, false
	}
	ino, ctime, ok := inodeAndCtime(fi)
	if !ok {
		return fileStat{}, false
	}
	return fileStat{Path: path, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), CtimeNS: ctime, Inode: ino}, true
}

func statList(files []string) ([]fileStat, bool) {
	out := make([]fileStat, len(files))
	for i, f := range files {
		st, ok := statFile(f)
		if !ok {
			return nil, false
		}
		out[i] = st
	}
	return out, true
}

// recordPath names a file list's record: by the files' absolute paths and
// their names as hashed (relative to BaseDir), which the digest covers.
func recordPath(files []string, o Options) string {
	h := sha256.New()
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		h.Write([]byte(abs + "\x00" + display(f, o.BaseDir) + "\x00"))
	}
	return filepath.Join(o.HashCache, hex.EncodeToString(h.Sum(nil))[:32]+".json")
}

// lookupHash returns the recorded digest when every file is as recorded and
// older than the record.
func lookupHash(files []string, now []fileStat, o Options) (string, bool) {
	p := recordPath(files, o)
	fi, err := os.Stat(p)
	if err != nil {
		return "", false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", false
	}
	var rec hashRecord
	if json.Unmarshal(b, &rec) != nil || rec.Digest == "" || len(rec.Files) != len(now) {
		return "", false
	}
	written := fi.ModTime().UnixNano()
	for i, st := range now {
		if rec.Files[i] != st || st.MtimeNS >= written {
			return "", false
		}
	}
	return rec.Digest, true
}

// storeHash records a digest for files that did not change while they were
// hashed (before and after are their stats on each side of the hashing).
func storeHash(files []string, before []fileStat, digest string, o Options) {
	after, ok := statList(files)
	if !ok {
		return
	}
	for i := range before {
		if before[i] != after[i] {
			return // written to while hashed: the digest may be of neither version
		}
	}
	b, err := json.Marshal(hashRecord{Files: before, Digest: digest})
	if err != nil || os.MkdirAll(o.HashCache, 0o755) != nil {
		return
	}
	p := recordPath(files, o)
	f, err := os.CreateTemp(o.HashCache, ".record-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if os.Rename(f.Name(), p) != nil {
		os.Remove(f.Name())
	}
}

// cachedHash is hashList through the cache (when o.HashCache is set);
// hit says the digest came from a record, and then nothing was read into
// capture. The cache is an optimisation only: any trouble with it falls
// back to hashing.
func cachedHash(ctx context.Context, files []string, o Options, capture []*capped) (digest string, hit bool, err error) {
	if o.HashCache == "" {
		d, err := hashList(ctx, files, o, capture)
		return d, false, err
	}
	before, ok := statList(files)
	if ok {
		if d, hit := lookupHash(files, before, o); hit {
			return d, true, nil
		}
	}
	d, err := hashList(ctx, files, o, capture)
	if err != nil || !ok {
		return d, false, err
	}
	storeHash(files, before, d, o)
	return d, false, nil
}
