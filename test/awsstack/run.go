package awsstack

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	http_helper "github.com/gruntwork-io/terratest/modules/http-helper"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/gruntwork-io/terratest/modules/retry"
	"github.com/gruntwork-io/terratest/modules/shell"

	"github.com/aircraftdata/platform/test/e2e"
	"github.com/aircraftdata/platform/test/testkit"
)

// State is what the deploy stage hands to the others (.test-data/Stack.json).
type State struct {
	StackName   string   `json:"stack_name"`
	Region      string   `json:"region"`
	AllowedCidr string   `json:"allowed_cidr"`
	Context     []string `json:"context"`      // the -c flags of deploy, reused by destroy
	OutputsFile string   `json:"outputs_file"` // written by cdk deploy --outputs-file
}

// Suite is one run of the AWS target.
type Suite struct {
	Settings Settings
	Folder   string // where .test-data/ is kept (this package's folder)
	CDK      CDK
}

const stateName = "Stack"

// planState names the stack and its context; it is saved before the deploy starts, so that a deploy that fails half-way
// is still torn down.
func (s *Suite) planState(t *testing.T) State {
	st := State{StackName: s.Settings.StackName, Region: s.Settings.Region, AllowedCidr: s.Settings.AllowedCidr}
	if st.StackName == "" {
		st.StackName = NewStackName(time.Now())
	}
	if st.AllowedCidr == "" {
		st.AllowedCidr = runnerCidr(t)
	}
	st.Context = s.Settings.CDKContext(st.StackName, st.AllowedCidr)
	st.OutputsFile = filepath.Join(s.Folder, ".test-data", st.StackName+"-outputs.json")
	return st
}

// loadState returns the saved state, or one for E2E_STACK_NAME (a stack deployed elsewhere).
func (s *Suite) loadState(t *testing.T) State {
	var st State
	found, err := LoadTestData(s.Folder, stateName, &st)
	if err != nil {
		t.Fatal(err)
	}
	if found && (s.Settings.StackName == "" || s.Settings.StackName == st.StackName) {
		logger.Default.Logf(t, "stack %s (from %s)", st.StackName, TestDataPath(s.Folder, stateName))
		return st
	}
	if s.Settings.StackName == "" {
		t.Fatalf("no stack to use: run the deploy stage, or set E2E_STACK_NAME")
	}
	st = State{StackName: s.Settings.StackName, Region: s.Settings.Region, AllowedCidr: s.Settings.AllowedCidr}
	if st.AllowedCidr == "" {
		st.AllowedCidr = "0.0.0.0/0" // destroy synthesizes with it; nothing is deployed with it
	}
	st.Context = s.Settings.CDKContext(st.StackName, st.AllowedCidr)
	return st
}

// runnerCidr is this machine's public IPv4 address as AWS sees it, /32: the only client the stack admits.
func runnerCidr(t *testing.T) string {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	status, body, err := http_helper.HTTPGetContextE(t, ctx, "https://checkip.amazonaws.com", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("find this runner's public address (or set E2E_ALLOWED_CIDR): %d %v", status, err)
	}
	cidr, err := CidrOf(body)
	if err != nil {
		t.Fatalf("find this runner's public address (or set E2E_ALLOWED_CIDR): %v", err)
	}
	return cidr
}

// Deploy is the deploy stage: cdk deploy of a stack of this run's own, outputs to a file.
func (s *Suite) Deploy(t *testing.T) {
	st := s.planState(t)
	if err := SaveTestData(s.Folder, stateName, st); err != nil {
		t.Fatal(err)
	}
	logger.Default.Logf(t, "deploying stack %s in %s (clients: %s)", st.StackName, st.Region, st.AllowedCidr)
	tool := s.CDK.Toolchain()
	shell.RunCommandContext(t, t.Context(), &tool)
	deploy := s.CDK.Command(DeployArgs(st.StackName, st.Context, st.OutputsFile)...)
	deploy.Env["AWS_REGION"] = st.Region
	start := time.Now()
	shell.RunCommandContext(t, t.Context(), &deploy)
	logger.Default.Logf(t, "stack %s deployed in %s", st.StackName, time.Since(start).Round(time.Second))
}

// Teardown is the teardown stage: cdk destroy (retried: a deletion can fail transiently), then the state goes.
func (s *Suite) Teardown(t *testing.T) {
	st := s.loadState(t)
	destroy := s.CDK.Command(DestroyArgs(st.StackName, st.Context)...)
	destroy.Env["AWS_REGION"] = st.Region
	// A context of its own: teardown must run even when the test's is ending.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := retry.DoWithRetryContextE(t, ctx, "cdk destroy "+st.StackName, 2, time.Minute, func() (string, error) {
		return "", shell.RunCommandContextE(t, ctx, &destroy)
	})
	if err != nil {
		t.Errorf("destroy %s: %v — delete it by hand: aws cloudformation delete-stack --stack-name %s --region %s",
			st.StackName, err, st.StackName, st.Region)
		return
	}
	// cdk destroy succeeds on a stack it cannot see (another region, a wrong name): ask CloudFormation itself.
	if err := stackGone(ctx, st); err != nil {
		t.Errorf("destroy %s: %v — delete it by hand: aws cloudformation delete-stack --stack-name %s --region %s",
			st.StackName, err, st.StackName, st.Region)
		return
	}
	_ = os.Remove(st.OutputsFile)
	if err := CleanupTestData(s.Folder, stateName); err != nil {
		t.Error(err)
	}
}

// stackGone reports, as an error, a stack that is still there after its destroy, or that cannot be looked up (a role
// without cloudformation:DescribeStacks must not pass for a clean teardown).
func stackGone(ctx context.Context, st State) error {
	cfg, err := awsConfig(ctx, st.Region)
	if err != nil {
		return err
	}
	resp, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &st.StackName})
	var status []string
	if resp != nil {
		for _, s := range resp.Stacks {
			status = append(status, string(s.StackStatus))
		}
	}
	return StackGoneProblem(st.StackName, status, err)
}

// StackGoneProblem judges DescribeStacks after a destroy: gone means CloudFormation's "does not exist" error (or a
// DELETE_COMPLETE stack); any other error, or any other status, is a stack that may still cost money.
func StackGoneProblem(stack string, statuses []string, err error) error {
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		return fmt.Errorf("cannot tell whether stack %s is gone: %w", stack, err)
	}
	for _, s := range statuses {
		if s != "DELETE_COMPLETE" {
			return fmt.Errorf("stack %s is still there (%s)", stack, s)
		}
	}
	return nil
}

// Validate is the validate stage: the shared API checks over HTTPS, then the AWS side.
func (s *Suite) Validate(t *testing.T) {
	st := s.loadState(t)
	out := s.outputs(t, st)
	logger.Default.Logf(t, "stack %s: %s, release %s, instance %s%s", st.StackName, out.APIURL, out.ReleaseID, out.InstanceID, out.AutoScalingGroupName)

	cfg := testConfig(t, st.Region)
	token, err := secretValue(t.Context(), cfg, out.ApiTokenSecretArn)
	if err != nil {
		t.Fatal(err)
	}
	tg := e2e.Target{
		Name:    "aws",
		BaseURL: out.APIURL,
		Token:   token,
		Store:   e2e.S3Store{Client: s3.NewFromConfig(cfg), Bucket: out.BucketName},
	}
	if out.SelfSigned() {
		tg.RootCAs = certificateFromSSM(t, cfg, out.CertificateParameterName)
	}
	if err := tg.WaitHealthy(t.Context(), t, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	d := e2e.LoadData(t)
	t.Run("api", func(t *testing.T) { e2e.Check(t, tg, e2e.NewRun(time.Now()), d) })
	if out.LoadBalanced() {
		t.Run("aws", func(t *testing.T) { s.checkFleet(t, cfg, st, out) })
	} else {
		t.Run("aws", func(t *testing.T) { s.checkAWS(t, cfg, st, out) })
	}
}

// outputs reads the stack's outputs: the deploy's file, else CloudFormation's DescribeStacks.
func (s *Suite) outputs(t *testing.T, st State) Outputs {
	if data, err := os.ReadFile(st.OutputsFile); st.OutputsFile != "" && err == nil {
		out, err := ParseOutputsFile(data, st.StackName)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cf := cloudformation.NewFromConfig(testConfig(t, st.Region))
	resp, err := cf.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: &st.StackName})
	if err != nil || len(resp.Stacks) != 1 {
		t.Fatalf("describe stack %s: %v", st.StackName, err)
	}
	out, err := OutputsFromCloudFormation(resp.Stacks[0].Outputs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// certificateFromSSM waits for the instance to publish its self-signed certificate and pins it.
func certificateFromSSM(t *testing.T, cfg aws.Config, parameter string) *x509.CertPool {
	var pool *x509.CertPool
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	_, err := retry.DoWithRetryContextE(t, ctx, "certificate from SSM "+parameter, 60, 10*time.Second, func() (string, error) {
		value, err := parameterValue(ctx, cfg, parameter)
		if err != nil {
			return "", err
		}
		p, err := testkit.PinnedPool([]byte(value))
		if err != nil {
			return "", fmt.Errorf("%s does not hold a certificate yet: %w", parameter, err)
		}
		pool = p
		return "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// checkAWS checks the deployed resources against the design.
func (s *Suite) checkAWS(t *testing.T, cfg aws.Config, st State, out Outputs) {
	ctx := t.Context()
	ec2c := ec2.NewFromConfig(cfg)

	var serviceGroup, vpc string
	t.Run("instance", func(t *testing.T) {
		resp, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{out.InstanceID}})
		if err != nil || len(resp.Reservations) != 1 || len(resp.Reservations[0].Instances) != 1 {
			t.Fatalf("describe instance %s: %v", out.InstanceID, err)
		}
		inst := resp.Reservations[0].Instances[0]
		report(t, InstanceProblems(inst, s.Settings.InstanceType, out.ElasticIP))
		if len(inst.SecurityGroups) != 1 {
			t.Fatalf("the instance has %d security groups, want 1", len(inst.SecurityGroups))
		}
		serviceGroup, vpc = aws.ToString(inst.SecurityGroups[0].GroupId), aws.ToString(inst.VpcId)
		var volumes []string
		for _, m := range inst.BlockDeviceMappings {
			if m.Ebs != nil {
				volumes = append(volumes, aws.ToString(m.Ebs.VolumeId))
			}
		}
		vols, err := ec2c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: volumes})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vols.Volumes {
			if !aws.ToBool(v.Encrypted) {
				t.Errorf("volume %s is not encrypted", aws.ToString(v.VolumeId))
			}
		}
	})
	if serviceGroup == "" {
		return
	}

	t.Run("security groups", func(t *testing.T) {
		resp, err := ec2c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
			Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range resp.SecurityGroups {
			id := aws.ToString(g.GroupId)
			report(t, SSHProblems(id, g.IpPermissions))
			switch {
			case id == serviceGroup:
				report(t, ServiceIngressProblems(id, g.IpPermissions, st.AllowedCidr, !out.SelfSigned()))
			case len(g.IpPermissions) > 0:
				// The databases' groups: their one port, from the service only.
				port := aws.ToInt32(g.IpPermissions[0].FromPort)
				report(t, OnlyFromGroupProblems(id+" ("+aws.ToString(g.GroupName)+")", g.IpPermissions, port, serviceGroup))
			}
		}
		// And from the outside: nothing answers on 22.
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(out.ElasticIP, "22"), 5*time.Second); err == nil {
			_ = conn.Close()
			t.Errorf("%s:22 accepts connections", out.ElasticIP)
		}
	})

	s.checkDataStores(t, cfg, out, serviceGroup)
}

// checkDataStores checks the database (admitting serviceGroup only) and the bucket: the same in both variants.
func (s *Suite) checkDataStores(t *testing.T, cfg aws.Config, out Outputs, serviceGroup string) {
	ctx := t.Context()
	ec2c := ec2.NewFromConfig(cfg)
	t.Run("database", func(t *testing.T) {
		id, err := DBInstanceID(out.DatabaseEndpoint)
		if err != nil {
			t.Fatal(err)
		}
		rdsc := rds.NewFromConfig(cfg)
		resp, err := rdsc.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: &id})
		if err != nil || len(resp.DBInstances) != 1 {
			t.Fatalf("describe database %s: %v", id, err)
		}
		db := resp.DBInstances[0]
		report(t, DatabaseProblems(db))
		var groups []string
		for _, g := range db.VpcSecurityGroups {
			groups = append(groups, aws.ToString(g.VpcSecurityGroupId))
		}
		sgs, err := ec2c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: groups})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range sgs.SecurityGroups {
			report(t, OnlyFromGroupProblems(aws.ToString(g.GroupId), g.IpPermissions, 5432, serviceGroup))
		}
		if v, err := dbParameter(ctx, rdsc, db, "rds.force_ssl"); err != nil {
			t.Error(err)
		} else if v != "1" {
			t.Errorf("rds.force_ssl = %q, want 1", v)
		}
	})

	t.Run("bucket", func(t *testing.T) {
		s3c, bucket := s3.NewFromConfig(cfg), &out.BucketName
		versioning, err := s3c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bucket})
		if err != nil {
			t.Fatalf("read the versioning of bucket %s: %v", out.BucketName, err)
		}
		if versioning.Status != s3types.BucketVersioningStatusEnabled {
			t.Errorf("bucket versioning is %q, want Enabled", versioning.Status)
		}
		encryption, err := s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: bucket})
		if err != nil {
			t.Fatalf("read the default encryption of bucket %s: %v", out.BucketName, err)
		}
		report(t, EncryptionProblems(encryption.ServerSideEncryptionConfiguration, s3types.ServerSideEncryptionAes256))
		policy, err := s3c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: bucket})
		if err != nil {
			t.Fatalf("read the policy of bucket %s: %v", out.BucketName, err)
		}
		if !DeniesInsecureTransport(aws.ToString(policy.Policy)) {
			t.Error("the bucket policy does not deny requests without TLS")
		}
		pab, err := s3c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: bucket})
		if err != nil {
			t.Fatalf("read the public access block of bucket %s: %v", out.BucketName, err)
		}
		report(t, PublicAccessProblems(pab.PublicAccessBlockConfiguration))
	})
}

func report(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

// CheckCredentials fails when no AWS credentials can be found; it logs the account otherwise.
func CheckCredentials(t *testing.T, region string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg, err := awsConfig(ctx, region)
	if err == nil {
		_, err = cfg.Credentials.Retrieve(ctx)
	}
	if err != nil {
		t.Fatalf("E2E_AWS=1 but no usable AWS credentials (environment, profile, web identity or instance role): %v", err)
	}
	account, err := accountID(ctx, cfg)
	if err != nil {
		t.Fatalf("AWS credentials do not work: %v", err)
	}
	logger.Default.Logf(t, "AWS account %s, region %s", account, region)
}
