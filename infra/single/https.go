package single

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// HTTPSProps configures how the service gets its certificate.
type HTTPSProps struct {
	Service      *Service
	StackName    string
	DomainName   string // "" = self-signed
	HostedZoneID string // with DomainName: create its A record here
}

// HTTPS is the certificate of the service. With a domain, aircraftd gets a trusted certificate by ACME (http-01 on
// port 80) and, given a hosted zone, the stack points the domain at the Elastic IP. Without one, the instance makes a
// self-signed certificate at first boot and publishes it (never the key) to an SSM parameter, so that clients and the
// e2e tests can trust it. The instance is the parameter's only writer: it is not a stack resource, whose placeholder
// value a stack update would write back (and which would show as drift).
type HTTPS struct {
	constructs.Construct
	URL                  *string // https://<domain or Elastic IP>
	CertificateParameter string  // name of the SSM parameter; "" with ACME
}

func NewHTTPS(scope constructs.Construct, id string, props *HTTPSProps) *HTTPS {
	this := constructs.NewConstruct(scope, &id)
	eip := props.Service.ElasticIP

	if props.DomainName != "" {
		if props.HostedZoneID != "" {
			// The instance (and so its release gate, which needs the name to resolve) comes after the record.
			record := awsroute53.NewCfnRecordSet(this, jsii.String("DnsRecord"), &awsroute53.CfnRecordSetProps{
				HostedZoneId:    jsii.String(props.HostedZoneID),
				Name:            jsii.String(props.DomainName + "."),
				Type:            jsii.String("A"),
				Ttl:             jsii.String("300"),
				ResourceRecords: &[]*string{eip},
			})
			props.Service.Instance.Node().AddDependency(record)
		}
		return &HTTPS{Construct: this, URL: jsii.String("https://" + props.DomainName)}
	}

	name := "/aircraft/" + props.StackName + "/tls-certificate"
	props.Service.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:     jsii.String("PublishCertificate"),
		Actions: jsii.Strings("ssm:PutParameter"),
		Resources: jsii.Strings(fmt.Sprintf("arn:%s:ssm:%s:%s:parameter%s",
			*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), name)),
	}))
	return &HTTPS{Construct: this, URL: jsii.String("https://" + *eip), CertificateParameter: name}
}
