package main

// The ingestion pipeline (infra/pipeline): the worker Lambda function, the backfill state machine, live ingestion,
// their IAM, alarms and opt-outs, in both modes.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// worker returns the worker function (the stack has the CDK's own handlers besides it).
func (s *Synth) worker(t testing.TB) Resource {
	t.Helper()
	var found []Resource
	for _, f := range s.Resources("AWS::Lambda::Function") {
		if strings.HasPrefix(f.ID, "WorkerFunction") {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one worker function, have %d", len(found))
	}
	return found[0]
}

// notFromWorker drops the rules whose peer is the ingest worker's security group.
func (s *Synth) notFromWorker(rules []sgRule) []sgRule {
	return slices.DeleteFunc(rules, func(r sgRule) bool { return strings.HasPrefix(r.Peer, "WorkerSecurityGroup") })
}

// isPipelineLogs reports whether a log group is the worker's or the state machine's.
func isPipelineLogs(r Resource) bool {
	return strings.HasPrefix(r.ID, "WorkerLogs") || strings.HasPrefix(r.ID, "BackfillLogs")
}

// actionsOn maps each action of stmts to the resources it is allowed on.
func actionsOn(stmts []statement) map[string][]string {
	out := map[string][]string{}
	for _, st := range stmts {
		for _, a := range st.Actions {
			out[a] = append(out[a], st.Resources...)
		}
	}
	for a := range out {
		slices.Sort(out[a])
	}
	return out
}

func (s *Synth) idWithPrefix(t testing.TB, typ, prefix string) string {
	t.Helper()
	for _, r := range s.Resources(typ) {
		if strings.HasPrefix(r.ID, prefix) {
			return r.ID
		}
	}
	t.Fatalf("no %s %s*", typ, prefix)
	return ""
}

// envSettings is the set of setting names of .env.example (the app's table of settings).
func envSettings(t *testing.T) map[string]bool {
	t.Helper()
	example, err := os.ReadFile(filepath.Join(repo, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(?:# )?([A-Z][A-Z0-9_]*)=`).FindAllSubmatch(example, -1) {
		settings[string(m[1])] = true
	}
	return settings
}

// The worker: provided.al2023 on arm64, its code the reproducible build with the RDS CA bundle, in the isolated
// subnets, configured by the app's settings to connect as aircraft_worker with IAM auth over TLS verify-full.
func TestPipelineWorkerFunction(t *testing.T) {
	s := stackOf(t, "default")
	fn := s.worker(t)
	p := fn.Props
	if p["Runtime"] != "provided.al2023" || jsonOf(p["Architectures"]) != `["arm64"]` || p["Handler"] != "bootstrap" {
		t.Errorf("runtime %v %v %v: want provided.al2023, arm64, bootstrap", p["Runtime"], p["Architectures"], p["Handler"])
	}
	if p["MemorySize"] != float64(1769) || p["Timeout"] != float64(300) || p["ReservedConcurrentExecutions"] != float64(11) {
		t.Errorf("memory %v, timeout %v, reserved concurrency %v: want the defaults 1769, 300, 11", p["MemorySize"], p["Timeout"], p["ReservedConcurrentExecutions"])
	}
	vpc := p["VpcConfig"].(map[string]any)
	var subnets []string
	for _, sn := range list(vpc["SubnetIds"]) {
		subnets = append(subnets, fmt.Sprint(sn.(map[string]any)["Ref"]))
	}
	slices.Sort(subnets)
	if isolated := s.subnets(false); !slices.Equal(subnets, isolated) {
		t.Errorf("subnets %v, want the isolated ones %v", subnets, isolated)
	}
	env := map[string]string{}
	for k, v := range p["Environment"].(map[string]any)["Variables"].(map[string]any) {
		env[k] = joinedText(v)
	}
	db := s.One(t, "AWS::RDS::DBInstance").ID
	for k, want := range map[string]string{
		"DB_IAM_AUTH": "true", "DB_USER": "aircraft_worker", "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": "/var/task/rds-ca.pem",
		"DB_HOST": "${" + db + ".Endpoint.Address}", "DB_PORT": "${" + db + ".Endpoint.Port}", "DB_NAME": "aircraft_db",
		"S3_BUCKET": "${" + s.bucketID(t) + "}", "DB_READ_MAX_CONNS": "1",
	} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	settings := envSettings(t)
	for k := range env {
		if !settings[k] {
			t.Errorf("%s is no setting of the service (.env.example)", k)
		}
		if strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET") || k == "DATABASE_URL" {
			t.Errorf("%s: the worker reads no secret", k)
		}
	}
	logs := s.Resource(t, fmt.Sprint(p["LoggingConfig"].(map[string]any)["LogGroup"].(map[string]any)["Ref"]))
	if logs.Props["RetentionInDays"] != float64(s.Config.LogRetentionDays) {
		t.Errorf("worker logs kept %v days, want logRetentionDays %d", logs.Props["RetentionInDays"], s.Config.LogRetentionDays)
	}

	// The code: the asset folder holds the arm64 bootstrap and the RDS CA bundle, byte for byte.
	asset := fn.Raw["Metadata"].(map[string]any)["aws:asset:path"].(string)
	dir := filepath.Join(s.Dir, asset)
	bin, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	// ELF, 64-bit, little endian, e_machine 183 (EM_AARCH64).
	if len(bin) < 20 || string(bin[:4]) != "\x7fELF" || bin[4] != 2 || bin[18] != 183 || bin[19] != 0 {
		t.Errorf("bootstrap is not a linux/arm64 ELF binary")
	}
	ca, err := os.ReadFile(filepath.Join(dir, "rds-ca.pem"))
	want, _ := os.ReadFile(filepath.Join(repo, "infra", "rds-ca-bundle.pem"))
	if err != nil || string(ca) != string(want) {
		t.Errorf("the worker's rds-ca.pem is not infra/rds-ca-bundle.pem (%v)", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("the worker's code holds %d files, want bootstrap and rds-ca.pem", len(entries))
	}
}

// Worker → RDS 5432 and HTTPS (S3 through the gateway endpoint) only; nothing in; the database takes IAM auth.
func TestPipelineWorkerNetwork(t *testing.T) {
	s := stackOf(t, "default")
	groups := list(s.worker(t).Props["VpcConfig"].(map[string]any)["SecurityGroupIds"])
	if len(groups) != 1 {
		t.Fatalf("worker security groups %v", groups)
	}
	sg := fmt.Sprint(groups[0].(map[string]any)["Fn::GetAtt"].([]any)[0])
	db := s.databaseSG(t)
	want := []string{
		sgRule{Direction: "egress", Protocol: "tcp", FromPort: 443, ToPort: 443, Cidr: "0.0.0.0/0"}.String(),
		sgRule{Direction: "egress", Protocol: "tcp", FromPort: 5432, ToPort: 5432, Peer: db}.String(),
	}
	var got []string
	for _, r := range s.rulesOf(sg, "egress") {
		r.Group, r.PrefixRef = "", ""
		got = append(got, r.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("worker egress %v, want %v", got, want)
	}
	if in := s.rulesOf(sg, "ingress"); len(in) != 0 {
		t.Errorf("worker ingress %v, want none", in)
	}
	if !slices.ContainsFunc(s.rulesOf(db, "ingress"), func(r sgRule) bool { return r.Peer == sg && r.FromPort == 5432 && r.ToPort == 5432 }) {
		t.Error("the database does not admit the worker on 5432")
	}
	if s.One(t, "AWS::RDS::DBInstance").Props["EnableIAMDatabaseAuthentication"] != true {
		t.Error("the database does not take IAM database auth")
	}
}

// Least privilege: no wildcard action; the worker connects as aircraft_worker only and reads the bucket; the state
// machine invokes the worker, lists the data bucket and writes the results bucket only; aircraftd starts, reads and
// stops the backfills only.
func TestPipelineIAM(t *testing.T) {
	s := stackOf(t, "default")
	bucket, db, results := "${"+s.bucketID(t)+".Arn}", s.One(t, "AWS::RDS::DBInstance").ID, s.idWithPrefix(t, "AWS::S3::Bucket", "BackfillResults")
	workerRole := fmt.Sprint(s.worker(t).Props["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0])
	machine := s.One(t, "AWS::StepFunctions::StateMachine")
	machineRole := fmt.Sprint(machine.Props["RoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0])
	fn := s.worker(t).ID
	for _, role := range []string{workerRole, machineRole, s.serviceRole(t)} {
		for _, st := range s.policyStatements(role) {
			for _, a := range st.Actions {
				if strings.Contains(a, "*") {
					t.Errorf("%s: wildcard action %s on %v", role, a, st.Resources)
				}
			}
		}
		if m := s.Resource(t, role).Props["ManagedPolicyArns"]; m != nil {
			t.Errorf("%s: managed policies %v", role, m)
		}
	}

	w := actionsOn(s.policyStatements(workerRole))
	dbuser := "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:${" + db + ".DbiResourceId}/aircraft_worker"
	for action, want := range map[string][]string{
		"rds-db:connect": {dbuser}, "s3:GetObject": {bucket + "/*"}, "s3:ListBucket": {bucket},
		"logs:PutLogEvents": {"${" + s.idWithPrefix(t, "AWS::Logs::LogGroup", "WorkerLogs") + ".Arn}"},
		"sqs:DeleteMessage": {"${" + s.idWithPrefix(t, "AWS::SQS::Queue", "LiveIngestionQueue") + ".Arn}"},
	} {
		if !slices.Equal(w[action], want) {
			t.Errorf("worker %s on %v, want %v", action, w[action], want)
		}
	}
	for a := range w {
		if service, _, _ := strings.Cut(a, ":"); !slices.Contains([]string{"rds-db", "s3", "logs", "ec2", "sqs"}, service) {
			t.Errorf("worker action %s", a)
		}
		if strings.HasPrefix(a, "s3:") && a != "s3:GetObject" && a != "s3:ListBucket" {
			t.Errorf("worker S3 action %s: read-only", a)
		}
	}

	m := actionsOn(s.policyStatements(machineRole))
	if want := []string{"${" + fn + ".Arn}", "${" + fn + ".Arn}:*"}; !slices.Equal(m["lambda:InvokeFunction"], want) {
		t.Errorf("state machine invokes %v, want the worker only", m["lambda:InvokeFunction"])
	}
	if !slices.Equal(m["s3:ListBucket"], []string{bucket}) {
		t.Errorf("state machine lists %v, want the data bucket only", m["s3:ListBucket"])
	}
	for a, res := range m {
		if strings.HasPrefix(a, "s3:") && a != "s3:ListBucket" {
			if want := []string{"arn:${AWS::Partition}:s3:::${" + results + "}/*"}; !slices.Equal(res, want) {
				t.Errorf("state machine %s on %v, want the results bucket only", a, res)
			}
		}
		if strings.HasPrefix(a, "states:") {
			for _, r := range res {
				if r != "${"+machine.ID+"}" && !strings.Contains(r, `"Ref":"`+machine.ID+`"`) {
					t.Errorf("state machine %s on %s: its own executions only", a, r)
				}
			}
		}
	}
	if !slices.Equal(m["states:StartExecution"], []string{"${" + machine.ID + "}"}) {
		t.Errorf("the Distributed Map starts %v, want its own state machine", m["states:StartExecution"])
	}

	svc := actionsOn(s.policyStatements(s.serviceRole(t)))
	executions := "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${" + machine.ID + ".Name}:*"
	mapRuns := "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:mapRun:${" + machine.ID + ".Name}/*"
	for action, want := range map[string][]string{
		"states:StartExecution": {"${" + machine.ID + "}"}, "states:DescribeExecution": {executions},
		"states:StopExecution": {executions}, "states:ListMapRuns": {executions}, "states:DescribeMapRun": {mapRuns},
	} {
		if !slices.Equal(svc[action], want) {
			t.Errorf("aircraftd %s on %v, want %v", action, svc[action], want)
		}
	}
	for a := range svc {
		if strings.HasPrefix(a, "states:") && !slices.Contains([]string{"states:StartExecution", "states:DescribeExecution",
			"states:StopExecution", "states:ListMapRuns", "states:DescribeMapRun"}, a) {
			t.Errorf("aircraftd %s", a)
		}
	}
}

// definition is the backfill state machine's definition, intrinsics rendered as ${...}.
func (s *Synth) definition(t testing.TB) map[string]any {
	t.Helper()
	var def map[string]any
	mustUnmarshal(t, []byte(joinedText(s.One(t, "AWS::StepFunctions::StateMachine").Props["DefinitionString"])), &def)
	return def
}

// path reads a JSONPath of the simple form $.a.b from v.
func path(v any, p string) any {
	for _, k := range strings.Split(strings.TrimPrefix(p, "$."), ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// The state machine reads the input aircraftd sends (docs/ingestion.md), lists the data bucket under each prefix with
// one map run per prefix, batches the keys, bounds the concurrency, retries, and never brings the map's results back
// into the state (Step Functions' 256 KiB limit): they go to the results bucket.
func TestBackfillDefinition(t *testing.T) {
	s := stackOf(t, "default")
	// An execution's input as aircraftd's StepFunctions runner writes it (app/internal/backfill/stepfunctions.go).
	var input map[string]any
	mustUnmarshal(t, []byte(`{"backfill":"bf-1","bucket":"b","prefixes":["2024/01/01/","2024/01/02/"],"batch_size":100,
		"max_concurrency":9,"tolerated_failure_percentage":5,"retries":3}`), &input)

	def := s.definition(t)
	outer := def["States"].(map[string]any)[def["StartAt"].(string)].(map[string]any)
	if outer["Type"] != "Map" || outer["ItemsPath"] != "$.prefixes" || outer["MaxConcurrency"] != float64(1) {
		t.Errorf("the outer Map: %s, want one prefix at a time over $.prefixes", jsonOf(outer))
	}
	if r, ok := outer["ResultPath"]; !ok || r != nil {
		t.Errorf("the outer Map keeps its iterations' results (ResultPath %v): want null", jsonOf(r))
	}
	if _, ok := outer["End"]; !ok {
		t.Error("the outer Map is not the only state")
	}
	// The item of each iteration: the prefix, and what the inner map reads, from the execution's input.
	item := map[string]any{}
	for k, v := range outer["ItemSelector"].(map[string]any) {
		k = strings.TrimSuffix(k, ".$")
		if v == "$$.Map.Item.Value" {
			item[k] = input["prefixes"].([]any)[0]
		} else if got := path(input, v.(string)); got != nil {
			item[k] = got
		} else {
			t.Errorf("ItemSelector %s=%v is not in the input", k, v)
		}
	}
	proc := outer["ItemProcessor"].(map[string]any)
	inner := proc["States"].(map[string]any)[proc["StartAt"].(string)].(map[string]any)
	cfg := inner["ItemProcessor"].(map[string]any)["ProcessorConfig"].(map[string]any)
	if inner["Type"] != "Map" || cfg["Mode"] != "DISTRIBUTED" || cfg["ExecutionType"] != "STANDARD" {
		t.Fatalf("the inner state is no Distributed Map: %s", jsonOf(cfg))
	}
	reader := inner["ItemReader"].(map[string]any)
	params := reader["Parameters"].(map[string]any)
	if reader["Resource"] != "arn:${AWS::Partition}:states:::s3:listObjectsV2" || params["Bucket"] != "${"+s.bucketID(t)+"}" ||
		path(item, params["Prefix.$"].(string)) != "2024/01/01/" {
		t.Errorf("ItemReader %s: want ListObjectsV2 of the data bucket under the item's prefix", jsonOf(reader))
	}
	batcher := inner["ItemBatcher"].(map[string]any)
	if path(item, batcher["MaxItemsPerBatchPath"].(string)) != float64(100) ||
		path(item, batcher["BatchInput"].(map[string]any)["backfill.$"].(string)) != "bf-1" {
		t.Errorf("ItemBatcher %s: want batch_size items and the backfill's id", jsonOf(batcher))
	}
	if path(item, inner["MaxConcurrencyPath"].(string)) != float64(9) || path(item, inner["ToleratedFailurePercentagePath"].(string)) != float64(5) {
		t.Errorf("MaxConcurrencyPath %v, ToleratedFailurePercentagePath %v: want max_concurrency, tolerated_failure_percentage",
			inner["MaxConcurrencyPath"], inner["ToleratedFailurePercentagePath"])
	}
	results := s.idWithPrefix(t, "AWS::S3::Bucket", "BackfillResults")
	writer, _ := inner["ResultWriter"].(map[string]any)
	if writer["Resource"] != "arn:${AWS::Partition}:states:::s3:putObject" || path(writer, "$.Parameters.Bucket") != "${"+results+"}" {
		t.Errorf("ResultWriter %s: want the results bucket", jsonOf(writer))
	}
	if o, ok := inner["OutputPath"]; !ok || o != nil {
		t.Errorf("the Distributed Map's output %v reaches the outer Map: want OutputPath null", jsonOf(o))
	}
	if results == s.bucketID(t) {
		t.Error("the results are written to the data bucket, whose new objects are ingested")
	}

	// The batch: the worker, invoked with the batch, retried on Lambda's errors and the worker's dependency errors.
	p := inner["ItemProcessor"].(map[string]any)
	task := p["States"].(map[string]any)[p["StartAt"].(string)].(map[string]any)
	if task["Resource"] != "arn:${AWS::Partition}:states:::lambda:invoke" || path(task, "$.Parameters.FunctionName") != "${"+s.worker(t).ID+".Arn}" ||
		task["Parameters"].(map[string]any)["Payload.$"] != "$" {
		t.Errorf("the batch task %s: want the worker invoked with the batch", jsonOf(task))
	}
	retry := list(task["Retry"])
	if len(retry) != 1 {
		t.Fatalf("Retry %s: want one rule", jsonOf(task["Retry"]))
	}
	r := retry[0].(map[string]any)
	var errs []string
	for _, e := range list(r["ErrorEquals"]) {
		errs = append(errs, e.(string))
	}
	for _, e := range []string{"Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.SdkClientException", "UnavailableError"} {
		if !slices.Contains(errs, e) {
			t.Errorf("Retry does not retry %s", e)
		}
	}
	if slices.Contains(errs, "States.ALL") || slices.Contains(errs, "States.TaskFailed") {
		t.Errorf("Retry %v retries every error: a batch's bad files are the worker's to quarantine", errs)
	}
	if r["MaxAttempts"] != input["retries"] || r["BackoffRate"] != float64(2) || r["IntervalSeconds"] != float64(2) {
		t.Errorf("Retry %s: want 3 attempts 2 s apart, doubling (aircraftd's BACKFILL_RETRIES and BACKFILL_RETRY_SECONDS)", jsonOf(r))
	}

	// Logged, every event, no execution data; no X-Ray.
	machine := s.One(t, "AWS::StepFunctions::StateMachine").Props
	logging := machine["LoggingConfiguration"].(map[string]any)
	if logging["Level"] != "ALL" || logging["IncludeExecutionData"] != false || jsonOf(machine["TracingConfiguration"]) != `{"Enabled":false}` {
		t.Errorf("logging %s, tracing %s", jsonOf(logging), jsonOf(machine["TracingConfiguration"]))
	}
	env := s.serviceEnv(t)
	if env["BACKFILL_STATE_MACHINE_ARN"] != "${"+s.One(t, "AWS::StepFunctions::StateMachine").ID+"}" || env["BACKFILL_RETRIES"] != "3" ||
		env["BACKFILL_RETRY_SECONDS"] != "2" || env["DB_WORKER_USER"] != "aircraft_worker" || env["BACKFILL_MAX_RUNNING"] != "1" {
		t.Errorf("aircraftd's environment does not name the state machine and its retries: %v", env)
	}
}

// The pipeline's alarms watch its own resources: the state machine, the dead-letter queue, the worker, and the
// database's connections against 90% of what a db.t3.micro allows (three quarters of 1 GiB / 9,531,392 B = 84).
func TestPipelineAlarmsWatchTheirResources(t *testing.T) {
	s := stackOf(t, "default")
	machine, fn := s.One(t, "AWS::StepFunctions::StateMachine").ID, s.worker(t).ID
	dlq := s.idWithPrefix(t, "AWS::SQS::Queue", "LiveIngestionDeadLetterQueue")
	of := map[string]string{"AWS/States": machine, "AWS/Lambda": fn, "AWS/SQS": dlq, "AWS/RDS": s.One(t, "AWS::RDS::DBInstance").ID}
	n := 0
	for _, a := range s.Resources("AWS::CloudWatch::Alarm") {
		if !strings.HasPrefix(a.ID, "PipelineAlarms") {
			continue
		}
		n++
		ns := a.Props["Namespace"].(string)
		if !strings.Contains(jsonOf(a.Props["Dimensions"]), `"`+of[ns]+`"`) {
			t.Errorf("%s watches %s, want %s", a.ID, jsonOf(a.Props["Dimensions"]), of[ns])
		}
		want := float64(1)
		if a.Props["MetricName"] == "DatabaseConnections" {
			want = float64(84 * 90 / 100)
		}
		if a.Props["Threshold"] != want || a.Props["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" {
			t.Errorf("%s: %v %v, want ≥ %v", a.ID, a.Props["ComparisonOperator"], a.Props["Threshold"], want)
		}
	}
	if n != 7 {
		t.Errorf("%d pipeline alarms, want 7", n)
	}
}

// Live ingestion: every object created in the data bucket is notified to an encrypted, TLS-only queue whose visibility
// timeout is 6× the worker's timeout, with a dead-letter queue after 5 deliveries; the queue invokes the worker in
// batches, with partial batch responses, at most 2 at once.
func TestLiveIngestion(t *testing.T) {
	s := stackOf(t, "default")
	queue, dlq := s.idWithPrefix(t, "AWS::SQS::Queue", "LiveIngestionQueue"), s.idWithPrefix(t, "AWS::SQS::Queue", "LiveIngestionDeadLetterQueue")
	q := s.Resource(t, queue).Props
	if q["SqsManagedSseEnabled"] != true || s.Resource(t, dlq).Props["SqsManagedSseEnabled"] != true {
		t.Error("the queues are not encrypted")
	}
	timeout := s.worker(t).Props["Timeout"].(float64)
	if q["VisibilityTimeout"] != 6*timeout {
		t.Errorf("visibility timeout %v, want 6 × the worker's timeout %v", q["VisibilityTimeout"], timeout)
	}
	if r := q["RedrivePolicy"].(map[string]any); r["maxReceiveCount"] != float64(5) || !refTo(r["deadLetterTargetArn"], dlq) {
		t.Errorf("redrive policy %s: want 5 deliveries, then the dead-letter queue", jsonOf(r))
	}
	// TLS only: each queue's policy denies requests without aws:SecureTransport; S3 may send to the queue, from the
	// data bucket only.
	for _, id := range []string{queue, dlq} {
		var policy string
		for _, p := range s.Resources("AWS::SQS::QueuePolicy") {
			if slices.ContainsFunc(list(p.Props["Queues"]), func(v any) bool { return refTo(v, id) }) {
				policy = jsonOf(p.Props["PolicyDocument"])
			}
		}
		if !strings.Contains(policy, `"Condition":{"Bool":{"aws:SecureTransport":"false"}},"Effect":"Deny"`) {
			t.Errorf("%s is not TLS-only: %s", id, policy)
		}
		if id == queue && (!strings.Contains(policy, `"Service":"s3.amazonaws.com"`) || !strings.Contains(policy, `"aws:SourceArn":{"Fn::GetAtt":["`+s.bucketID(t)+`","Arn"]}`)) {
			t.Errorf("the queue does not admit the data bucket's notifications (only): %s", policy)
		}
	}
	n := s.One(t, "Custom::S3BucketNotifications").Props
	if !refTo(n["BucketName"], s.bucketID(t)) || jsonOf(n["NotificationConfiguration"]) !=
		`{"QueueConfigurations":[{"Events":["s3:ObjectCreated:*"],"QueueArn":{"Fn::GetAtt":["`+queue+`","Arn"]}}]}` {
		t.Errorf("bucket notifications %s: want every object created in the data bucket, to the queue", jsonOf(n))
	}
	esm := s.One(t, "AWS::Lambda::EventSourceMapping").Props
	if !refTo(esm["FunctionName"], s.worker(t).ID) || !refTo(esm["EventSourceArn"], queue) || esm["BatchSize"] != float64(100) ||
		esm["MaximumBatchingWindowInSeconds"] != float64(20) || jsonOf(esm["FunctionResponseTypes"]) != `["ReportBatchItemFailures"]` ||
		jsonOf(esm["ScalingConfig"]) != `{"MaximumConcurrency":2}` {
		t.Errorf("event source %s: want the queue → the worker, 100 per batch within 20 s, partial batch responses, 2 at once", jsonOf(esm))
	}
	// The worker's concurrency is shared: the queue's 2, the map's the rest.
	if env := s.serviceEnv(t); env["BACKFILL_CONCURRENCY"] != "9" {
		t.Errorf("BACKFILL_CONCURRENCY %s, want 11 - 2 = 9", env["BACKFILL_CONCURRENCY"])
	}
}

// The derived concurrency: db.t3.micro allows floor(0.75 × 2^30 / 9531392) = 84 connections; 7 are reserved, each
// aircraftd takes at most 7 and each worker 6. One instance: (84-7-7)/6 = 11 workers; the fleet of -c instances=3
// (maxInstances 4): (84-7-28)/6 = 8. Context overrides it, and sizes the function.
func TestPipelineConcurrency(t *testing.T) {
	for _, c := range []struct {
		config              string
		ctx                 map[string]any
		workers, backfill   int
		memory, timeout, vt float64
	}{
		{"default", nil, 11, 9, 1769, 300, 1800},
		{"loadBalanced", nil, 8, 6, 1769, 300, 1800},
		{"", map[string]any{"workerConcurrency": "20", "workerMemoryMb": "3008", "workerTimeoutSeconds": "600", "liveBatchSize": "5",
			"liveBatchWindowSeconds": "0"}, 20, 18, 3008, 600, 3600},
	} {
		var s *Synth
		if c.config != "" {
			s = stackOf(t, c.config)
		} else {
			s = synth(t, c.ctx, fakeBinary(t, "concurrency"))
		}
		fn := s.worker(t).Props
		if fn["ReservedConcurrentExecutions"] != float64(c.workers) || fn["MemorySize"] != c.memory || fn["Timeout"] != c.timeout {
			t.Errorf("%s %v: reserved %v, memory %v, timeout %v; want %d, %v, %v", c.config, c.ctx, fn["ReservedConcurrentExecutions"],
				fn["MemorySize"], fn["Timeout"], c.workers, c.memory, c.timeout)
		}
		if vt := s.Resource(t, s.idWithPrefix(t, "AWS::SQS::Queue", "LiveIngestionQueue")).Props["VisibilityTimeout"]; vt != c.vt {
			t.Errorf("%s %v: visibility timeout %v, want %v", c.config, c.ctx, vt, c.vt)
		}
		var env map[string]string
		if s.Config.LoadBalanced() {
			env = fleetEnv(t, s)
		} else {
			env = s.serviceEnv(t)
		}
		if env["BACKFILL_CONCURRENCY"] != fmt.Sprint(c.backfill) {
			t.Errorf("%s %v: BACKFILL_CONCURRENCY %s, want %d", c.config, c.ctx, env["BACKFILL_CONCURRENCY"], c.backfill)
		}
		if c.ctx != nil {
			esm := s.One(t, "AWS::Lambda::EventSourceMapping").Props
			if esm["BatchSize"] != float64(5) || esm["MaximumBatchingWindowInSeconds"] != nil && esm["MaximumBatchingWindowInSeconds"] != float64(0) {
				t.Errorf("event source %s: want batches of 5, no window", jsonOf(esm))
			}
		}
	}
}

// Both modes run backfills on the state machine: aircraftd's environment names it and the worker's user, its role may
// run it.
func TestPipelineInBothModes(t *testing.T) {
	for _, name := range []string{"default", "prod", "externalMongo", "loadBalanced", "loadBalancedDNS"} {
		s := stackOf(t, name)
		machine := s.One(t, "AWS::StepFunctions::StateMachine").ID
		var env map[string]string
		if s.Config.LoadBalanced() {
			env = fleetEnv(t, s)
		} else {
			env = s.serviceEnv(t)
		}
		if env["BACKFILL_STATE_MACHINE_ARN"] != "${"+machine+"}" || env["DB_WORKER_USER"] != "aircraft_worker" {
			t.Errorf("%s: BACKFILL_STATE_MACHINE_ARN %q, DB_WORKER_USER %q", name, env["BACKFILL_STATE_MACHINE_ARN"], env["DB_WORKER_USER"])
		}
		svc := actionsOn(s.policyStatements(s.serviceRole(t)))
		if !slices.Equal(svc["states:StartExecution"], []string{"${" + machine + "}"}) {
			t.Errorf("%s: aircraftd may start %v", name, svc["states:StartExecution"])
		}
		// The results bucket and the logs follow the data bucket's stage: kept by a protected prod (the lifecycle rule
		// empties it), emptied and deleted with a dev stack; the logs are operational and go with every stack.
		results := s.Resource(t, s.idWithPrefix(t, "AWS::S3::Bucket", "BackfillResults"))
		if want := map[bool]string{true: "Retain", false: "Delete"}[s.Config.Protected()]; results.Raw["DeletionPolicy"] != want {
			t.Errorf("%s: results bucket DeletionPolicy %v, want %s", name, results.Raw["DeletionPolicy"], want)
		}
		if rules := jsonOf(results.Props["LifecycleConfiguration"]); !strings.Contains(rules, `"ExpirationInDays":30`) {
			t.Errorf("%s: the result files do not expire: %s", name, rules)
		}
		for _, lg := range s.Resources("AWS::Logs::LogGroup") {
			if isPipelineLogs(lg) && (lg.Raw["DeletionPolicy"] != "Delete" || lg.Props["RetentionInDays"] != float64(s.Config.LogRetentionDays)) {
				t.Errorf("%s: %s DeletionPolicy %v, retention %v", name, lg.ID, lg.Raw["DeletionPolicy"], lg.Props["RetentionInDays"])
			}
		}
	}
}

// -c liveIngestion=false: no queue, no notification, no event source; the map gets every worker. -c pipeline=false:
// none of the pipeline; aircraftd runs backfills itself, with no Step Functions rights and no worker user.
func TestPipelineOptOuts(t *testing.T) {
	live := synth(t, map[string]any{"liveIngestion": "false"}, fakeBinary(t, "no live"))
	for _, typ := range []string{"AWS::SQS::Queue", "AWS::Lambda::EventSourceMapping", "Custom::S3BucketNotifications"} {
		if n := len(live.Resources(typ)); n != 0 {
			t.Errorf("liveIngestion=false: %d %s", n, typ)
		}
	}
	if live.worker(t).Props["ReservedConcurrentExecutions"] != float64(11) || live.serviceEnv(t)["BACKFILL_CONCURRENCY"] != "11" {
		t.Errorf("liveIngestion=false: the map does not get every worker: %v", live.serviceEnv(t)["BACKFILL_CONCURRENCY"])
	}
	if len(live.Resources("AWS::StepFunctions::StateMachine")) != 1 {
		t.Error("liveIngestion=false: no state machine")
	}

	off := synth(t, map[string]any{"pipeline": "false"}, fakeBinary(t, "no pipeline"))
	for _, typ := range []string{"AWS::StepFunctions::StateMachine", "AWS::SQS::Queue", "AWS::Lambda::EventSourceMapping"} {
		if n := len(off.Resources(typ)); n != 0 {
			t.Errorf("pipeline=false: %d %s", n, typ)
		}
	}
	for _, f := range off.Resources("AWS::Lambda::Function") {
		if strings.HasPrefix(f.ID, "Worker") {
			t.Errorf("pipeline=false: the worker %s", f.ID)
		}
	}
	env := off.serviceEnv(t)
	for _, k := range []string{"BACKFILL_STATE_MACHINE_ARN", "DB_WORKER_USER", "BACKFILL_CONCURRENCY"} {
		if _, ok := env[k]; ok {
			t.Errorf("pipeline=false: %s is set", k)
		}
	}
	for a := range actionsOn(off.policyStatements(off.serviceRole(t))) {
		if strings.HasPrefix(a, "states:") {
			t.Errorf("pipeline=false: aircraftd may %s", a)
		}
	}
	if len(off.Resources("AWS::S3::Bucket")) != 1 {
		t.Error("pipeline=false: a bucket besides the data bucket")
	}
}

// aircraftd's pipeline settings are settings of the service (.env.example).
func TestBackfillEnvironmentIsTheServiceSettings(t *testing.T) {
	settings := envSettings(t)
	env := stackOf(t, "default").serviceEnv(t)
	for _, k := range []string{"BACKFILL_STATE_MACHINE_ARN", "BACKFILL_MAX_RUNNING", "BACKFILL_CONCURRENCY", "BACKFILL_RETRIES",
		"BACKFILL_RETRY_SECONDS", "DB_WORKER_USER"} {
		if _, ok := env[k]; !ok {
			t.Errorf("aircraftd's environment lacks %s", k)
		}
		if !settings[k] {
			t.Errorf("%s is no setting of the service (.env.example, app/internal/config)", k)
		}
	}
}
