// Package ciroles holds ci-roles.template.json, the CloudFormation template of the GitHub OIDC roles of the workflows
// (deploy, e2e, diff), which an administrator deploys once per account (docs/e2e.md: CI roles). Its tests read the
// roles' trust policies and compare the e2e role's permissions with the calls of the AWS suite.
package ciroles
