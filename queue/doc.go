// Package queue owns gantry's use of NATS: the embedded server, the
// JetStream streams (GANTRY_JOBS, GANTRY_EVENTS, GANTRY_LOGS, GANTRY_SUBMIT),
// publishing jobs, events and logs with the headers that make them
// idempotent, and consuming them with acks, naks and in-progress leases.
//
// Subjects:
//
//	gantry.jobs.<cluster>                 jobs any worker of the cluster may take (normal priority)
//	gantry.jobs.<cluster>.p.high          the same, high priority (taken before normal)
//	gantry.jobs.<cluster>.p.low           the same, low priority (taken after normal)
//	gantry.jobs.<cluster>.w.<worker>      jobs for one worker
//	gantry.events.runs.<run>              status changes of runs and attempts
//	gantry.logs.<run>.<container>         log lines (jobs.LogBatch JSON)
//	gantry.submit                         durable fire-and-forget submissions
//	gantry.control.cancel                 core NATS: stop a run on its worker
package queue
