package e2e

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"strings"
)

// crc64NVME is the table of CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5; Go's crc64 applies the all-ones
// initial value and final xor the algorithm specifies).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// ChecksumOf returns the checksum of body in the "algorithm:value" form the service reports for a downloaded file (S3's
// own encoding: base64 of the big-endian digest, hex for MD5). ok is false for an algorithm it does not know.
func ChecksumOf(algorithm string, body []byte) (sum string, ok bool) {
	var raw []byte
	switch algorithm {
	case "crc32":
		raw = binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body))
	case "crc32c":
		raw = binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	case "crc64nvme":
		raw = binary.BigEndian.AppendUint64(nil, crc64.Checksum(body, crc64NVME))
	case "sha1":
		s := sha1.Sum(body)
		raw = s[:]
	case "sha256":
		s := sha256.Sum256(body)
		raw = s[:]
	case "md5":
		s := md5.Sum(body)
		return "md5:" + hex.EncodeToString(s[:]), true
	default:
		return "", false
	}
	return algorithm + ":" + base64.StdEncoding.EncodeToString(raw), true
}

// VerifyChecksum checks a reported "algorithm:value" checksum against body.
func VerifyChecksum(reported string, body []byte) error {
	algorithm, _, found := strings.Cut(reported, ":")
	if !found {
		return fmt.Errorf("checksum %q: want algorithm:value (a file verified by its size only is not verified)", reported)
	}
	want, ok := ChecksumOf(algorithm, body)
	if !ok {
		return fmt.Errorf("checksum %q: unknown algorithm %q", reported, algorithm)
	}
	if reported != want {
		return fmt.Errorf("checksum %s, but the uploaded bytes have %s", reported, want)
	}
	return nil
}
