package datastores

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/removal"
)

// DataBucketProps configures the data bucket.
type DataBucketProps struct {
	Protected             bool   // prod after its first create: the bucket outlives the stack
	BucketName            string // "" = generated
	NoncurrentVersionDays int
	Stage                 string
}

// DataBucket is the S3 box "aircraft-data": the flight data files. Private, versioned, public access blocked, TLS-only,
// encrypted; noncurrent versions expire. The service only reads it (see Service).
type DataBucket struct {
	constructs.Construct
	Bucket awss3.Bucket
}

func NewDataBucket(scope constructs.Construct, id string, props *DataBucketProps) *DataBucket {
	this := constructs.NewConstruct(scope, &id)

	bucketProps := &awss3.BucketProps{
		Versioned:         jsii.Bool(true),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("expire-noncurrent-versions"),
			NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(float64(props.NoncurrentVersionDays))),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
		}},
		// prod keeps the data when the stack goes; dev empties and deletes the bucket with the stack. A first create of
		// prod (not Protected) deletes it, empty, when it rolls back: a retry with the same bucketName would collide
		// with a retained one.
		RemovalPolicy:     removal.RetainIf(props.Protected),
		AutoDeleteObjects: jsii.Bool(props.Stage != "prod"),
	}
	if props.BucketName != "" {
		bucketProps.BucketName = jsii.String(props.BucketName)
	}
	bucket := awss3.NewBucket(this, jsii.String("Bucket"), bucketProps)

	return &DataBucket{Construct: this, Bucket: bucket}
}
