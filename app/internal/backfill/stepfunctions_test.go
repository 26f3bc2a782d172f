package backfill_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/aircraftdata/platform/app/internal/backfill"
)

// fakeSFN is a Step Functions with one execution of two map runs.
type fakeSFN struct {
	started *sfn.StartExecutionInput
	stopped string
	status  types.ExecutionStatus
}

func (f *fakeSFN) StartExecution(_ context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	f.started, f.status = in, types.ExecutionStatusRunning
	return &sfn.StartExecutionOutput{ExecutionArn: aws.String("arn:exec:" + aws.ToString(in.Name))}, nil
}

func (f *fakeSFN) DescribeExecution(_ context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	return &sfn.DescribeExecutionOutput{ExecutionArn: in.ExecutionArn, Status: f.status}, nil
}

func (f *fakeSFN) StopExecution(_ context.Context, in *sfn.StopExecutionInput, _ ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	f.stopped, f.status = aws.ToString(in.ExecutionArn), types.ExecutionStatusAborted
	return &sfn.StopExecutionOutput{}, nil
}

func (f *fakeSFN) ListMapRuns(_ context.Context, in *sfn.ListMapRunsInput, _ ...func(*sfn.Options)) (*sfn.ListMapRunsOutput, error) {
	if aws.ToString(in.NextToken) == "" {
		return &sfn.ListMapRunsOutput{MapRuns: []types.MapRunListItem{{MapRunArn: aws.String("run-1")}}, NextToken: aws.String("p2")}, nil
	}
	return &sfn.ListMapRunsOutput{MapRuns: []types.MapRunListItem{{MapRunArn: aws.String("run-2")}}}, nil
}

func (f *fakeSFN) DescribeMapRun(_ context.Context, in *sfn.DescribeMapRunInput, _ ...func(*sfn.Options)) (*sfn.DescribeMapRunOutput, error) {
	if aws.ToString(in.MapRunArn) == "run-1" {
		return &sfn.DescribeMapRunOutput{Status: types.MapRunStatusSucceeded,
			ExecutionCounts: &types.MapRunExecutionCounts{Total: 10, Succeeded: 9, Failed: 1},
			ItemCounts:      &types.MapRunItemCounts{Total: 1000, Succeeded: 900, Failed: 100}}, nil
	}
	return &sfn.DescribeMapRunOutput{Status: types.MapRunStatusRunning,
		ExecutionCounts: &types.MapRunExecutionCounts{Total: 4, Succeeded: 2, Running: 1, TimedOut: 1},
		ItemCounts:      &types.MapRunItemCounts{Total: 400, Succeeded: 200, Running: 100, TimedOut: 100}}, nil
}

// memStore keeps backfills in memory.
type memStore struct{ b map[string]backfill.Backfill }

func (m *memStore) CreateBackfill(ctx context.Context, b backfill.Backfill, maxRunning int, _ time.Duration) error {
	if ids, _ := m.RunningBackfills(ctx); len(ids) >= maxRunning {
		return backfill.ErrFull
	}
	m.b[b.ID] = b
	return nil
}

func (m *memStore) RunningBackfills(context.Context) ([]string, error) {
	var ids []string
	for id, b := range m.b {
		if b.State == backfill.Running {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (m *memStore) LoadBackfill(_ context.Context, id string) (backfill.Backfill, bool, error) {
	b, ok := m.b[id]
	return b, ok, nil
}

func (m *memStore) AddProgress(context.Context, string, backfill.Delta, time.Duration) (bool, error) {
	panic("not used by StepFunctions")
}

func (m *memStore) SaveProgress(_ context.Context, id string, p backfill.Progress, _ []backfill.FailedBatch) error {
	b := m.b[id]
	b.Progress = p
	m.b[id] = b
	return nil
}

func (m *memStore) EndBackfill(_ context.Context, id string, s backfill.State, e string) error {
	b := m.b[id]
	b.State, b.Error = s, e
	m.b[id] = b
	return nil
}

func (m *memStore) RequestStop(_ context.Context, id string) (bool, error) {
	b, ok := m.b[id]
	b.StopRequested = true
	m.b[id] = b
	return ok, nil
}

func (m *memStore) SetExecution(_ context.Context, id, e string) error {
	b := m.b[id]
	b.Execution = e
	m.b[id] = b
	return nil
}

// A backfill on Step Functions starts an execution with the day prefixes of its range, answers the map runs' counts (a
// child execution a batch, an item a file), and DELETE stops the execution.
func TestStepFunctionsRunner(t *testing.T) {
	ctx := context.Background()
	client := &fakeSFN{}
	store := &memStore{b: map[string]backfill.Backfill{}}
	limits := backfill.Limits{MaxRunning: 1, BatchSize: 100, Concurrency: 40, Retries: 3, Backoff: time.Second,
		ToleratedFailurePercent: 5, Lease: time.Minute}
	m := &backfill.Manager{Store: store, Bucket: "hist", Limits: limits, Cost: backfill.Cost{PerBatch: 1},
		Runner: &backfill.StepFunctions{Client: client, StateMachine: "arn:sm", Store: store, Limits: limits}}
	b, err := m.Start(ctx, backfill.Request{Prefix: "readsb-hist/", From: "2023-12-31", To: "2024-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	var in map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(client.started.Input)), &in); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(client.started.StateMachineArn) != "arn:sm" || in["bucket"] != "hist" || in["batch_size"] != 100.0 ||
		in["max_concurrency"] != 40.0 || in["tolerated_failure_percentage"] != 5.0 || b.Execution == "" ||
		len(in["prefixes"].([]any)) != 2 || in["prefixes"].([]any)[1] != "readsb-hist/2024/01/01/" {
		t.Errorf("started %+v with %v; backfill %+v", client.started, in, b)
	}
	got, _, err := m.Get(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := backfill.Progress{BatchesListed: 14, BatchesDone: 11, BatchesFailed: 2, Files: 1100, FilesIngested: 1100, FilesFailed: 200}
	if got.Progress != want || got.State != backfill.Running || got.EstimatedCostUSD != 13 {
		t.Errorf("progress %+v %s cost %v, want %+v running 13", got.Progress, got.State, got.EstimatedCostUSD, want)
	}
	got, _, err = m.Stop(ctx, b.ID)
	if err != nil || client.stopped != b.Execution || got.State != backfill.Stopped {
		t.Errorf("stop: %v, stopped %q, state %s", err, client.stopped, got.State)
	}

	// With one allowed, a second backfill starts once the first one's execution ended, whether or not anyone asked for
	// it since.
	second, err := m.Start(ctx, backfill.Request{Prefix: "a/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, backfill.Request{Prefix: "b/"}); !errors.Is(err, backfill.ErrFull) {
		t.Errorf("a backfill while one runs: %v, want ErrFull", err)
	}
	client.status = types.ExecutionStatusSucceeded
	third, err := m.Start(ctx, backfill.Request{Prefix: "c/"})
	if err != nil {
		t.Fatalf("a backfill once the other's execution ended: %v", err)
	}
	if got, _, _ := store.LoadBackfill(ctx, second.ID); got.State != backfill.Succeeded || third.State != backfill.Running {
		t.Errorf("the ended backfill is %s, the new one %s", got.State, third.State)
	}
}
