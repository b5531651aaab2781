package kubernetes

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// States lepton reports for its objects (the run states of runtime/runspec).
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateServing   = "serving"
)

// JobStatus is a Job's state as lepton reports it.
type JobStatus struct {
	State     string
	Message   string // why it failed, or what it waits for
	Active    int32
	Succeeded int32
	Failed    int32
	// CompletedIndexes of an Indexed Job ("0-1").
	CompletedIndexes string
}

// Terminal reports whether the Job will not change again.
func (s JobStatus) Terminal() bool { return s.State == StateSucceeded || s.State == StateFailed }

// JobState reads a Job's status as the Job controller writes it (1.36): the
// terminal Complete and Failed conditions, and before them the
// SuccessCriteriaMet and FailureTarget conditions that say how the Job will
// end while its last pods terminate.
func JobState(j *batchv1.Job) JobStatus {
	st := JobStatus{
		Active: j.Status.Active, Succeeded: j.Status.Succeeded, Failed: j.Status.Failed,
		CompletedIndexes: j.Status.CompletedIndexes,
	}
	cond := func(t batchv1.JobConditionType) *batchv1.JobCondition {
		for i := range j.Status.Conditions {
			if c := &j.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
				return c
			}
		}
		return nil
	}
	switch {
	case cond(batchv1.JobFailed) != nil:
		st.State, st.Message = StateFailed, conditionMessage(cond(batchv1.JobFailed))
	case cond(batchv1.JobFailureTarget) != nil:
		st.State, st.Message = StateFailed, conditionMessage(cond(batchv1.JobFailureTarget))
	case cond(batchv1.JobComplete) != nil, cond(batchv1.JobSuccessCriteriaMet) != nil:
		st.State = StateSucceeded
	case j.Status.Active > 0 || j.Status.StartTime != nil:
		st.State = StateRunning
		want := int32(1)
		if j.Spec.Completions != nil {
			want = *j.Spec.Completions
		}
		st.Message = fmt.Sprintf("%d of %d pods done, %d running", j.Status.Succeeded, want, j.Status.Active)
	default:
		st.State, st.Message = StatePending, "no pod started yet"
	}
	return st
}

func conditionMessage(c *batchv1.JobCondition) string {
	switch {
	case c.Reason != "" && c.Message != "":
		return c.Reason + ": " + c.Message
	case c.Message != "":
		return c.Message
	}
	return c.Reason
}

// DeploymentStatus is an endpoint Deployment's state as lepton reports it.
type DeploymentStatus struct {
	State    string
	Message  string
	Replicas int32 // wanted
	Ready    int32
	Updated  int32 // pods of the current template
	// RolledOut is true when every pod runs the current template and is
	// available, and the controller has seen the latest spec.
	RolledOut bool
}

// DeploymentState reads a Deployment's status as the Deployment controller
// writes it: serving once every wanted replica runs the current template
// and is available; failed when the rollout exceeded its progress deadline
// or pods could not be created.
func DeploymentState(d *appsv1.Deployment) DeploymentStatus {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	st := DeploymentStatus{Replicas: want, Ready: s.ReadyReplicas, Updated: s.UpdatedReplicas}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			st.State, st.Message = StateFailed, "rollout stalled: "+c.Message
			return st
		}
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			st.State, st.Message = StateFailed, c.Reason+": "+c.Message
			return st
		}
	}
	st.RolledOut = s.ObservedGeneration >= d.Generation &&
		s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
	switch {
	case st.RolledOut:
		st.State = StateServing
		st.Message = fmt.Sprintf("%d of %d replicas ready", s.ReadyReplicas, want)
	case s.ReadyReplicas > 0:
		st.State = StateRunning
		st.Message = fmt.Sprintf("rolling out: %d of %d replicas updated, %d ready", s.UpdatedReplicas, want, s.ReadyReplicas)
	default:
		st.State = StatePending
		st.Message = fmt.Sprintf("0 of %d replicas ready", want)
	}
	return st
}
