package host

// What every release ships and grants, single instance or fleet: the release id, the RDS CA bundle, and the role's
// access to the release's assets and secrets.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/appbuild"
)

// GrantReleaseAssets lets role read the release's files under the stack's own prefix of the CDK asset bucket
// (assetPrefix), not by object key: a new binary is then no IAM change, and `cdk deploy` does not ask for approval of
// an app release. A customer-managed key may encrypt the asset bucket (`cdk bootstrap --bootstrap-customer-key`):
// decrypt through S3 only, for that bucket's objects only. Both the single instance and the fleet use it.
func GrantReleaseAssets(role awsiam.IRole, binary awss3assets.Asset, stackName string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadReleaseAssets"),
		Actions:   jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(fmt.Sprintf("arn:%s:s3:::%s/%s*", *awscdk.Aws_PARTITION(), *binary.S3BucketName(), AssetPrefix(stackName))),
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DecryptReleaseAssets"),
		Actions:   jsii.Strings("kms:Decrypt"),
		Resources: jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"kms:ViaService": fmt.Sprintf("s3.%s.amazonaws.com", *awscdk.Aws_REGION())},
			"StringLike":   map[string]any{"kms:EncryptionContext:aws:s3:arn": fmt.Sprintf("arn:%s:s3:::%s*", *awscdk.Aws_PARTITION(), *binary.S3BucketName())},
		},
	}))
}

// GrantDecryptSecrets lets role decrypt the secrets it reads when a customer-managed key encrypts one (an external
// MongoDB secret may be): through Secrets Manager only, for those secrets only. Both the single instance and the fleet
// use it.
func GrantDecryptSecrets(role awsiam.IRole, secretArns []string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DecryptSecrets"),
		Actions:   jsii.Strings("kms:Decrypt"),
		Resources: jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{
				"kms:ViaService":                  fmt.Sprintf("secretsmanager.%s.amazonaws.com", *awscdk.Aws_REGION()),
				"kms:EncryptionContext:SecretARN": secretArns,
			},
		},
	}))
}

// AssetPrefix is the stack's folder in the CDK asset bucket (see NewAircraftStack's synthesizer).
func AssetPrefix(stackName string) string { return "aircraft/" + stackName + "/" }

// HashJSON is a short, stable id of values (maps are marshalled with sorted keys).
func HashJSON(values ...any) string {
	b, err := json.Marshal(values)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// Must is s, or a panic on err: for what is checked at every synth.
func Must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// RDSCABundle returns the path of infra/rds-ca-bundle.pem after checking its checksum.
func RDSCABundle() (string, error) {
	root, err := appbuild.RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "infra", rdsCABundleFile)
	sum, err := FileSHA256(p)
	if err != nil {
		return "", err
	}
	if sum != RDSCABundleSHA256 {
		return "", fmt.Errorf("%s: SHA-256 %s, want %s (RDSCABundleSHA256 in infra/host/release.go)", p, sum, RDSCABundleSHA256)
	}
	return p, nil
}

// The RDS certificate bundle (RDS and DocumentDB CAs), shipped from the repository with its checksum instead of being
// downloaded at every release: infra/rds-ca-bundle.pem. docs/infra.md says where it comes from and how to refresh it;
// the synth fails when the file does not match RDSCABundleSHA256.
const (
	rdsCABundleFile   = "rds-ca-bundle.pem"
	RDSCABundleSHA256 = "26edf290f2d57ebbd5273fb9463b763497a47c14a4712d73ce47da8dc4ad57dc"
)
