package config

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// key is one context key of the stack (`-c name=value`, cdk.json or ~/.cdk.json).
type key struct {
	Name    string
	Default string // as docs/infra.md shows it
	Doc     string // what it means: its row of docs/infra.md
	Example string // a value: docs/infra.md shows -c Name=Example

	fleet bool              // a key of the load-balanced mode: refused with instances = 1, else read and checked
	read  func(v any) error // sets the Config's field from the key's value (nil: unset, the default)
	check func() error      // refuses the field's value on its own (checks across keys: Config.validate)
}

// table is the table of every context key, in the order of docs/infra.md.
func table() []key { return new(Config).keys() }

// keys is the table, bound to c: FromContext fills c through it, in this order (a default may read a key above it).
//
// To add a key: a field in Config and one line here (then `go -C infra test ./config -run TestContextTable -update`
// rewrites the table of docs/infra.md).
func (c *Config) keys() []key {
	return []key{
		text("stackName", "AircraftPlatform", &c.StackName, matching(stackNamePattern, "want a letter, then letters, digits or '-' (at most 100)"), "CloudFormation stack name; use your own so that several stacks share one account (names of the log group and the certificate parameter follow it; everything else is generated)", "AircraftAlice"),
		text("stage", "dev", &c.Stage, oneOf("dev", "prod"), "`dev`: RDS, DocumentDB, bucket (emptied first) and logs are deleted with the stack, 1 day of backups. `prod`: termination protection, snapshots on delete, deletion protection, retained bucket and logs, at least 7 days of backups (see Stages)", "prod"),
		text("instanceType", "t2.micro", &c.InstanceType, matching(instanceTypePattern, "want an EC2 instance type such as t2.micro or t4g.small"), "EC2 type; Graviton types (`t4g.*`, `c7g.*`…) get an arm64 binary and the arm64 AMI. T2 exists only in the regions opened before 2019: elsewhere the template's rule `RegionOffersT2` refuses the change set and says to pass `t3.micro`. **Accounts on AWS's free plan** (since July 2025) may not launch t2.micro in any region: pass `-c instanceType=t3.micro`", "t3.micro"),
		text("allowedCidr", "0.0.0.0/0", &c.AllowedCidr, cidr("203.0.113.0/24"), "who may reach 443. Port 80 is closed without `domainName`; with it, port 80 (ACME challenge and redirect only) is open to the internet, since Let's Encrypt validates from unpublished addresses. `stage=prod` refuses `0.0.0.0/0` unless `allowOpenIngress=true`", "203.0.113.0/24"),
		boolean("allowOpenIngress", &c.AllowOpenIngress, "with `stage=prod`: accept `allowedCidr` `0.0.0.0/0`, a deliberately public API", "true"),
		shown("generated", text("bucketName", "", &c.BucketName, matching(bucketNamePattern, "not a valid S3 bucket name"), "data bucket name (global: pick a unique one)", "aircraft-data-acme-dev")),
		number("noncurrentVersionDays", fixed(30), &c.NoncurrentVersionDays, atLeast(1), "days before a noncurrent object version expires", "7"),
		shown("dev 1, prod 7", number("backupRetentionDays", c.defaultBackupDays, &c.BackupRetentionDays, between(1, 35), "automated backups of RDS and DocumentDB (1–35)", "14")),
		number("logRetentionDays", fixed(30), &c.LogRetentionDays, oneOf(validLogRetentionDays...), "retention of the service log group (a CloudWatch value: 1, 3, 5, 7, 14, 30, 60, 90, …)", "90"),
		dnsName("domainName", &c.DomainName, matching(domainPattern, "not a DNS name"), "serve a trusted certificate for this name by ACME (Let's Encrypt, http-01 on port 80) instead of a self-signed one. The release gate needs the name to resolve to the instance before the first create ends, so one instance needs `hostedZoneId` (the stack writes the record before the instance boots) or `elasticIpAllocationId` (an address you allocated and pointed the name at); refused at synth otherwise", "api.aircraft.example.com"),
		text("hostedZoneId", "", &c.HostedZoneID, matching(zoneIDPattern, "not a Route 53 zone id"), "with `domainName`: create its A record in this Route 53 zone", "Z0123456789ABCDEFGHIJ"),
		shown("none (the stack allocates one)", text("elasticIpAllocationId", "", &c.ElasticIPAllocationID, matching(eipAllocPattern, "want eipalloc-<hex>"), "with `domainName` and without `hostedZoneId`, one instance: associate this Elastic IP, allocated beforehand (`aws ec2 allocate-address`), which outlives the stack and its rollbacks; the output `ElasticIpAllocationId` replaces `ElasticIp`", "eipalloc-0123456789abcdef0")),
		text("acmeEmail", "", &c.AcmeEmail, matching(emailPattern, "want a plain e-mail address"), "with `domainName`: contact address for the ACME account", "ops@example.com"),
		shown("none (a new VPC)", text("vpcId", "", &c.VpcID, matching(vpcIDPattern, "want vpc-<hex>"), "deploy into this existing VPC, for accounts at their VPC quota (5 per region by default); needs the three keys below. The stack adds no subnets, routes or S3 endpoint (add a gateway endpoint to its route tables to keep S3 traffic inside AWS)", "vpc-0a1b2c3d4e5f60718")),
		text("availabilityZones", "", &c.AvailabilityZones, nil, "with `vpcId`: its zones, comma-separated, in the order of the subnet lists (at least two: RDS and DocumentDB need two)", "us-east-1a,us-east-1b"),
		text("publicSubnetIds", "", &c.PublicSubnetIDs, nil, "with `vpcId`: one public subnet per zone (route to an internet gateway, public IPs mapped at launch); the instance goes into the first", "subnet-0aaa…1,subnet-0aaa…2"),
		text("isolatedSubnetIds", "", &c.IsolatedSubnetIDs, nil, "with `vpcId`: one subnet per zone without a route to the internet, for RDS and DocumentDB", "subnet-0bbb…1,subnet-0bbb…2"),
		text("alarmEmail", "", &c.AlarmEmail, matching(emailPattern, "want a plain e-mail address"), "subscribe this address to the alarm topic (it confirms by e-mail)", "ops@example.com"),
		text("mongoUriSecretArn", "", &c.MongoURISecretArn, matching(secretArnPattern, "want the complete secret ARN (with its 6-character suffix)"), "complete ARN of a secret holding a MongoDB URI: no DocumentDB is made; the service reads the URI from that secret and may reach port 27017 in `mongoCidr` only (use a `mongodb+srv://` or `tls=true` URI: TLS is the URI's choice until the service refuses URIs without it)", "arn:aws:secretsmanager:us-east-1:123456789012:secret:aircraft/mongo-AbCdEf"),
		shown("none (required with `mongoUriSecretArn`)", text("mongoCidr", "", &c.MongoCidr, cidr("192.0.2.0/24"), "the network of the external MongoDB's servers: the only destination of the service's egress on 27017", "192.0.2.0/24")),
		number("instances", fixed(1), &c.Instances, between(1, maxFleetInstances), "number of service instances. `1`: the single-instance stack above, unchanged. 2–20: the [load-balanced mode](#more-than-one-instance-c-instancesn), which needs a certificate (`certificateArn`, or `domainName` + `hostedZoneId`)", "3"),
		fleetOnly(shown("`instances`", number("minInstances", func() int { return c.Instances }, &c.MinInstances, nil, "with `instances` > 1: lower bound of the Auto Scaling group", "2"))),
		fleetOnly(shown("`instances`+1", number("maxInstances", func() int { return c.Instances + 1 }, &c.MaxInstances, nil, "with `instances` > 1: upper bound; above `instances` it leaves room for the rolling release to start the new instance before it stops an old one", "6"))),
		fleetOnly(text("certificateArn", "", &c.CertificateArn, matching(certArnPattern, "want the ARN of an ACM certificate"), "with `instances` > 1: ACM certificate of the load balancer, in the stack's region. Without it, `domainName` + `hostedZoneId` get a DNS-validated certificate made by the stack", "arn:aws:acm:us-east-1:123456789012:certificate/…")),
		boolean("firstCreate", &c.FirstCreate, "with `stage=prod`: the first create, without the protections that block its rollback (termination and deletion protection, the retained data bucket); deploy again without it to turn them on ([First create](#a-first-create-that-can-be-retried))", "true"),
		fleetOnly(number("accessLogDays", fixed(90), &c.AccessLogDays, atLeast(1), "with `instances` > 1: days the load balancer's access logs are kept", "30")),
		booleanOn("pipeline", &c.Pipeline, "the [ingestion pipeline](#ingestion-pipeline): the worker Lambda function, the backfill state machine (aircraftd's backfills run there) and live ingestion. `false`: none of it, backfills run inside aircraftd", "false"),
		booleanOn("liveIngestion", &c.LiveIngestion, "with `pipeline`: the bucket's new objects are ingested within a minute (event notifications → SQS → the worker). `false` for teams that only backfill", "false"),
		number("workerMemoryMb", fixed(1769), &c.WorkerMemoryMB, between(128, 10240), "with `pipeline`: the worker's memory, MB; 1,769 MB is one full vCPU, what the decoder uses (the worker's Go heap may take three quarters of it: app/cmd/ingest-worker)", "3008"),
		number("workerTimeoutSeconds", fixed(300), &c.WorkerTimeoutSeconds, between(30, 900), "with `pipeline`: time of one invocation (a batch of at most 200 files, ~10 s per GB, files cut at 60 s of decoding and S3 stalls at 30 s); the queue's visibility timeout is 6×", "600"),
		shown("derived: `11` with one instance (see [Concurrency](#concurrency))", number("workerConcurrency", func() int { return c.defaultWorkerConcurrency() }, &c.WorkerConcurrency, between(3, 1000), "with `pipeline`: workers at once (the function's reserved concurrency): 2 for live ingestion, the rest the backfill map's MaxConcurrency (aircraftd's BACKFILL_CONCURRENCY). The default is what db.t3.micro's connections allow beside aircraftd's", "20")),
		number("liveBatchSize", fixed(100), &c.LiveBatchSize, between(1, 10000), "with `liveIngestion`: most new objects per invocation", "500"),
		number("liveBatchWindowSeconds", fixed(20), &c.LiveBatchWindowSeconds, between(0, 300), "with `liveIngestion`: how long the queue gathers new objects before it invokes the worker (a snapshot lands in the statistics within this plus its ingestion)", "5"),
	}
}

// defaultBackupDays is the default of backupRetentionDays: a day in dev, a week in prod.
func (c *Config) defaultBackupDays() int {
	if c.Stage == "prod" {
		return minProdBackupDays
	}
	return 1
}

func text(name, def string, p *string, check rule[string], doc, example string) key {
	shown := "none"
	if def != "" {
		shown = "`" + def + "`"
	}
	return key{Name: name, Default: shown, Doc: doc, Example: example,
		read:  func(v any) error { *p = str(v, def); return nil },
		check: checkValue(name, "%q", p, check)}
}

// dnsName is a text key holding a DNS name, lower-cased and without a final dot.
func dnsName(name string, p *string, check rule[string], doc, example string) key {
	k := text(name, "", p, check, doc, example)
	k.read = func(v any) error { *p = strings.TrimSuffix(strings.ToLower(str(v, "")), "."); return nil }
	return k
}

func boolean(name string, p *bool, doc, example string) key {
	return key{Name: name, Default: "`false`", Doc: doc, Example: example,
		read: func(v any) (err error) { *p, err = parseBool(name, v, false); return err }}
}

// booleanOn is a boolean key whose default is true.
func booleanOn(name string, p *bool, doc, example string) key {
	return key{Name: name, Default: "`true`", Doc: doc, Example: example,
		read: func(v any) (err error) { *p, err = parseBool(name, v, true); return err }}
}

func number(name string, def func() int, p *int, check rule[int], doc, example string) key {
	return key{Name: name, Default: "`" + strconv.Itoa(def()) + "`", Doc: doc, Example: example,
		read:  func(v any) (err error) { *p, err = parseInt(name, v, def()); return err },
		check: checkValue(name, "%d", p, check)}
}

func fixed(n int) func() int { return func() int { return n } }

// shown replaces the default docs/infra.md shows, for a default that is not one value.
func shown(def string, k key) key { k.Default = def; return k }

// fleetOnly marks a key of the load-balanced mode.
func fleetOnly(k key) key { k.fleet = true; return k }

// rule is a check of one value: why it is refused, or "" when it is fine.
type rule[T any] func(T) string

func checkValue[T any](name, verb string, p *T, check rule[T]) func() error {
	if check == nil {
		return nil
	}
	return func() error {
		if why := check(*p); why != "" {
			return fmt.Errorf("%s "+verb+": %s", name, *p, why)
		}
		return nil
	}
}

// matching refuses a value that is set and does not match re.
func matching(re *regexp.Regexp, why string) rule[string] {
	return func(s string) string {
		if s == "" || re.MatchString(s) {
			return ""
		}
		return why
	}
}

// cidr refuses a value that is not an IPv4 network (when set).
func cidr(example string) rule[string] {
	return func(s string) string {
		if s == "" || ipv4Network(s) {
			return ""
		}
		return "want an IPv4 network such as " + example
	}
}

func oneOf[T comparable](values ...T) rule[T] {
	return func(v T) string {
		if slices.Contains(values, v) {
			return ""
		}
		if len(values) == 2 {
			return fmt.Sprintf("want %v or %v", values[0], values[1])
		}
		return fmt.Sprintf("want one of %v", values)
	}
}

func atLeast(min int) rule[int] {
	return func(n int) string {
		if n < min {
			return fmt.Sprintf("want at least %d", min)
		}
		return ""
	}
}

func between(min, max int) rule[int] {
	return func(n int) string {
		if n < min || n > max {
			return fmt.Sprintf("want %d to %d", min, max)
		}
		return ""
	}
}

// ipv4Network reports whether s is an IPv4 network in CIDR form with no host bits set.
func ipv4Network(s string) bool {
	ip, network, err := net.ParseCIDR(s)
	return err == nil && ip.To4() != nil && ip.Equal(network.IP)
}

// str is a text value: v, trimmed, or def when v is unset or blank.
func str(v any, def string) string {
	switch v := v.(type) {
	case nil:
		return def
	case string:
		if s := strings.TrimSpace(v); s != "" {
			return s
		}
		return def
	default:
		return fmt.Sprint(v)
	}
}

func parseBool(name string, v any, def bool) (bool, error) {
	switch v := v.(type) {
	case nil:
		return def, nil
	case bool: // cdk.json
		return v, nil
	case string: // -c key=value
		switch strings.TrimSpace(v) {
		case "":
			return def, nil
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s %v: want true or false", name, v)
}

func parseInt(name string, v any, def int) (int, error) {
	switch v := v.(type) {
	case nil:
		return def, nil
	case float64: // numbers in cdk.json
		if v != float64(int(v)) {
			return 0, fmt.Errorf("%s %v: want a whole number", name, v)
		}
		return int(v), nil
	case string: // -c key=value
		if strings.TrimSpace(v) == "" {
			return def, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("%s %q: want a whole number", name, v)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("%s %v: want a whole number", name, v)
	}
}

// checkKeys refuses a context key the table does not have, naming the closest one: a misspelled key must fail synth,
// not deploy the default. Keys of the CDK itself are let through: feature flags ("@aws-cdk/…"), the CLI's ("aws:cdk:…",
// "acknowledged-issue-numbers") and the lookups of cdk.context.json ("ami:…"); all but one have a colon.
func checkKeys(context map[string]any) error {
	var unknown []string
	for name := range context {
		if strings.HasPrefix(name, "@") || strings.Contains(name, ":") || name == "acknowledged-issue-numbers" ||
			slices.ContainsFunc(table(), func(k key) bool { return k.Name == name }) {
			continue
		}
		unknown = append(unknown, name)
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	name := unknown[0]
	if near := closestKey(name); near != "" {
		return fmt.Errorf("unknown context key %q: did you mean %q?", name, near)
	}
	return fmt.Errorf("unknown context key %q (docs/infra.md lists the keys)", name)
}

// closestKey is the key nearest to s by edit distance (ignoring case), or "" when none is near.
func closestKey(s string) string {
	best, bestDist := "", max(2, len(s)/3)+1
	for _, k := range table() {
		if d := editDistance(strings.ToLower(s), strings.ToLower(k.Name)); d < bestDist {
			best, bestDist = k.Name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// contextTable renders the table of docs/infra.md's Context flags.
func contextTable() string {
	var b strings.Builder
	b.WriteString("| key | default | meaning | example |\n|---|---|---|---|\n")
	for _, k := range table() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | `-c %s=%s` |\n", k.Name, k.Default, k.Doc, k.Name, k.Example)
	}
	return b.String()
}
