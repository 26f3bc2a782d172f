package fetch

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestExpectedFromHeaders(t *testing.T) {
	s := func(v string) *string { return &v }
	md5etag := `"9e107d9d372bb6826bd81d3542a419d6"`
	cases := []struct {
		name string
		h    s3.HeadObjectOutput
		want string
	}{
		{"crc32c preferred", s3.HeadObjectOutput{ETag: s(md5etag), ChecksumCRC32C: s("yZRlqg=="), ChecksumSHA256: s("AAAA")}, "crc32c:yZRlqg=="},
		{"sha256", s3.HeadObjectOutput{ETag: s(md5etag), ChecksumSHA256: s("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=")}, "sha256:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
		{"single-part etag", s3.HeadObjectOutput{ETag: s(md5etag)}, "md5:9e107d9d372bb6826bd81d3542a419d6"},
		{"composite checksum", s3.HeadObjectOutput{ETag: s(`"abc-3"`), ChecksumCRC32: s("AAAAAA==-3"), ChecksumType: s3types.ChecksumTypeComposite}, "size-only"},
		{"multipart etag", s3.HeadObjectOutput{ETag: s(`"9e107d9d372bb6826bd81d3542a419d6-2"`)}, "size-only"},
		{"kms etag is no md5", s3.HeadObjectOutput{ETag: s(md5etag), ServerSideEncryption: s3types.ServerSideEncryptionAwsKms}, "size-only"},
		{"sse-c etag is no md5", s3.HeadObjectOutput{ETag: s(md5etag), SSECustomerAlgorithm: s("AES256")}, "size-only"},
	}
	for _, c := range cases {
		if got := headMeta(&c.h).exp.String(); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if m := headMeta(&s3.HeadObjectOutput{ETag: s(md5etag), VersionId: s("null")}); m.version != "" || m.etag != md5etag[1:33] {
		t.Errorf("etag %q version %q", m.etag, m.version)
	}
}
