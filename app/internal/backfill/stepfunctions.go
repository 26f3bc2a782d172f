package backfill

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// SFN is the part of the Step Functions client a StepFunctions runner uses (*sfn.Client).
type SFN interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, opts ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
	ListMapRuns(ctx context.Context, in *sfn.ListMapRunsInput, opts ...func(*sfn.Options)) (*sfn.ListMapRunsOutput, error)
	DescribeMapRun(ctx context.Context, in *sfn.DescribeMapRunInput, opts ...func(*sfn.Options)) (*sfn.DescribeMapRunOutput, error)
}

// ExecutionStore is what StepFunctions keeps in the Store besides it (postgres/backfillstore).
type ExecutionStore interface {
	Store
	// SetExecution saves the execution that runs a backfill.
	SetExecution(ctx context.Context, id, execution string) error
}

// StepFunctions runs backfills as executions of a state machine (BACKFILL_STATE_MACHINE_ARN) whose Distributed Map
// lists the prefixes, batches the keys and runs the batches in the ingest worker. The execution's input
// (docs/ingestion.md "Backfills"):
//
//	{"backfill": id, "bucket": …, "prefixes": [...], "batch_size": n, "max_concurrency": n,
//	 "tolerated_failure_percentage": n, "retries": n}
//
// Its progress is the map runs' (DescribeMapRun): a child execution is a batch, an item a file.
type StepFunctions struct {
	Client       SFN
	StateMachine string
	Store        ExecutionStore
	Limits       Limits
}

// Name is "stepfunctions".
func (s *StepFunctions) Name() string { return "stepfunctions" }

// Start starts an execution named for the backfill: starting it again is idempotent.
func (s *StepFunctions) Start(ctx context.Context, b *Backfill) error {
	prefixes, err := b.Request.Prefixes()
	if err != nil {
		return err
	}
	in, err := json.Marshal(map[string]any{
		"backfill": b.ID, "bucket": b.Bucket, "prefixes": prefixes, "batch_size": b.BatchSize,
		"max_concurrency": b.Concurrency, "tolerated_failure_percentage": s.Limits.ToleratedFailurePercent,
		"retries": s.Limits.Retries,
	})
	if err != nil {
		return err
	}
	out, err := s.Client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(s.StateMachine), Name: aws.String("backfill-" + b.ID), Input: aws.String(string(in)),
	})
	if err != nil {
		return fmt.Errorf("stepfunctions: start execution: %w", err)
	}
	b.Execution = aws.ToString(out.ExecutionArn)
	return s.Store.SetExecution(ctx, b.ID, b.Execution)
}

// Refresh reads the execution's state and its map runs' counts, saves them, and ends the backfill when the execution
// ended.
func (s *StepFunctions) Refresh(ctx context.Context, b *Backfill) error {
	if b.Execution == "" {
		return nil // being started
	}
	exec, err := s.Client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(b.Execution)})
	if err != nil {
		return fmt.Errorf("stepfunctions: describe execution: %w", err)
	}
	var p Progress
	var runs []string
	pages := sfn.NewListMapRunsPaginator(s.Client, &sfn.ListMapRunsInput{ExecutionArn: aws.String(b.Execution)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("stepfunctions: list map runs: %w", err)
		}
		for _, r := range page.MapRuns {
			runs = append(runs, aws.ToString(r.MapRunArn))
		}
	}
	listing := true
	for _, arn := range runs {
		run, err := s.Client.DescribeMapRun(ctx, &sfn.DescribeMapRunInput{MapRunArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("stepfunctions: describe map run: %w", err)
		}
		if e := run.ExecutionCounts; e != nil {
			p.BatchesListed += e.Total
			p.BatchesDone += e.Succeeded
			p.BatchesFailed += e.Failed + e.TimedOut + e.Aborted
		}
		if i := run.ItemCounts; i != nil {
			p.Files += i.Succeeded
			p.FilesFailed += i.Failed + i.TimedOut + i.Aborted
			p.FilesIngested += i.Succeeded
		}
		listing = listing && run.Status != types.MapRunStatusRunning
	}
	b.Progress = p
	b.ListingDone = exec.Status != types.ExecutionStatusRunning && listing
	if err := s.Store.SaveProgress(ctx, b.ID, b.Progress, b.FailedBatches); err != nil {
		return err
	}
	var end State
	switch exec.Status {
	case types.ExecutionStatusSucceeded:
		end = Succeeded
	case types.ExecutionStatusAborted:
		end = Stopped
	case types.ExecutionStatusFailed, types.ExecutionStatusTimedOut:
		end = Failed
		b.Error = "execution " + string(exec.Status) + ": " + aws.ToString(exec.Error)
	default:
		return nil
	}
	b.State = end
	return s.Store.EndBackfill(ctx, b.ID, end, b.Error)
}

// Stop stops the execution: its map runs stop starting batches.
func (s *StepFunctions) Stop(ctx context.Context, b Backfill) error {
	if b.Execution == "" {
		return nil
	}
	_, err := s.Client.StopExecution(ctx, &sfn.StopExecutionInput{
		ExecutionArn: aws.String(b.Execution), Error: aws.String("Stopped"), Cause: aws.String("DELETE /api/v1/backfills/" + b.ID),
	})
	if err != nil {
		return fmt.Errorf("stepfunctions: stop execution: %w", err)
	}
	return nil
}
