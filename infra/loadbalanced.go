package main

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/config"
	"github.com/aircraftdata/platform/infra/datastores"
	"github.com/aircraftdata/platform/infra/fleet"
	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/network"
	"github.com/aircraftdata/platform/infra/observability"
	"github.com/aircraftdata/platform/infra/pipeline"
)

// deregistrationDelaySeconds is how long the load balancer lets an instance that leaves (a rolling release, scale-in)
// finish its requests before it stops routing to it for good: at least aircraftd's own drain time.
const deregistrationDelaySeconds = 30

// addLoadBalancedService is the rest of the stack with instances > 1, after the network and the data stores that both
// modes share:
//
//	client ──HTTPS 443 (80: redirect)──▶ ALB (public subnets, ACM certificate) ──443──▶ Auto Scaling group of N
//	instances (public subnets, nothing in from the internet) ──5432/27017──▶ RDS / DocumentDB (isolated)
//	                                    │ ──2049──▶ EFS (isolated): DOWNLOAD_PATH, shared by every instance
//	                                    └──read-only──▶ S3 bucket aircraft-data; ALB access logs ──▶ log bucket
func addLoadBalancedService(stack awscdk.Stack, cfg config.Config, binaryPath string, vpc *network.Network, data *datastores.DataBucket, database *datastores.Database, docstore *datastores.DocStore, pipe *pipeline.Pipeline) {
	apiToken := newAPIToken(stack)

	// EFS: the downloads every instance sees.
	downloads := fleet.NewSharedDownloads(stack, "Downloads", &fleet.SharedDownloadsProps{Vpc: vpc.Vpc, Stage: cfg.Stage})

	// The Auto Scaling group of aircraftd instances.
	instances := fleet.NewFleet(stack, "Fleet", &fleet.FleetProps{
		Vpc: vpc.Vpc, InstanceType: cfg.InstanceType, Instances: cfg.Instances, MinInstances: cfg.MinInstances,
		MaxInstances: cfg.MaxInstances, DataBucket: data.Bucket, LogGroupName: "/aircraft/" + cfg.StackName + "/service",
		LogRetentionDays: cfg.LogRetentionDays, Stage: cfg.Stage,
	})
	instances.AllowTo(database.Instance, 5432, "PostgreSQL")
	if docstore.Cluster != nil {
		instances.AllowTo(docstore.Cluster, 27017, "DocumentDB")
	} else {
		instances.AllowToNetwork(cfg.MongoCidr, 27017, "external MongoDB (mongoCidr)")
	}
	instances.AllowTo(downloads.FileSystem, 2049, "NFS (EFS)")
	// An instance's release gate needs every data store up, and its first boot mounts the file system: the group is
	// created (and its instances launched) once they all exist.
	instances.Group.Node().AddDependency(database.Construct, docstore.Construct, downloads.Construct)
	downloads.GrantMount(instances.Role)
	host.GrantDecryptSecrets(instances.Role, grantReadSecrets(instances.Role, database, docstore, apiToken))
	if pipe != nil {
		pipe.GrantBackfills(instances.Role)
	}

	// The load balancer in front of the fleet.
	lb := fleet.NewLoadBalancer(stack, "LoadBalancer", &fleet.LoadBalancerProps{
		Vpc: vpc.Vpc, AllowedCidr: cfg.AllowedCidr, CertificateArn: cfg.CertificateArn, DomainName: cfg.DomainName,
		HostedZoneID: cfg.HostedZoneID, AccessLogDays: cfg.AccessLogDays, Stage: cfg.Stage, Protected: cfg.Protected(),
	})
	targets := lb.Serve(instances, deregistrationDelaySeconds)

	// Behind the load balancer every peer is one of its nodes: their X-Forwarded-For names the client (the per-client
	// rate limit of reads needs it).
	env := sharedEnvironment(data, database, docstore, apiToken, pipe)
	env.TrustedProxies = *vpc.Vpc.VpcCidrBlock()
	release := instances.ReleaseTo(&fleet.FleetReleaseProps{
		BinaryPath:     binaryPath,
		Environment:    env,
		FileSystemID:   *downloads.FileSystem.FileSystemId(),
		AccessPointID:  *downloads.AccessPoint.AccessPointId(),
		TargetGroupArn: *targets.TargetGroupArn(),
	})

	// CloudWatch alarms to one SNS topic, as with one instance, the instance's own replaced by the load balancer's.
	alarms := observability.NewAlarms(stack, "Alarms", &observability.AlarmsProps{
		Email: cfg.AlarmEmail, LoadBalancer: lb.ALB, Targets: targets, ServiceLogs: instances.LogGroup, Database: database, DocStore: docstore,
	})
	alarmTopic := alarms.Topic
	allAlarms := append(alarms.IAlarms(), pipelineAlarms(stack, pipe, alarmTopic, database)...)

	// The dashboard, and alarms on aircraftd's own metrics (observability/dashboard.go, servicealarms.go).
	observability.NewServiceMonitoring(stack, "Monitoring", &observability.ServiceMonitoringProps{
		Namespace: observability.MetricsNamespace(stack), Topic: alarmTopic, Alarms: allAlarms, DatabaseID: database.Instance.InstanceIdentifier(),
		GroupName: instances.Group.AutoScalingGroupName(), Burstable: strings.HasPrefix(cfg.InstanceType, "t"), ServiceLogs: instances.LogGroup,
		LoadBalancer: lb.ALB, Targets: targets,
	})

	output(stack, "ApiUrl", lb.URL, "Base URL of the API (the load balancer)")
	dataOutputs(stack, data, database, docstore, apiToken)
	pipelineOutputs(stack, pipe)
	output(stack, "LoadBalancerDnsName", lb.ALB.LoadBalancerDnsName(), "DNS name of the load balancer (point domainName here)")
	output(stack, "AutoScalingGroupName", instances.Group.AutoScalingGroupName(), "Auto Scaling group of the service instances")
	output(stack, "TargetGroupArn", targets.TargetGroupArn(), "Target group of the instances (health: GET "+fleet.ReadinessPath+")")
	output(stack, "FileSystemId", downloads.FileSystem.FileSystemId(), "EFS file system of the downloads (DOWNLOAD_PATH)")
	output(stack, "AccessLogBucketName", lb.AccessLogs.BucketName(), "Access logs of the load balancer")
	output(stack, "LogGroupName", instances.LogGroup.LogGroupName(), "Service and deploy logs")
	output(stack, "ReleaseId", jsii.String(release), "Release id of the deployed binary and configuration")
	output(stack, "AlarmTopicArn", alarmTopic.TopicArn(), "SNS topic of the CloudWatch alarms (subscribe more endpoints here)")
}
