package objstore

// GCSLabel is gcsLabel, for the tests.
var GCSLabel = gcsLabel
