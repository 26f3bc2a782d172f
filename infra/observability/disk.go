package observability

// The single instance's root volume: DOWNLOAD_PATH lives on it, next to the logs and the releases. The CloudWatch agent
// reports its free space, and an alarm fires before the service's own free-space guard starts refusing files.

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/serviceenv"
)

// downloadReserveBytes is aircraftd's DOWNLOAD_RESERVE_BYTES as the instance runs it (serviceenv sets it): the free
// space every downloaded file must leave on DOWNLOAD_PATH's file system, else the file fails.
const downloadReserveBytes = serviceenv.DownloadReserveBytes

// DiskAlarmFreeBytes is the root volume's free space below which the disk alarm fires: twice the reserve, so that
// operators hear of it while downloads still succeed.
const DiskAlarmFreeBytes = 2 * downloadReserveBytes

// MetricsNamespace is the stack's own CloudWatch namespace (the 5xx metric filter's, and the agent's disk metric).
func MetricsNamespace(stack awscdk.Stack) string {
	return "Aircraft/" + strings.ReplaceAll(*stack.StackName(), "/", "-")
}

// DiskMetrics is the agent's metrics section: the root file system's free bytes, per instance only (the aggregated
// series the alarm reads; the agent's host, device and fstype dimensions are left out).
func DiskMetrics(namespace string) map[string]any {
	return map[string]any{
		"namespace":              namespace,
		"append_dimensions":      map[string]any{"InstanceId": "${aws:InstanceId}"},
		"aggregation_dimensions": []any{[]any{"InstanceId"}},
		"metrics_collected": map[string]any{"disk": map[string]any{
			"measurement": []any{"free"}, "resources": []any{"/"}, "drop_device": true, "metrics_collection_interval": 60,
		}},
	}
}

// GrantPutMetrics lets the instance's agent publish into the stack's namespace, and no other.
func GrantPutMetrics(role awsiam.IRole, namespace string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("PutDiskMetrics"),
		Actions:    jsii.Strings("cloudwatch:PutMetricData"),
		Resources:  jsii.Strings("*"), // PutMetricData takes no resource: the namespace condition limits it
		Conditions: &map[string]any{"StringEquals": map[string]any{"cloudwatch:namespace": namespace}},
	}))
}
