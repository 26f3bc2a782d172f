// Package disk is the local side of a fetch: it writes an object's bytes to a file as they arrive — ranges in parallel,
// each in order, retried ones from their start — and verifies them against the object's checksum on the way, so that a
// file is not read again to be checked.
//
//   - checksum.go: the algorithms S3 offers (and the MD5 of a single-part ETag), and the combination of the CRCs of
//     pieces into the file's.
//   - verifier.go: Verifier, the io.WriterAt a fetch writes through, which hashes what it writes (per run of contiguous
//     writes for a CRC).
//   - direct.go: Direct, the O_DIRECT writer of durable files (aligned buffers per range, the last partial block
//     through the page cache).
//   - io_linux.go: preallocation, early write-out and free space (statfs).
//
// Package fetch, its user, gets the bytes from S3 and puts the verified file in place.
package disk
