package awsstack

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The AWS lookups of the stages, on the SDK directly: terratest's aws module would bring two dozen SDK services to
// compile for the handful of calls below.

// awsConfig is the SDK's default configuration in region: credentials from the environment, a profile, web identity or
// the instance role.
func awsConfig(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load the AWS configuration for %s: %w", region, err)
	}
	return cfg, nil
}

// testConfig is awsConfig for a test, which it ends when there is none.
func testConfig(t *testing.T, region string) aws.Config {
	t.Helper()
	cfg, err := awsConfig(t.Context(), region)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// accountID is the account the credentials belong to.
func accountID(ctx context.Context, cfg aws.Config) (string, error) {
	resp, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("get the caller identity: %w", err)
	}
	return aws.ToString(resp.Account), nil
}

// secretValue is the string value of a Secrets Manager secret (name or ARN).
func secretValue(ctx context.Context, cfg aws.Config, id string) (string, error) {
	resp, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &id})
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", id, err)
	}
	return aws.ToString(resp.SecretString), nil
}

// parameterValue is the value of an SSM parameter, decrypted.
func parameterValue(ctx context.Context, cfg aws.Config, name string) (string, error) {
	in := &ssm.GetParameterInput{Name: &name, WithDecryption: aws.Bool(true)}
	resp, err := ssm.NewFromConfig(cfg).GetParameter(ctx, in)
	if err != nil {
		return "", fmt.Errorf("read SSM parameter %s: %w", name, err)
	}
	if resp.Parameter == nil {
		return "", fmt.Errorf("read SSM parameter %s: no parameter in the answer", name)
	}
	return aws.ToString(resp.Parameter.Value), nil
}

// groupInstances is an Auto Scaling group's desired capacity and the IDs of its instances.
func groupInstances(ctx context.Context, cfg aws.Config, group string) (desired int32, ids []string, err error) {
	resp, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx,
		&autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		return 0, nil, fmt.Errorf("describe Auto Scaling group %s: %w", group, err)
	}
	if len(resp.AutoScalingGroups) != 1 {
		return 0, nil, fmt.Errorf("describe Auto Scaling group %s: %d groups found", group, len(resp.AutoScalingGroups))
	}
	g := resp.AutoScalingGroups[0]
	for _, inst := range g.Instances {
		ids = append(ids, aws.ToString(inst.InstanceId))
	}
	return aws.ToInt32(g.DesiredCapacity), ids, nil
}

// dbParameter is the value of a parameter in the database's parameter group.
func dbParameter(ctx context.Context, c *rds.Client, db rdstypes.DBInstance, name string) (string, error) {
	if len(db.DBParameterGroups) == 0 {
		return "", fmt.Errorf("database %s has no parameter group", aws.ToString(db.DBInstanceIdentifier))
	}
	group := aws.ToString(db.DBParameterGroups[0].DBParameterGroupName)
	pages := rds.NewDescribeDBParametersPaginator(c, &rds.DescribeDBParametersInput{DBParameterGroupName: &group})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("read parameter group %s: %w", group, err)
		}
		for _, p := range page.Parameters {
			if aws.ToString(p.ParameterName) == name {
				return aws.ToString(p.ParameterValue), nil
			}
		}
	}
	return "", fmt.Errorf("parameter group %s has no %s", group, name)
}
