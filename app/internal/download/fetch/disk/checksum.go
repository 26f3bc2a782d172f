package disk

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"

	"github.com/minio/crc64nvme"
)

// Algorithm names a checksum a file is verified with: one of the object's full-object S3 checksums, or the MD5 of a
// single-part ETag.
type Algorithm string

const (
	CRC32     Algorithm = "crc32"
	CRC32C    Algorithm = "crc32c"
	CRC64NVME Algorithm = "crc64nvme"
	SHA1      Algorithm = "sha1"
	SHA256    Algorithm = "sha256"
	MD5ETag   Algorithm = "md5" // the ETag of a single-part, non-KMS object
	SizeOnly  Algorithm = ""    // nothing to verify but the size (multipart object without a full-object checksum)
)

// Expected is what a downloaded file must hash to.
type Expected struct {
	Algorithm Algorithm
	Sum       []byte // raw digest, big-endian for CRCs as S3 sends them
}

// String is "algorithm:value" as S3 shows it (base64, hex for MD5), or "size-only".
func (e Expected) String() string {
	switch e.Algorithm {
	case SizeOnly:
		return "size-only"
	case MD5ETag:
		return "md5:" + hex.EncodeToString(e.Sum)
	}
	return string(e.Algorithm) + ":" + base64.StdEncoding.EncodeToString(e.Sum)
}

// crcKind describes a reflected CRC whose pieces can be combined: the data of a ranged download arrives out of order,
// and CRCs of its runs are joined without reading the file again (zlib's crc32_combine, generalised).
type crcKind struct {
	width  int    // bits
	poly   uint64 // reflected polynomial
	update func(crc uint64, p []byte) uint64
}

var (
	tabCastagnoli = crc32.MakeTable(crc32.Castagnoli)
	crcKinds      = map[Algorithm]*crcKind{
		CRC32:     {32, 0xedb88320, func(c uint64, p []byte) uint64 { return uint64(crc32.Update(uint32(c), crc32.IEEETable, p)) }},
		CRC32C:    {32, 0x82f63b78, func(c uint64, p []byte) uint64 { return uint64(crc32.Update(uint32(c), tabCastagnoli, p)) }},
		CRC64NVME: {64, crc64nvme.NVME, crc64nvme.Update},
	}
)

// sum returns crc as S3 writes it: big-endian bytes.
func (k *crcKind) sum(crc uint64) []byte {
	if k.width == 32 {
		return binary.BigEndian.AppendUint32(nil, uint32(crc))
	}
	return binary.BigEndian.AppendUint64(nil, crc)
}

// combine returns the CRC of A‖B from crc1 = CRC(A), crc2 = CRC(B) and len2 = len(B), in O(log len2) GF(2) matrix
// steps.
func (k *crcKind) combine(crc1, crc2 uint64, len2 int64) uint64 {
	if crc1 == 0 { // A is empty (or sums to 0): shifting 0 gives 0; the common case of one run
		return crc2
	}
	if len2 <= 0 {
		return crc1
	}
	even := make([]uint64, k.width) // operator for 2^n zero bits, n even
	odd := make([]uint64, k.width)  // n odd
	odd[0] = k.poly                 // one zero bit
	row := uint64(1)
	for n := 1; n < k.width; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(even, odd) // two zero bits
	gf2Square(odd, even) // four
	for {
		gf2Square(even, odd) // first pass: one zero byte
		if len2&1 != 0 {
			crc1 = gf2Times(even, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(odd, even)
		if len2&1 != 0 {
			crc1 = gf2Times(odd, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

func gf2Times(mat []uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat []uint64) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

func newHash(a Algorithm) hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(tabCastagnoli)
	case CRC64NVME:
		return crc64nvme.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case MD5ETag:
		return md5.New()
	}
	return nil
}

// ErrMismatch means the bytes on disk are not the object's.
var ErrMismatch = errors.New("checksum mismatch")

func compare(exp Expected, got []byte) error {
	if !bytes.Equal(got, exp.Sum) {
		return fmt.Errorf("%w: %s of the file is %s, the object's is %s", ErrMismatch, exp.Algorithm,
			Expected{exp.Algorithm, got}.String(), exp.String())
	}
	return nil
}

// VerifyFile hashes the whole file and compares with exp (its size has been checked).
func VerifyFile(f *os.File, exp Expected) error {
	if exp.Algorithm == SizeOnly {
		return nil
	}
	h := newHash(exp.Algorithm)
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<62), buf); err != nil {
		return fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return compare(exp, h.Sum(nil))
}
