package datastores

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// appUser is the name of the service's own database user in PostgreSQL and DocumentDB: not the master user, only the
// privileges its migrations and queries need. The first release creates it (connected as the master user) with the
// password of its secret; later releases connect as it.
const appUser = "aircraft_app"

// newAppCredentials is the generated secret of the service's database user ({"username", "password"}), for a store
// whose master credentials stay with the stack.
func newAppCredentials(scope constructs.Construct, id, store string) awssecretsmanager.Secret {
	return awssecretsmanager.NewSecret(scope, jsii.String(id), &awssecretsmanager.SecretProps{
		Description: jsii.String("Credentials of aircraftd's own " + store + " user " + appUser + " (least privilege; the master user's secret is for migrations)"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			SecretStringTemplate: jsii.String(`{"username":"` + appUser + `"}`),
			GenerateStringKey:    jsii.String("password"),
			ExcludeCharacters:    jsii.String(passwordExcludeCharacters),
			PasswordLength:       jsii.Number(32),
		},
	})
}
