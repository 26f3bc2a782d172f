package awsstack

import (
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// checkFleet is the AWS side of the load-balanced variant (E2E_INSTANCES > 1), after the API checks have passed through
// the load balancer: the Auto Scaling group has its instances, each built like the single instance and reachable from
// the load balancer only, the security group chain clients → load balancer → fleet → data stores, and the data stores
// as in the single variant.
func (s *Suite) checkFleet(t *testing.T, cfg aws.Config, st State, out Outputs) {
	ctx := t.Context()
	ec2c := ec2.NewFromConfig(cfg)

	var fleetGroup, vpc string
	var addresses []string
	t.Run("group", func(t *testing.T) {
		desired, ids, err := groupInstances(ctx, cfg, out.AutoScalingGroupName)
		if err != nil {
			t.Fatal(err)
		}
		report(t, FleetCapacityProblems(int(desired), len(ids), s.Settings.Instances))
		if len(ids) == 0 {
			return // DescribeInstances without IDs would describe every instance of the account
		}
		resp, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			t.Fatalf("describe the group's instances %v: %v", ids, err)
		}
		for _, r := range resp.Reservations {
			for _, inst := range r.Instances {
				if fleetGroup == "" && len(inst.SecurityGroups) > 0 {
					fleetGroup, vpc = aws.ToString(inst.SecurityGroups[0].GroupId), aws.ToString(inst.VpcId)
				}
				report(t, FleetInstanceProblems(inst, s.Settings.InstanceType, fleetGroup))
				if ip := aws.ToString(inst.PublicIpAddress); ip != "" {
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
			Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		perms := map[string][]ec2types.IpPermission{}
		for _, g := range resp.SecurityGroups {
			perms[aws.ToString(g.GroupId)] = g.IpPermissions
			report(t, SSHProblems(aws.ToString(g.GroupId), g.IpPermissions))
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
			report(t, OnlyFromGroupProblems(id, p, aws.ToInt32(p[0].FromPort), fleetGroup))
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

	s.checkDataStores(t, cfg, out, fleetGroup)
}

// LoadBalancerGroupOf is the security group the fleet's group admits: the load balancer's ("" if none, or if the fleet
// admits more than one group - which OnlyFromGroupProblems then reports).
func LoadBalancerGroupOf(fleetPerms []ec2types.IpPermission) string {
	for _, p := range fleetPerms {
		if len(p.UserIdGroupPairs) == 1 {
			return aws.ToString(p.UserIdGroupPairs[0].GroupId)
		}
	}
	return ""
}
