package awsstack

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// Outputs are the stack's CloudFormation outputs (infra/stack.go) that the suite uses.
type Outputs struct {
	APIURL                   string // ApiUrl
	BucketName               string
	DatabaseEndpoint         string
	DatabaseSecretArn        string
	MongoSecretArn           string
	ApiTokenSecretArn        string
	InstanceID               string // InstanceId
	ElasticIP                string // ElasticIp
	LogGroupName             string
	ReleaseID                string // ReleaseId
	CertificateParameterName string // only without a domain: the self-signed certificate's SSM parameter

	// The load-balanced variant (instances > 1), instead of InstanceId and ElasticIp.
	LoadBalancerDNSName  string // LoadBalancerDnsName
	AutoScalingGroupName string
	TargetGroupArn       string
	FileSystemID         string // FileSystemId
}

// requiredOutputs must all be present and non-empty: the common ones, then those of the single instance or of the
// load-balanced variant (recognised by LoadBalancerDnsName).
var (
	requiredOutputs = []string{"ApiUrl", "BucketName", "DatabaseEndpoint", "DatabaseSecretArn", "MongoSecretArn",
		"ApiTokenSecretArn", "LogGroupName", "ReleaseId"}
	singleOutputs       = []string{"InstanceId", "ElasticIp"}
	loadBalancedOutputs = []string{"LoadBalancerDnsName", "AutoScalingGroupName", "TargetGroupArn", "FileSystemId"}
)

// OutputsFromMap validates the outputs of a stack given as name → value.
func OutputsFromMap(m map[string]string) (Outputs, error) {
	var missing []string
	required := append(slices.Clone(requiredOutputs), singleOutputs...)
	if m["LoadBalancerDnsName"] != "" {
		required = append(slices.Clone(requiredOutputs), loadBalancedOutputs...)
	}
	for _, k := range required {
		if strings.TrimSpace(m[k]) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return Outputs{}, fmt.Errorf("stack outputs lack %s (have %v)", strings.Join(missing, ", "), keys(m))
	}
	o := Outputs{
		APIURL: strings.TrimRight(m["ApiUrl"], "/"), BucketName: m["BucketName"], DatabaseEndpoint: m["DatabaseEndpoint"],
		DatabaseSecretArn: m["DatabaseSecretArn"], MongoSecretArn: m["MongoSecretArn"], ApiTokenSecretArn: m["ApiTokenSecretArn"],
		InstanceID: m["InstanceId"], ElasticIP: m["ElasticIp"], LogGroupName: m["LogGroupName"], ReleaseID: m["ReleaseId"],
		CertificateParameterName: m["CertificateParameterName"],
		LoadBalancerDNSName:      m["LoadBalancerDnsName"], AutoScalingGroupName: m["AutoScalingGroupName"],
		TargetGroupArn: m["TargetGroupArn"], FileSystemID: m["FileSystemId"],
	}
	u, err := url.Parse(o.APIURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return Outputs{}, fmt.Errorf("ApiUrl %q: want https://host", o.APIURL)
	}
	return o, nil
}

// ParseOutputsFile reads the file of `cdk deploy --outputs-file`: {"<stack>": {"<output>": "<value>", …}, …}.
func ParseOutputsFile(data []byte, stackName string) (Outputs, error) {
	var all map[string]map[string]string
	if err := json.Unmarshal(data, &all); err != nil {
		return Outputs{}, fmt.Errorf("outputs file: %w", err)
	}
	m, ok := all[stackName]
	if !ok {
		return Outputs{}, fmt.Errorf("outputs file has no stack %s (has %v)", stackName, keys(all))
	}
	return OutputsFromMap(m)
}

// OutputsFromCloudFormation reads the outputs of DescribeStacks (a stack deployed earlier, without its file).
func OutputsFromCloudFormation(outs []cftypes.Output) (Outputs, error) {
	m := map[string]string{}
	for _, o := range outs {
		if o.OutputKey != nil && o.OutputValue != nil {
			m[*o.OutputKey] = *o.OutputValue
		}
	}
	return OutputsFromMap(m)
}

// LoadBalanced reports whether the stack is the load-balanced variant (an Auto Scaling group behind an ALB).
func (o Outputs) LoadBalanced() bool { return o.AutoScalingGroupName != "" }

// SelfSigned reports whether the service serves the self-signed certificate published to SSM (no domain), which the
// client pins, rather than an ACME one that the system roots trust.
func (o Outputs) SelfSigned() bool { return o.CertificateParameterName != "" }

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
