package sandbox

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// s3Store is gofakes3's memory backend with S3's overwrite: a PutObject
// replaces the object's checksum along with its body. gofakes3 carries an
// overwritten object's metadata over to the new one, and with it the
// checksum of the old body: an object written first by an SDK (which sends
// a CRC32 by default) and then through a signed URL (no checksum, as a
// node's agent writes its status) would fail every SDK read after with
// "checksum did not match". A checksum the new upload does not carry is
// computed here from its body, as S3 itself computes one for an upload
// that has none.
type s3Store struct {
	*s3mem.Backend
}

// checksums are the x-amz-checksum-* metadata keys S3 knows, as gofakes3
// stores them (canonical header names).
var checksums = map[string]func() hash.Hash{
	"X-Amz-Checksum-Crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"X-Amz-Checksum-Crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"X-Amz-Checksum-Crc64nvme": func() hash.Hash { return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5)) },
	"X-Amz-Checksum-Sha1":      sha1.New,
	"X-Amz-Checksum-Sha256":    sha256.New,
}

func (s s3Store) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	var stale []string
	if old, err := s.Backend.HeadObject(bucket, key); err == nil && old != nil {
		for k := range old.Metadata {
			if _, known := checksums[k]; known && meta[k] == "" {
				stale = append(stale, k)
			}
		}
	}
	if len(stale) == 0 {
		return s.Backend.PutObject(bucket, key, meta, input, size, cond)
	}
	body, err := gofakes3.ReadAll(input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	for _, k := range stale {
		meta[k] = checksumOf(k, body)
	}
	return s.Backend.PutObject(bucket, key, meta, bytes.NewReader(body), size, cond)
}

// checksumOf is the value of the x-amz-checksum-* header k for body:
// base64 of the digest (a CRC's is big-endian).
func checksumOf(k string, body []byte) string {
	h := checksums[k]()
	h.Write(body)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
