package host

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// SessionManagerActions are what the SSM agent needs for Session Manager and nothing else: register the instance and
// open the session's channels. AmazonSSMManagedInstanceCore would add ssm:GetParameter(s) on every parameter of the
// account, Run Command, associations, inventory and patching. None of these actions takes a resource.
var SessionManagerActions = []string{
	"ssm:UpdateInstanceInformation",
	"ssmmessages:CreateControlChannel",
	"ssmmessages:CreateDataChannel",
	"ssmmessages:OpenControlChannel",
	"ssmmessages:OpenDataChannel",
}

// GrantSessionManager lets an instance role serve Session Manager sessions (the shell that replaces SSH).
func GrantSessionManager(role awsiam.IRole) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("SessionManager"),
		Actions:   jsii.Strings(SessionManagerActions...),
		Resources: jsii.Strings("*"),
	}))
}
