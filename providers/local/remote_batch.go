package local

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/data/dscache"
	"github.com/leptonml/lepton/runtime/runspec"
	"github.com/zclconf/go-cty/cty"
)

// applyRemote scores the rows on node 0 of a cloud cluster, or waits again
// for the run an interrupted apply started there, then copies the
// predictions from the run storage to the output (a file here or an object
// URL). As for a training, the run's id is in state before the node is
// told, so a killed apply leaves one run going and the next apply waits for
// it.
func (b *BatchInference) applyRemote(ctx context.Context, req providers.ApplyRequest, out batchOutput, tg target) (cty.Value, error) {
	c, err := openRuns(ctx, b.runs, req.Env, tg)
	if err != nil {
		return cty.NilVal, err
	}
	logf := logger(req.Env)
	p, st, err := awaitNode0(ctx, req, c, tg, func(id string) error { return b.handOver(ctx, req, tg, c, id) })
	if err != nil {
		where := tg.address
		if tg.address == req.Address {
			where = "its own nodes" // resources { }: named after the batch
		}
		return cty.NilVal, fmt.Errorf("batch inference on %s: %w", where, err)
	}
	res := st.Result
	if res == nil || res.Digest == "" {
		return cty.NilVal, fmt.Errorf("run %s on %s node 0 succeeded without an output digest in its status (%s)", p.Run, tg.address, c.Store.Where(runspec.StatusKey(p.Run, 0)))
	}
	key := runspec.OutputKey(p.Run)
	rc, err := c.Store.Get(ctx, key)
	if err != nil {
		return cty.NilVal, fmt.Errorf("downloading the predictions of run %s: %w", p.Run, err)
	}
	defer rc.Close()
	digest, err := out.write(ctx, req.Env, func(w io.Writer) error {
		if _, err := io.Copy(w, rc); err != nil {
			return fmt.Errorf("copying %s to %s: %w", c.Store.Where(key), out, err)
		}
		return nil
	})
	if err != nil {
		return cty.NilVal, err
	}
	if digest != res.Digest {
		// The output now holds bytes that are not the run's: remove them,
		// so nothing is left that state would take for the predictions.
		out.remove(context.WithoutCancel(ctx), req.Env)
		return cty.NilVal, fmt.Errorf("the predictions of run %s hash to %s, but the node reported %s: %s was changed or corrupted", p.Run, digest, res.Digest, c.Store.Where(key))
	}
	if err := c.RemoveRun(ctx, tg.key, 0, p.Run); err != nil {
		logf("run %s finished, but its node's inbox could not be cleared: %v", p.Run, err)
	}
	logf("run %s succeeded: %d rows to %s", p.Run, res.Rows, out)
	return withComputed("batch_inference", req.Planned, map[string]cty.Value{
		"rows": numVal(float64(res.Rows)), "digest": cty.StringVal(digest),
	}), nil
}

// handOver uploads the model and the raw rows and puts the run in node 0's
// inbox. The rows are read here as a local run reads them and travel in the
// dataset cache format, under their digest (uploaded once).
func (b *BatchInference) handOver(ctx context.Context, req providers.ApplyRequest, tg target, c *remote.Client, id string) error {
	digest := str(attr(req.Planned, "model"))
	model, err := artifactStore(req.Env.DataDir).Get(ctx, digest)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	ds, err := loadBatchRows(ctx, req.Env, str(attr(req.Planned, "dataset")), model)
	if err != nil {
		return err
	}
	mo, err := uploadArtifact(ctx, c, req.Env.DataDir, digest)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	in := runspec.BatchInputKey(ds.Digest)
	err = c.Upload(ctx, in, func() (io.ReadCloser, error) {
		// Encoded as it uploads; Upload closes the reader, which stops
		// the encoder if the upload gives up.
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(dscache.Encode(pw, ds)) }()
		return pr, nil
	})
	if err != nil {
		return err
	}
	bt := &runspec.Batch{Model: mo}
	if bt.Dataset, err = c.Store.Sign(ctx, in, "GET", remote.URLTTL); err != nil {
		return err
	}
	if bt.Output, err = c.Store.Sign(ctx, runspec.OutputKey(id), "PUT", remote.URLTTL); err != nil {
		return err
	}
	run := runspec.Run{ID: id, Kind: runspec.KindBatch, Address: req.Address, Node: 0, Nodes: 1, Expires: nowUTC().Add(remote.URLTTL), Batch: bt}
	if run.Status, run.Log, err = runObjects(ctx, c, id, 0); err != nil {
		return err
	}
	if err := prepareAttempt(ctx, c, tg, &run); err != nil {
		return err
	}
	return c.AddRun(ctx, tg.key, run)
}

// awaitNode0 starts a run on node 0 of tg (handOver puts it in the node's
// inbox under the id it is given), or finds again the run an interrupted
// apply recorded in req.Private, and waits for it to end. The id is
// recorded in state before the node is told, so a killed apply never
// leaves a run the next apply would start again; an interrupted wait
// leaves the run going, and a failed run is taken out of the node's inbox.
// (Trainings on a cloud cluster follow the same steps.)
func awaitNode0(ctx context.Context, req providers.ApplyRequest, c *remote.Client, tg target, handOver func(id string) error) (runPrivate, runspec.Status, error) {
	logf := logger(req.Env)
	p, resumed := parsePrivate(req.Private)
	if resumed && p.Cluster != tg.address {
		resumed = false // moved to another cluster: a new run
	}
	if resumed {
		st, found, err := c.Status(ctx, p.Run, 0)
		if err != nil {
			return p, st, err
		}
		handed, err := c.InInbox(ctx, tg.key, 0, p.Run)
		if err != nil {
			return p, st, err
		}
		switch {
		case found:
			logf("waiting for run %s on %s node 0 (%s), started %s: %s", p.Run, tg.address, tg.host(0), p.Started.UTC().Format("15:04:05"), st.State)
		case handed:
			logf("waiting for run %s on %s node 0 (%s) to start", p.Run, tg.address, tg.host(0))
		default:
			// Recorded, but the apply died before the node was told.
			if err := handOver(p.Run); err != nil {
				return p, st, err
			}
			logf("started run %s on %s node 0 (%s)", p.Run, tg.address, tg.host(0))
		}
	} else {
		p = runPrivate{Run: newRunID(req.Address), Cluster: tg.address, Cloud: tg.cloud, Storage: c.URL, Nodes: []int{0}, Started: nowUTC()}
		// State knows the run before the node does: a killed apply never
		// leaves a run that the next apply would start again.
		if req.Record != nil {
			if err := req.Record(ctx, p.bytes()); err != nil {
				return p, runspec.Status{}, err
			}
		}
		if err := handOver(p.Run); err != nil {
			return p, runspec.Status{}, err
		}
		logf("started run %s on %s node 0 (%s)", p.Run, tg.address, tg.host(0))
	}
	for {
		sts, err := remote.Watch{Client: c, Cluster: tg.key, Run: p.Run, Nodes: []int{0}, Progress: req.Env.Progress}.Wait(ctx)
		if err == nil {
			return p, sts[0], nil
		}
		if ctx.Err() != nil {
			return p, runspec.Status{}, err // interrupted: the run goes on, state says running
		}
		if errors.As(err, new(*runspec.DecodeError)) {
			// The run may be fine: it stays, and so does its record.
			return p, runspec.Status{}, fmt.Errorf("%w: %w", providers.ErrLeftRunning, err)
		}
		lost, isLost := lostNode(err)
		if isLost && tg.compute != nil {
			rerr := tg.compute.restart(ctx, &req, c, &tg, &p, lost, handOver)
			if rerr == nil {
				continue
			}
			if ctx.Err() != nil {
				return p, runspec.Status{}, rerr
			}
			err = rerr
		} else if isLost {
			err = fmt.Errorf("%w; %s owns its nodes, so lepton does not replace them during the run: run lepton apply again, which repairs %s (its refresh finds the lost node) and runs %s again; or give it resources { } of its own to have lost nodes replaced and the run resumed from its checkpoint", err, tg.address, tg.address, req.Address)
		}
		if rerr := c.RemoveRun(context.WithoutCancel(ctx), tg.key, 0, p.Run); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return p, runspec.Status{}, err
	}
}
