package main

// What the stack needs of its region, refused by CloudFormation before it creates anything: a template rule is
// evaluated when the change set is made, so a region the stack cannot serve fails in seconds with its reason instead of
// at the release gate, 20-30 minutes into a first create.

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/host"
)

// rdsRootCN is the subject of a regional root of the RDS bundle ("Amazon RDS eu-west-1 Root CA RSA2048 G1"); the Beta
// and Preview roots are not regions.
var rdsRootCN = regexp.MustCompile(`^Amazon RDS ([a-z]{2}(?:-[a-z]+)+-\d) Root CA `)

// CABundleRegions are the regions whose RDS root certificates infra/rds-ca-bundle.pem holds, sorted: elsewhere the
// service cannot verify RDS or DocumentDB.
func CABundleRegions() ([]string, error) {
	p, err := host.RDSCABundle()
	if err != nil {
		return nil, err
	}
	rest, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var regions []string
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if m := rdsRootCN.FindStringSubmatch(cert.Subject.CommonName); m != nil && !slices.Contains(regions, m[1]) {
			regions = append(regions, m[1])
		}
	}
	slices.Sort(regions)
	return regions, nil
}

// t2Regions are the regions that offer the T2 family: those opened before 2019. The newer ones offer T3 and later only.
// The list errs on the side of refusing: a region missing here is refused with the type to pass instead.
var t2Regions = []string{
	"ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ca-central-1",
	"eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
}

// freePlanType is the instance type to pass where t2 is refused: in a region without T2, and for accounts on AWS's free
// plan (since July 2025), which may launch only the types the plan names.
const freePlanType = "t3.micro"

// addRegionRules adds the template's rules: the RDS CA bundle covers the region, and a T2 instance type is offered
// there.
func addRegionRules(stack awscdk.Stack, instanceType string) {
	regions, err := CABundleRegions()
	if err != nil {
		panic(err) // RDSCABundle is checked at every synth: the release would fail the same way
	}
	rule := func(id string, regions []string, why string) {
		awscdk.NewCfnRule(stack, jsii.String(id), &awscdk.CfnRuleProps{
			Assertions: &[]*awscdk.CfnRuleAssertion{{
				Assert:            awscdk.Fn_ConditionContains(jsii.Strings(regions...), awscdk.Aws_REGION()),
				AssertDescription: jsii.String(why),
			}},
		})
	}
	rule("RegionHasRdsCa", regions, "infra/rds-ca-bundle.pem has no RDS root certificate of this region, so the "+
		"service could not verify RDS or DocumentDB: refresh the bundle (docs/infra.md: Security) or deploy in one of: "+
		strings.Join(regions, ", "))
	if strings.HasPrefix(instanceType, "t2.") {
		rule("RegionOffersT2", t2Regions, instanceType+" (T2) is not offered in this region: deploy with -c instanceType="+
			freePlanType+" (accounts on AWS's free plan: pass it in every region)")
	}
}
