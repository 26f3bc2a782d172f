package fleet

import (
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	elb "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/regioninfo"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/removal"
)

// LoadBalancerProps configures the load balancer.
type LoadBalancerProps struct {
	Vpc            awsec2.IVpc
	AllowedCidr    string
	CertificateArn string // imported certificate; "" = a DNS-validated one for DomainName in HostedZoneID
	DomainName     string
	HostedZoneID   string // with DomainName: its alias record (and the certificate's validation records)
	AccessLogDays  int
	Stage          string
	Protected      bool // prod after its first create: deletion protection
}

// LoadBalancer is the ALB box: internet-facing in the public subnets, HTTPS on 443 with an ACM certificate (TLS 1.2 and
// 1.3, the recommended policy), port 80 only redirecting to HTTPS, both from allowedCidr, invalid headers dropped. Its
// access logs go to a bucket of their own (SSE-S3, the only encryption ALB logs support; private, TLS-only, expiring
// after accessLogDays). Serve adds the fleet as its target.
type LoadBalancer struct {
	constructs.Construct
	ALB           elb.ApplicationLoadBalancer
	SecurityGroup awsec2.SecurityGroup
	HTTPS         elb.ApplicationListener
	Certificate   awscertificatemanager.ICertificate
	AccessLogs    awss3.Bucket
	URL           *string // https://<domainName or the load balancer's DNS name>
	vpc           awsec2.IVpc
}

// albIdleTimeoutSeconds is the load balancer's idle timeout.
const albIdleTimeoutSeconds = 110

// accessLogPrefix is the folder of the access logs in their bucket.
const accessLogPrefix = "alb"

func NewLoadBalancer(scope constructs.Construct, id string, props *LoadBalancerProps) *LoadBalancer {
	this := constructs.NewConstruct(scope, &id)

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("Load balancer: HTTPS and HTTP (redirect) in from allowedCidr; out to the fleet only"),
		AllowAllOutbound: jsii.Bool(false),
	})
	clients := awsec2.Peer_Ipv4(jsii.String(props.AllowedCidr))
	sg.AddIngressRule(clients, awsec2.Port_Tcp(jsii.Number(443)), jsii.String("HTTPS API"), nil)
	sg.AddIngressRule(clients, awsec2.Port_Tcp(jsii.Number(80)), jsii.String("HTTP: redirect to HTTPS"), nil)

	logs := newAccessLogBucket(this, props)
	alb := elb.NewApplicationLoadBalancer(this, jsii.String("Alb"), &elb.ApplicationLoadBalancerProps{
		Vpc:                     props.Vpc,
		VpcSubnets:              &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		InternetFacing:          jsii.Bool(true),
		SecurityGroup:           sg,
		DropInvalidHeaderFields: jsii.Bool(true),
		DeletionProtection:      jsii.Bool(props.Protected), // not on a first create: it would block the rollback
		// Below aircraftd's keep-alive timeout (120 s, app/internal/serve): the load balancer, not the target, closes
		// idle connections, so no request lands on a connection the target is closing (a 502). A request silent for
		// longer gets a 504: long downloads and ingestions run as jobs (?async=true).
		IdleTimeout: awscdk.Duration_Seconds(jsii.Number(albIdleTimeoutSeconds)),
	})
	alb.SetAttribute(jsii.String("access_logs.s3.enabled"), jsii.String("true"))
	alb.SetAttribute(jsii.String("access_logs.s3.bucket"), logs.BucketName())
	alb.SetAttribute(jsii.String("access_logs.s3.prefix"), jsii.String(accessLogPrefix))
	// ELB checks that it may write the bucket when the attribute is set: the policy comes first.
	alb.Node().AddDependency(logs)

	var cert awscertificatemanager.ICertificate
	if props.CertificateArn != "" {
		cert = awscertificatemanager.Certificate_FromCertificateArn(this, jsii.String("Certificate"), jsii.String(props.CertificateArn))
	} else {
		cert = awscertificatemanager.NewCertificate(this, jsii.String("Certificate"), &awscertificatemanager.CertificateProps{
			DomainName: jsii.String(props.DomainName),
			Validation: awscertificatemanager.CertificateValidation_FromDns(
				awsroute53.HostedZone_FromHostedZoneId(this, jsii.String("Zone"), jsii.String(props.HostedZoneID))),
		})
	}

	alb.AddListener(jsii.String("Http"), &elb.BaseApplicationListenerProps{
		Port: jsii.Number(80), Protocol: elb.ApplicationProtocol_HTTP, Open: jsii.Bool(false),
		DefaultAction: elb.ListenerAction_Redirect(&elb.RedirectOptions{
			Protocol: jsii.String("HTTPS"), Port: jsii.String("443"), Permanent: jsii.Bool(true),
		}),
	})
	https := alb.AddListener(jsii.String("Https"), &elb.BaseApplicationListenerProps{
		Port: jsii.Number(443), Protocol: elb.ApplicationProtocol_HTTPS, Open: jsii.Bool(false),
		Certificates: &[]elb.IListenerCertificate{elb.ListenerCertificate_FromCertificateManager(cert)},
		SslPolicy:    elb.SslPolicy_RECOMMENDED_TLS,
	})

	url := jsii.String("https://" + *alb.LoadBalancerDnsName())
	if props.DomainName != "" {
		url = jsii.String("https://" + props.DomainName)
		if props.HostedZoneID != "" {
			awsroute53.NewCfnRecordSet(this, jsii.String("DnsRecord"), &awsroute53.CfnRecordSetProps{
				HostedZoneId: jsii.String(props.HostedZoneID),
				Name:         jsii.String(props.DomainName + "."),
				Type:         jsii.String("A"),
				AliasTarget: &awsroute53.CfnRecordSet_AliasTargetProperty{
					DnsName:              alb.LoadBalancerDnsName(),
					HostedZoneId:         alb.LoadBalancerCanonicalHostedZoneId(),
					EvaluateTargetHealth: jsii.Bool(true),
				},
			})
		}
	}

	return &LoadBalancer{Construct: this, ALB: alb, SecurityGroup: sg, HTTPS: https, Certificate: cert, AccessLogs: logs, URL: url, vpc: props.Vpc}
}

// Serve forwards HTTPS to the fleet: a target group on the instances' port 443 whose health check is GET /api/v1/ready
// over HTTPS (the release gate of every new instance checks the same), and whose deregistration delay lets an instance
// that leaves finish its requests first. The security groups follow: the load balancer may reach the fleet on 443, the
// fleet admits nothing else.
func (lb *LoadBalancer) Serve(fleet *Fleet, deregistrationDelaySeconds int) elb.ApplicationTargetGroup {
	tg := elb.NewApplicationTargetGroup(lb.Construct, jsii.String("Targets"), &elb.ApplicationTargetGroupProps{
		Vpc:        lb.vpc,
		Port:       jsii.Number(443),
		Protocol:   elb.ApplicationProtocol_HTTPS,
		TargetType: elb.TargetType_INSTANCE,
		Targets:    &[]elb.IApplicationLoadBalancerTarget{fleet.Group},
		HealthCheck: &elb.HealthCheck{
			Path:                    jsii.String(ReadinessPath),
			Protocol:                elb.Protocol_HTTPS,
			HealthyHttpCodes:        jsii.String("200"),
			Interval:                awscdk.Duration_Seconds(jsii.Number(15)),
			Timeout:                 awscdk.Duration_Seconds(jsii.Number(5)),
			HealthyThresholdCount:   jsii.Number(2),
			UnhealthyThresholdCount: jsii.Number(3),
		},
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(float64(deregistrationDelaySeconds))),
	})
	lb.HTTPS.AddTargetGroups(jsii.String("Fleet"), &elb.AddApplicationTargetGroupsProps{TargetGroups: &[]elb.IApplicationTargetGroup{tg}})
	return tg
}

// ReadinessPath is aircraftd's readiness endpoint: every dependency reachable.
const ReadinessPath = "/api/v1/ready"

// newAccessLogBucket is the bucket of the load balancer's access logs, with the policy that lets Elastic Load Balancing
// write them: the log delivery service principal (regions since August 2022), and in the older regions their ELB
// account, looked up at deploy time since the stack is region-agnostic.
func newAccessLogBucket(scope constructs.Construct, props *LoadBalancerProps) awss3.Bucket {
	bucket := awss3.NewBucket(scope, jsii.String("AccessLogs"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:         jsii.String("expire-access-logs"),
			Expiration: awscdk.Duration_Days(jsii.Number(float64(props.AccessLogDays))),
		}},
		RemovalPolicy:     removal.RetainInProd(props.Stage),
		AutoDeleteObjects: jsii.Bool(props.Stage != "prod"),
	})
	logObjects := bucket.ArnForObjects(jsii.String(accessLogPrefix + "/AWSLogs/" + *awscdk.Aws_ACCOUNT_ID() + "/*"))
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ElbLogDelivery"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("logdelivery.elasticloadbalancing.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:PutObject"),
		Resources:  jsii.Strings(*logObjects),
	}))

	// The older regions' ELB accounts, from the CDK's region facts, as a mapping; the statement exists only in them.
	accounts := regioninfo.RegionInfo_RegionMap(regioninfo.FactName_ELBV2_ACCOUNT())
	regions := make([]string, 0, len(*accounts))
	mapping := map[string]*map[string]any{}
	for region, account := range *accounts {
		regions = append(regions, region)
		mapping[region] = &map[string]any{"account": *account}
	}
	slices.Sort(regions)
	stack := awscdk.Stack_Of(scope)
	elbAccounts := awscdk.NewCfnMapping(stack, jsii.String("ElbAccounts"), &awscdk.CfnMappingProps{Mapping: &mapping})
	var equals []awscdk.ICfnConditionExpression
	for _, r := range regions {
		equals = append(equals, awscdk.Fn_ConditionEquals(awscdk.Aws_REGION(), jsii.String(r)))
	}
	var ors []awscdk.ICfnConditionExpression
	for chunk := range slices.Chunk(equals, 10) { // Fn::Or takes at most 10 conditions
		ors = append(ors, awscdk.Fn_ConditionOr(chunk...))
	}
	legacy := awscdk.NewCfnCondition(stack, jsii.String("ElbAccountRegion"), &awscdk.CfnConditionProps{Expression: awscdk.Fn_ConditionOr(ors...)})
	// Elsewhere the statement names the stack's own account, which owns the bucket anyway: a no-op. CloudFormation
	// resolves Fn::FindInMap even in the branch of Fn::If not taken, so the lookup has a default (the
	// AWS::LanguageExtensions transform): without it, every region missing from the mapping fails validation.
	account := elbAccounts.FindInMap(awscdk.Aws_REGION(), jsii.String("account"), jsii.String("none"))
	root := func(account string) string { return "arn:" + *awscdk.Aws_PARTITION() + ":iam::" + account + ":root" }
	principal := awscdk.Token_AsString(awscdk.Fn_ConditionIf(legacy.LogicalId(), root(*account), root(*awscdk.Aws_ACCOUNT_ID())), nil)
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ElbAccountLogDelivery"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(principal)},
		Actions:    jsii.Strings("s3:PutObject"),
		Resources:  jsii.Strings(*logObjects),
	}))
	return bucket
}
