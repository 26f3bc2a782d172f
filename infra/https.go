package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
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
// port 80) and, given a hosted zone, the stack points the domain at the Elastic IP. Without one, the instance makes
// a self-signed certificate at first boot and publishes it (never the key) to an SSM parameter, which only the
// service role may write, so that clients and the e2e tests can trust it.
type HTTPS struct {
	constructs.Construct
	URL                  *string                // https://<domain or Elastic IP>
	CertificateParameter awsssm.StringParameter // nil with ACME
}

func NewHTTPS(scope constructs.Construct, id string, props *HTTPSProps) *HTTPS {
	this := constructs.NewConstruct(scope, &id)
	eip := props.Service.ElasticIP.AttrPublicIp()

	if props.DomainName != "" {
		if props.HostedZoneID != "" {
			awsroute53.NewCfnRecordSet(this, jsii.String("DnsRecord"), &awsroute53.CfnRecordSetProps{
				HostedZoneId:    jsii.String(props.HostedZoneID),
				Name:            jsii.String(props.DomainName + "."),
				Type:            jsii.String("A"),
				Ttl:             jsii.String("300"),
				ResourceRecords: &[]*string{eip},
			})
		}
		return &HTTPS{Construct: this, URL: jsii.String("https://" + props.DomainName)}
	}

	param := awsssm.NewStringParameter(this, jsii.String("CertificateParameter"), &awsssm.StringParameterProps{
		ParameterName: jsii.String("/aircraft/" + props.StackName + "/tls-certificate"),
		Description:   jsii.String("PEM certificate of aircraftd (self-signed at first boot; the key never leaves the instance)"),
		StringValue:   jsii.String("pending: the instance writes its certificate here at first boot"),
		Tier:          awsssm.ParameterTier_STANDARD,
	})
	param.GrantWrite(props.Service.Role)
	return &HTTPS{Construct: this, URL: jsii.String("https://" + *eip), CertificateParameter: param}
}
