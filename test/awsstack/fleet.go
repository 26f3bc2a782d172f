package awsstack

import (
	"net"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/gruntwork-io/terratest/modules/aws"
)

// checkFleet is the AWS side of the load-balanced variant (E2E_INSTANCES > 1), after the API checks have passed through
// the load balancer: the Auto Scaling group has its instances, each built like the single instance and reachable from
// the load balancer only, the security group chain clients → load balancer → fleet → data stores, and the data stores
// as in the single variant.
func (s *Suite) checkFleet(t *testing.T, st State, out Outputs) {
	ctx := t.Context()
	region := st.Region
	ec2c := aws.NewEc2ClientContext(t, ctx, region)

	var fleetGroup, vpc string
	var addresses []string
	t.Run("group", func(t *testing.T) {
		info := aws.GetCapacityInfoForAsgContext(t, ctx, out.AutoScalingGroupName, region)
		report(t, FleetCapacityProblems(info.DesiredCapacity, info.CurrentCapacity, s.Settings.Instances))
		ids := aws.GetInstanceIdsForAsgContext(t, ctx, out.AutoScalingGroupName, region)
		resp, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			t.Fatalf("describe the group's instances %v: %v", ids, err)
		}
		for _, r := range resp.Reservations {
			for _, inst := range r.Instances {
				if fleetGroup == "" && len(inst.SecurityGroups) > 0 {
					fleetGroup, vpc = awssdk.ToString(inst.SecurityGroups[0].GroupId), awssdk.ToString(inst.VpcId)
				}
				report(t, FleetInstanceProblems(inst, s.Settings.InstanceType, fleetGroup))
				if ip := awssdk.ToString(inst.PublicIpAddress); ip != "" {
					addresses = append(addresses, ip)
				}
			}
		}
	})
	if fleetGroup == "" {
		return
	}

	t.Run("security groups", func(t *testing.T) {
		resp, err := ec2c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
			Filters: []ec2types.Filter{{Name: awssdk.String("vpc-id"), Values: []string{vpc}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		perms := map[string][]ec2types.IpPermission{}
		for _, g := range resp.SecurityGroups {
			perms[awssdk.ToString(g.GroupId)] = g.IpPermissions
			report(t, SSHProblems(awssdk.ToString(g.GroupId), g.IpPermissions))
		}
		lbGroup := LoadBalancerGroupOf(perms[fleetGroup])
		if lbGroup == "" {
			t.Fatalf("the fleet's group %s admits no other group: %v", fleetGroup, perms[fleetGroup])
		}
		report(t, OnlyFromGroupProblems(fleetGroup+" (fleet)", perms[fleetGroup], 443, lbGroup))
		report(t, LoadBalancerIngressProblems(lbGroup+" (load balancer)", perms[lbGroup], st.AllowedCidr))
		for id, p := range perms {
			if id == fleetGroup || id == lbGroup || len(p) == 0 {
				continue
			}
			// The data stores' groups (RDS 5432, DocumentDB 27017, EFS 2049): their one port, from the fleet only.
			report(t, OnlyFromGroupProblems(id, p, awssdk.ToInt32(p[0].FromPort), fleetGroup))
		}
		// From the outside, the instances answer nothing: not SSH, not even HTTPS (the load balancer only).
		for _, ip := range addresses {
			for _, port := range []string{"22", "443"} {
				if conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), 5*time.Second); err == nil {
					_ = conn.Close()
					t.Errorf("instance %s:%s accepts connections from outside the load balancer", ip, port)
				}
			}
		}
	})

	s.checkDataStores(t, st, out, fleetGroup)
}

// LoadBalancerGroupOf is the security group the fleet's group admits: the load balancer's ("" if none, or if the fleet
// admits more than one group - which OnlyFromGroupProblems then reports).
func LoadBalancerGroupOf(fleetPerms []ec2types.IpPermission) string {
	for _, p := range fleetPerms {
		if len(p.UserIdGroupPairs) == 1 {
			return awssdk.ToString(p.UserIdGroupPairs[0].GroupId)
		}
	}
	return ""
}
